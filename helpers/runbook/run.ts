/** Executes a parsed runbook on a host, step by step, recording each in the ledger. */
import { readFile } from 'node:fs/promises';
import { ConfigError } from '../common/errors.ts';
import { log, timed } from '../common/log.ts';
import { redact, registerSecret } from '../common/redact.ts';
import type { HostChannel } from '../common/host.ts';
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
}

export interface RunbookOutcome {
  source: string;
  steps: StepOutcome[];
  /** False when a step failed; later steps did not run. */
  completed: boolean;
}

export async function runRunbook(
  steps: RunbookStep[],
  host: HostChannel,
  options: { source: string; ageKeyFile: string },
): Promise<RunbookOutcome> {
  const outcome: RunbookOutcome = { source: options.source, steps: [], completed: true };
  for (const step of steps) {
    const startedAt = new Date().toISOString();
    const started = performance.now();
    const text = describeStep(step);
    const label = `Runbook step ${step.index}/${steps.length} (${options.source}:${step.line}): ${text.split('\n')[0]}`;
    let exitCode = 0;
    let outputTail = '';
    await timed(label, async () => {
      if (step.kind === 'provision-key') {
        const key = await readFile(options.ageKeyFile).catch((error: NodeJS.ErrnoException) => {
          throw new ConfigError('ACCEPT_AGE_KEY_FILE', `cannot read the bootstrap age key ${options.ageKeyFile}: ${error.code ?? error.message}`);
        });
        registerSecret(key.toString('utf8'));
        await host.pushFile(step.path, key, { mode: step.mode, purpose: `runbook step ${step.index}: bootstrap age key`, secret: true });
      } else {
        const result = await host.exec(step.script, { strict: true, purpose: `runbook step ${step.index}`, timeoutMs: 1_800_000 });
        exitCode = result.exitCode;
        // Redact before cutting: a cut through a multi-line secret would no longer match.
        outputTail = redact(`${result.stdout}\n${result.stderr}`).trim().split('\n').slice(-15).join('\n');
      }
    });
    outcome.steps.push({ index: step.index, line: step.line, kind: step.kind, text, exitCode, durationMs: Math.round(performance.now() - started), startedAt, outputTail });
    if (exitCode !== 0) {
      log.warn(`runbook step ${step.index} (${options.source}:${step.line}) exited ${exitCode}; the steps after it were not run:\n${outputTail}`);
      outcome.completed = false;
      break;
    }
  }
  return outcome;
}
