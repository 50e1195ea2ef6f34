import { HarnessError, errorMessage } from './errors.ts';
import { formatDuration } from './log.ts';
import { redact } from './redact.ts';

export interface WaitOptions {
  timeoutMs: number;
  intervalMs?: number;
}

export class WaitTimeoutError extends HarnessError {
  override readonly name: string = 'WaitTimeoutError';
  constructor(readonly description: string, readonly waitedMs: number, readonly lastSeen: string) {
    super(redact(`timed out after ${formatDuration(waitedMs)} waiting for ${description}; last saw: ${lastSeen}`));
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
 * returned. A falsy result or a thrown error means "not yet" and is kept as the last thing seen.
 * A probe may return {done:false, saw} to say what it saw without ending the wait.
 */
export async function waitFor<T>(
  description: string,
  probe: () => Promise<T | false | null | undefined | { done: false; saw: unknown }>,
  { timeoutMs, intervalMs = 250 }: WaitOptions,
): Promise<T> {
  const started = performance.now();
  let lastSeen = 'nothing yet';
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
    } catch (error) {
      lastSeen = `error: ${errorMessage(error)}`;
    }
    const elapsed = performance.now() - started;
    if (elapsed >= timeoutMs) throw new WaitTimeoutError(description, elapsed, redact(lastSeen));
    await new Promise((resolve) => setTimeout(resolve, Math.min(intervalMs, Math.max(0, timeoutMs - elapsed))));
  }
}
