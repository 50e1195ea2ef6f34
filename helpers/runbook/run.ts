/** Executes a parsed runbook on a host, step by step, recording each in the ledger. */
import { readFile } from 'node:fs/promises';
import { gitHeaderConfigFile, readCredentialsFile } from '../common/credentials.ts';
import { withinDuration } from '../common/budget.ts';
import type { Durations } from '../common/config.ts';
import { ConfigError, HarnessError, errorMessage } from '../common/errors.ts';
import type { LedgerEntry } from '../common/ledger.ts';
import { log, timed } from '../common/log.ts';
import { redact, registerSecret } from '../common/redact.ts';
import { ChannelLostError, CommandNotStartedError, type HostChannel } from '../common/host.ts';
import { waitFor } from '../common/wait.ts';
import { describeStep, type RunbookStep } from './index.ts';

export interface StepOutcome {
  index: number;
  line: number;
  kind: RunbookStep['kind'];
  text: string;
  exitCode: number;
  durationMs: number;
  startedAt: string;
  /** Last lines of output, redacted, for the failure a check reports of the step. */
  outputTail: string;
  /** The channel the step ran over ("incus exec"), and, when it dropped during the step, how long until it answered again. */
  channel: { via: string; lostForMs?: number };
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

/** The ledger purpose of the harness's `true`, asking whether a dropped channel answers again. */
export const CHANNEL_PROBE_PURPOSE = 'is the channel back? (the harness asks after a runbook step lost it)';

/** A ledger entry that is the harness's own around the runbook, not a step of it: C4 leaves these out, and says so. */
export function isHarnessEntry(entry: LedgerEntry): boolean {
  return isHostGitCredentialsEntry(entry) || entry.purpose === CHANNEL_PROBE_PURPOSE;
}

export interface RunbookOptions {
  source: string;
  ageKeyFile: string;
  /** Each shell step may take up to `rebuild` (ACCEPT_REBUILD_TIMEOUT): the rebuild is the longest step. */
  durations: Pick<Durations, 'rebuild'>;
}

/** The exit code a step records when its channel dropped under it: no shell returns it, and it is not 0. */
export const EXIT_UNKNOWN = -1;

/**
 * Waits, within what is left of the step's budget, for the channel to answer again after it
 * dropped during a step: a switch may restart a VM's agent. Returns how long it was gone.
 */
async function regainChannel(host: HostChannel, lost: ChannelLostError, budgetMs: number, what: string): Promise<number> {
  const started = performance.now();
  log.warn(
    `${lost.message}; waiting up to ${Math.round(budgetMs / 1000)} s (what is left of ACCEPT_REBUILD_TIMEOUT) for ${host.name} to answer over ${host.transport} again`,
  );
  await waitFor(
    `the ${host.transport} channel to ${host.name} to answer again after it dropped during ${what} (a configuration whose switch stops the VM's agent for good leaves no way back in: enable virtualisation.incus.agent, or run the switch detached)`,
    // Any failure is "not yet" here: while a VM's agent is down, Incus refuses the exec outright.
    async () => {
      try {
        return (await host.exec('true', { purpose: CHANNEL_PROBE_PURPOSE, timeoutMs: 30_000 })).exitCode === 0;
      } catch (error) {
        return { done: false as const, saw: errorMessage(error) };
      }
    },
    { timeoutMs: Math.max(budgetMs, 1_000), intervalMs: 2_000, maxIntervalMs: 15_000 },
  );
  return Math.round(performance.now() - started);
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
      if (outcome) {
        // biome-ignore lint/correctness/noUnsafeFinally: thrown only when the runbook itself succeeded, so it never hides the runbook's own error
        throw new HarnessError(message);
      }
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
    let lostForMs: number | undefined;
    await timed(label, async () => {
      if (step.kind === 'provision-key') {
        const key = await readFile(options.ageKeyFile).catch((error: NodeJS.ErrnoException) => {
          throw new ConfigError('ACCEPT_AGE_KEY_FILE', `cannot read the bootstrap age key ${options.ageKeyFile}: ${error.code ?? error.message}`);
        });
        registerSecret(key.toString('utf8'));
        await host.pushFile(step.path, key, { mode: step.mode, purpose: `runbook step ${step.index}: bootstrap age key`, secret: true });
      } else {
        const result = await withinDuration(
          options.durations,
          'rebuild',
          `runbook step ${step.index} (${options.source}:${step.line}) on ${host.name}`,
          (timeoutMs) => host.exec(step.script, { strict: true, purpose: `runbook step ${step.index}`, timeoutMs }),
        )
          .catch((error: unknown) => {
            // A program the step names could not start (126/127): the document's failure, not the
            // harness's. The step ends there, as a failing one does; C4 names it and the program.
            if (error instanceof CommandNotStartedError) {
              notStarted = error.programs.length ? error.programs : ['(a program the step names; the shell did not say which)'];
              return error.result;
            }
            throw error;
          })
          .catch(async (error: unknown) => {
            // The channel dropped under the step: wait for it within the step's budget; the step's own result is unknown.
            if (!(error instanceof ChannelLostError)) throw error;
            lostForMs = await regainChannel(host, error, options.durations.rebuild - (performance.now() - started), `runbook step ${step.index}`);
            return { exitCode: EXIT_UNKNOWN, stdout: '', stderr: `${error.message}; the channel answered again after ${Math.round(lostForMs / 1000)} s` };
          });
        exitCode = result.exitCode;
        // Redact before cutting: a cut through a multi-line secret would no longer match.
        outputTail = redact(`${result.stdout}\n${result.stderr}`).trim().split('\n').slice(-15).join('\n');
      }
    });
    const channel = {
      via: step.kind === 'provision-key' ? `${host.transport} (files API)` : host.transport,
      ...(lostForMs === undefined ? {} : { lostForMs }),
    };
    outcome.steps.push({
      index: step.index,
      line: step.line,
      kind: step.kind,
      text,
      exitCode,
      durationMs: Math.round(performance.now() - started),
      startedAt,
      outputTail,
      channel,
      ...(notStarted ? { notStarted } : {}),
    });
    if (exitCode !== 0) {
      log.warn(`runbook step ${step.index} (${options.source}:${step.line}) exited ${exitCode}; the steps after it were not run:\n${outputTail}`);
      outcome.completed = false;
      break;
    }
  }
  return outcome;
}
