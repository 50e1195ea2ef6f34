import { redact } from './redact.ts';

/** Progress goes to stderr so that command output on stdout stays machine-readable. */
function write(line: string): void {
  process.stderr.write(`${redact(line)}\n`);
}

export const log = {
  info(message: string): void {
    write(`  ${message}`);
  },
  warn(message: string): void {
    write(`! ${message}`);
  },
  step(message: string): void {
    write(`→ ${message}`);
  },
};

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** Runs a long step with a start line, a heartbeat while it runs, and its duration at the end. */
export async function timed<T>(description: string, work: () => Promise<T>, heartbeatMs = 15_000): Promise<T> {
  const started = performance.now();
  write(`→ ${description}…`);
  const heartbeat = setInterval(() => {
    write(`  … still ${description.toLowerCase()} (${formatDuration(performance.now() - started)})`);
  }, heartbeatMs);
  heartbeat.unref();
  try {
    const result = await work();
    write(`✓ ${description} (${formatDuration(performance.now() - started)})`);
    return result;
  } catch (error) {
    write(`✗ ${description} failed after ${formatDuration(performance.now() - started)}`);
    throw error;
  } finally {
    clearInterval(heartbeat);
  }
}
