/**
 * Time budgets, all derived from the run's durations (ACCEPT_*_TIMEOUT): a test's Vitest timeout
 * is the sum of the waits it contains plus a check's own work, and a wait that used up its
 * setting says which one to raise.
 */
import { DURATION_VARIABLES, type DurationName, type Durations } from './config.ts';
import { HarnessError, errorMessage } from './errors.ts';
import { formatDuration } from './log.ts';

/**
 * The Vitest timeout of a test (or hook) that waits, one after another, for each of `waits`:
 * their sum, plus `check` for the test's own work. A wait named twice (two rebuilds) counts twice.
 */
export function budgetMs(durations: Durations, waits: readonly DurationName[] = []): number {
  return waits.reduce((sum, wait) => sum + durations[wait], durations.check);
}

/** "60 s", "45 min": whole units, so that messages stay stable for equal settings. */
export function wholeDuration(ms: number): string {
  return ms % 60_000 === 0 && ms >= 120_000 ? `${ms / 60_000} min` : `${Math.round(ms / 1000)} s`;
}

/** The setting behind a duration, for messages: `ACCEPT_REBUILD_TIMEOUT, 45 min`. */
export function settingOf<N extends DurationName>(durations: Pick<Durations, N>, name: N): string {
  return `${DURATION_VARIABLES[name]}, ${wholeDuration(durations[name])}`;
}

/**
 * Runs `work` with the duration `name` as its time limit. An error once that limit is spent is
 * the limit's doing (whatever the transport called it): it becomes an ERROR naming the setting.
 */
/** How early a timer may fire, as performance.now() measures it. */
const TIMER_SLACK_MS = 2;

export async function withinDuration<T, N extends DurationName>(
  durations: Pick<Durations, N>,
  name: N,
  what: string,
  work: (timeoutMs: number) => Promise<T>,
): Promise<T> {
  const limit = durations[name];
  const started = performance.now();
  try {
    return await work(limit);
  } catch (error) {
    const spent = performance.now() - started;
    // A timer set for the limit may fire a millisecond early as performance.now() sees it.
    if (spent < limit - TIMER_SLACK_MS) throw error;
    throw new HarnessError(
      `${what} did not finish within ${wholeDuration(limit)} (${DURATION_VARIABLES[name]}; it ran ${formatDuration(spent)}): if it is only slow on this target, raise ${DURATION_VARIABLES[name]}; ${errorMessage(error)}`,
      { cause: error },
    );
  }
}
