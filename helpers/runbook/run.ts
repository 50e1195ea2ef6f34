/** Executes a parsed runbook on a host, step by step, recording each in the ledger. */
import { readFile } from 'node:fs/promises';
import { gitHeaderConfigFile, readCredentialsFile } from '../common/credentials.ts';
import { withinDuration } from '../common/budget.ts';
import type { Durations } from '../common/config.ts';
import { ConfigError, HarnessError } from '../common/errors.ts';
import type { LedgerEntry } from '../common/ledger.ts';
import { log, timed } from '../common/log.ts';
import { redact, registerSecret } from '../common/redact.ts';
import { CommandNotStartedError, type HostChannel } from '../common/host.ts';
import { describeStep, type RunbookStep } from './index.ts';

export interface StepOutcome {
  index: number;
  line: number;
  kind: RunbookStep['kind'];
  text: string;
  exitCode: number;
  durationMs: number;
  startedAt: string;
  /** Last lines of output, redacted, for evidence. */
  outputTail: string;
  /**
   * The programs the step names that could not start on the machine (exit 126/127): the
   * system's document relies on something its blank machine lacks, which C4 reports as a FAIL.
   */
  notStarted?: string[];
}

export interface RunbookOutcome {
  source: string;
  steps: StepOutcome[];
  /** False when a step failed; later steps did not run. */
  completed: boolean;
}

/** Where the runbook's clones on the host find the operator's git credentials, while the runbook runs. */
export const HOST_GIT_CONFIG = '/root/.gitconfig';
/** The ledger purpose of that file's push and removal: the harness's, not a runbook step. */
export const HOST_GIT_CREDENTIALS_PURPOSE = "operator git credentials for the runbook's clones (ACCEPT_HOST_GIT_CREDENTIALS_FILE), removed after the last step";

/** A ledger entry the harness made to give the runbook's clones credentials: C3 and C4 leave these out, and say so. */
export function isHostGitCredentialsEntry(entry: LedgerEntry): boolean {
  return entry.purpose === HOST_GIT_CREDENTIALS_PURPOSE;
}

export interface RunbookOptions {
  source: string;
  ageKeyFile: string;
  /** Each shell step may take up to `rebuild` (ACCEPT_REBUILD_TIMEOUT): the rebuild is the longest step. */
  durations: Pick<Durations, 'rebuild'>;
}

export async function runRunbook(
  steps: RunbookStep[],
  host: HostChannel,
  options: RunbookOptions & { hostGitCredentialsFile?: string },
): Promise<RunbookOutcome> {
  if (!options.hostGitCredentialsFile) return runSteps(steps, host, options);
  // Parsed (and registered for redaction) before anything reaches the host.
  const credentials = readCredentialsFile(options.hostGitCredentialsFile, 'ACCEPT_HOST_GIT_CREDENTIALS_FILE');
  await host.pushFile(HOST_GIT_CONFIG, Buffer.from(gitHeaderConfigFile(credentials)), { mode: 0o600, purpose: HOST_GIT_CREDENTIALS_PURPOSE, secret: true });
  let outcome: RunbookOutcome | undefined;
  try {
    outcome = await runSteps(steps, host, options);
    return outcome;
  } finally {
    const removed = await host.exec(`rm -f ${HOST_GIT_CONFIG} && test ! -e ${HOST_GIT_CONFIG}`, { purpose: HOST_GIT_CREDENTIALS_PURPOSE, timeoutMs: 60_000 });
    if (removed.exitCode !== 0) {
      const message = `could not remove the git credentials ${HOST_GIT_CONFIG} from ${host.name} after the runbook (exit ${removed.exitCode}): ${redact(removed.stderr).trim()}; delete the host or the file by hand`;
      // A failure of the runbook itself stays the error; this one is then only logged.
      if (outcome) throw new HarnessError(message);
      log.warn(message);
    }
  }
}

async function runSteps(steps: RunbookStep[], host: HostChannel, options: RunbookOptions): Promise<RunbookOutcome> {
  const outcome: RunbookOutcome = { source: options.source, steps: [], completed: true };
  for (const step of steps) {
    const startedAt = new Date().toISOString();
    const started = performance.now();
    const text = describeStep(step);
    const label = `Runbook step ${step.index}/${steps.length} (${options.source}:${step.line}): ${text.split('\n')[0]}`;
    let exitCode = 0;
    let outputTail = '';
    let notStarted: string[] | undefined;
    await timed(label, async () => {
      if (step.kind === 'provision-key') {
        const key = await readFile(options.ageKeyFile).catch((error: NodeJS.ErrnoException) => {
          throw new ConfigError('ACCEPT_AGE_KEY_FILE', `cannot read the bootstrap age key ${options.ageKeyFile}: ${error.code ?? error.message}`);
        });
        registerSecret(key.toString('utf8'));
        await host.pushFile(step.path, key, { mode: step.mode, purpose: `runbook step ${step.index}: bootstrap age key`, secret: true });
      } else {
        const result = await withinDuration(options.durations, 'rebuild', `runbook step ${step.index} (${options.source}:${step.line}) on ${host.name}`, (timeoutMs) =>
          host.exec(step.script, { strict: true, purpose: `runbook step ${step.index}`, timeoutMs }),
        ).catch((error: unknown) => {
          // A program the step names could not start (126/127): the document's failure, not the
          // harness's. The step ends there, as a failing one does; C4 names it and the program.
          if (error instanceof CommandNotStartedError) {
            notStarted = error.programs.length ? error.programs : ['(a program the step names; the shell did not say which)'];
            return error.result;
          }
          throw error;
        });
        exitCode = result.exitCode;
        // Redact before cutting: a cut through a multi-line secret would no longer match.
        outputTail = redact(`${result.stdout}\n${result.stderr}`).trim().split('\n').slice(-15).join('\n');
      }
    });
    outcome.steps.push({ index: step.index, line: step.line, kind: step.kind, text, exitCode, durationMs: Math.round(performance.now() - started), startedAt, outputTail, ...(notStarted ? { notStarted } : {}) });
    if (exitCode !== 0) {
      log.warn(`runbook step ${step.index} (${options.source}:${step.line}) exited ${exitCode}; the steps after it were not run:\n${outputTail}`);
      outcome.completed = false;
      break;
    }
  }
  return outcome;
}
