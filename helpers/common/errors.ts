/**
 * Two kinds of failure, kept apart so that an infrastructure problem never reads as a
 * DoD verdict: HarnessError means "the harness could not find out" (ERROR), an assertion
 * failure means "the system does not meet the item" (FAIL).
 */
export class HarnessError extends Error {
  override readonly name: string = 'HarnessError';
  /** Survives Vitest's error serialisation, so reporters can tell ERROR from FAIL. */
  readonly verdict = 'ERROR';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Bad configuration: always names the variable (or file) at fault. */
export class ConfigError extends HarnessError {
  override readonly name: string = 'ConfigError';
  constructor(readonly variable: string, message: string) {
    super(`${variable}: ${message}`);
  }
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
