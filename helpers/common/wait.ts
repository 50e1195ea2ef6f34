import { HarnessError, SystemFailure, errorMessage, isTransient } from './errors.ts';
import { formatDuration } from './log.ts';
import { redact } from './redact.ts';

/** Every `everyMs` that a wait goes on, `say` is told how long it has waited (see WaitOptions.heartbeat). */
export interface WaitHeartbeat {
  everyMs: number;
  say(waitedMs: number): void | Promise<void>;
}

export interface WaitOptions {
  /**
   * The deadline. 'unbounded' is a wait with none, that only the probe ends (by an answer or an
   * error it throws): for a turn behind another process that may hold a lease or a lock for as
   * long as its own run takes, which bounds it. Such a wait should have a heartbeat.
   */
  timeoutMs: number | 'unbounded';
  intervalMs?: number;
  /**
   * When set, each pause is half again as long as the one before, up to this: a long wait on a
   * real target (a build of 20 minutes) polls a few times a minute, not twice a second.
   */
  maxIntervalMs?: number;
  /**
   * What the probe reads. 'harness' (the default): the harness's own machinery (a port, a boot,
   * an API operation), so a timeout is ERROR. 'system': the product's state (a unit, a build, a
   * comment), so a timeout after the probe answered at least once is a FAIL carrying the state
   * seen (StateTimeoutError); with no answer at all it is still ERROR.
   */
  observes?: 'harness' | 'system';
  /**
   * The line a long wait says while it goes on, so that a person sees what it waits for: called
   * after a probe that did not end the wait, once `everyMs` has passed since the start or the last
   * call, and awaited before the next pause. An error it throws ends the wait.
   */
  heartbeat?: WaitHeartbeat;
}

/** ERROR: the wait ran out without learning anything that ends it. */
export class WaitTimeoutError extends HarnessError {
  override readonly name: string = 'WaitTimeoutError';
  constructor(
    readonly description: string,
    readonly waitedMs: number,
    readonly lastSeen: string,
  ) {
    super(redact(`timed out after ${formatDuration(waitedMs)} waiting for ${description}; last saw: ${lastSeen}`));
  }
}

/** How a wait on product state went, as StateTimeoutError reports it. */
export interface ProbeTally {
  /** Probes that returned a state (a falsy value or {done:false, saw}). */
  answers: number;
  /** Probes that threw a transient error. */
  failures: number;
  /** The last transient error's message, if any probe threw one. */
  lastFailure?: string;
  /** Whether the very last probe threw, so the state at the deadline is the one seen before. */
  lastProbeFailed: boolean;
}

/**
 * FAIL: the harness watched the product's state until the deadline and it never got there.
 * `lastSeen` is the last state the probe answered with, not an error.
 */
export class StateTimeoutError extends SystemFailure {
  override readonly name: string = 'StateTimeoutError';
  readonly answers: number;
  readonly failures: number;
  readonly lastFailure?: string;
  readonly lastProbeFailed: boolean;
  constructor(
    readonly description: string,
    readonly waitedMs: number,
    readonly lastSeen: string,
    tally: ProbeTally,
  ) {
    const failed = tally.failures > 0 ? ` (${tally.failures} of ${tally.answers + tally.failures} probes failed, the last with: ${tally.lastFailure})` : '';
    super(redact(`timed out after ${formatDuration(waitedMs)} waiting for ${description}; last saw: ${lastSeen}${failed}`));
    this.answers = tally.answers;
    this.failures = tally.failures;
    this.lastFailure = tally.lastFailure;
    this.lastProbeFailed = tally.lastProbeFailed;
  }
}

function describeSeen(value: unknown): string {
  if (value === undefined) return 'nothing yet';
  // Redact before JSON-escaping and cutting: an escaped or half-cut secret no longer matches redact().
  if (typeof value === 'string') {
    const clean = redact(value);
    return JSON.stringify(clean.length > 300 ? `${clean.slice(0, 300)}…` : clean);
  }
  try {
    const text = JSON.stringify(value, (_key, field: unknown) => (typeof field === 'string' ? redact(field) : field));
    return text.length > 300 ? `${text.slice(0, 300)}…` : text;
  } catch {
    return redact(String(value));
  }
}

/**
 * The one wait primitive. The probe is called until it returns something truthy, which is
 * returned. A falsy result means "not yet"; a probe may return {done:false, saw} to say what it
 * saw without ending the wait.
 *
 * A thrown error means "not yet" only if it is transient (isTransient: a refused connection, a
 * 502/503); any other error is rethrown at once with its class, so that a bad token, a TLS
 * failure or a SystemFailure the probe saw ends the wait now, not at the deadline.
 *
 * With `timeoutMs: 'unbounded'` only the probe ends it; `heartbeat` says that it still waits.
 */
export async function waitFor<T>(
  description: string,
  probe: () => Promise<T | false | null | undefined | { done: false; saw: unknown }>,
  { timeoutMs, intervalMs = 250, maxIntervalMs, observes = 'harness', heartbeat }: WaitOptions,
): Promise<T> {
  const started = performance.now();
  let beat = started;
  let pause = intervalMs;
  let lastSeen = 'nothing yet';
  let lastState: string | undefined;
  const tally: ProbeTally = { answers: 0, failures: 0, lastProbeFailed: false };
  for (;;) {
    try {
      const value = await probe();
      if (value && typeof value === 'object' && 'done' in value && value.done === false) {
        lastSeen = describeSeen((value as { saw: unknown }).saw);
      } else if (value) {
        return value as T;
      } else {
        lastSeen = describeSeen(value);
      }
      lastState = lastSeen;
      tally.answers++;
      tally.lastProbeFailed = false;
    } catch (error) {
      if (!isTransient(error)) throw error;
      lastSeen = `error: ${errorMessage(error)}`;
      tally.failures++;
      tally.lastFailure = redact(errorMessage(error));
      tally.lastProbeFailed = true;
    }
    const now = performance.now();
    const elapsed = now - started;
    if (timeoutMs !== 'unbounded' && elapsed >= timeoutMs) {
      if (observes === 'system' && lastState !== undefined) throw new StateTimeoutError(description, elapsed, redact(lastState), tally);
      throw new WaitTimeoutError(description, elapsed, redact(lastSeen));
    }
    if (heartbeat && now - beat >= heartbeat.everyMs) {
      beat = now;
      await heartbeat.say(elapsed);
    }
    await new Promise((resolve) => setTimeout(resolve, timeoutMs === 'unbounded' ? pause : Math.min(pause, Math.max(0, timeoutMs - elapsed))));
    if (maxIntervalMs !== undefined) pause = Math.min(maxIntervalMs, pause * 1.5);
  }
}
