/**
 * The line that closes each run of a long-lived session (`accept watch`, or Vitest's watch mode):
 * its number, how long it took, its outcome, and before it the run's phases. The session
 * reporter (acceptance/support/session-reporter.ts) prints it; `accept watch`, the bench and the
 * scenario tests read it.
 */
import { formatDuration } from '../helpers/common/log.ts';

export type RunWord = 'PASS' | 'FAIL' | 'ERROR' | 'SKIPPED' | 'NONE';

/** The line that closes each run of a session. */
export const RUN_DONE = /^accept watch: run (\d+) took (\d+) ms: (PASS|FAIL|ERROR|SKIPPED|NONE)\b/m;

export function runDoneLine(run: number, ms: number, word: RunWord, trigger: string, phases?: RunPhases): string {
  const breakdown = phases ? `accept watch: run ${run} phases: ${PHASE_NAMES.map((name) => `${name}=${Math.round(phases[name])}`).join(' ')}\n` : '';
  return `${breakdown}accept watch: run ${run} took ${Math.round(ms)} ms: ${word} (${trigger}; ${formatDuration(ms)}). Enter re-runs, q quits.\n`;
}

/**
 * Where one run of a session spent its time (ms), in order: attach (the settings and the kept
 * record read afresh, the lab's machines checked: trigger to the run's start; the first run's is
 * Vitest's own start), worker (a new worker started and scheduled), import (the specs and what
 * they import evaluated in it, setup files included), fixtures (the worker-scoped fixtures:
 * channels, clones, decryption, builds), tests (the checks themselves), reports (the DoD
 * summary, run record, evidence, JUnit and Allure written).
 */
export const PHASE_NAMES = ['attach', 'worker', 'import', 'fixtures', 'tests', 'reports'] as const;
export type RunPhases = Record<(typeof PHASE_NAMES)[number], number>;

/** The phases line of a session's run, as the bench reads it. */
export const RUN_PHASES = /^accept watch: run (\d+) phases: (.*)$/m;

export function parsePhases(text: string): Partial<RunPhases> {
  const phases: Partial<RunPhases> = {};
  for (const [, name, value] of text.matchAll(/(\w+)=(\d+)/g))
    if ((PHASE_NAMES as readonly string[]).includes(name!)) phases[name as keyof RunPhases] = Number(value);
  return phases;
}
