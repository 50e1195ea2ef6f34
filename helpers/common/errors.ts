/**
 * Two kinds of failure, kept apart so that an infrastructure problem never reads as a
 * DoD verdict: HarnessError means "the harness could not find out" (ERROR); SystemFailure and
 * assertion failures mean "the harness saw the system not meet the item" (FAIL).
 *
 * A HarnessError is fatal to a wait unless it is marked `transient`: only faults that a retry
 * can cure (connection refused while a service starts, 502/503, a reset) are transient.
 */
export class HarnessError extends Error {
  override readonly name: string = 'HarnessError';
  /** Survives Vitest's error serialisation, so reporters can tell ERROR from FAIL. */
  readonly verdict: 'ERROR' = 'ERROR';
  /** True only where retrying may cure it; waitFor treats every other HarnessError as final. */
  readonly transient: boolean;
  constructor(message: string, options?: { cause?: unknown; transient?: boolean }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.transient = options?.transient ?? false;
  }
}

/** Bad configuration: always names the variable (or file) at fault. Never transient. */
export class ConfigError extends HarnessError {
  override readonly name: string = 'ConfigError';
  constructor(
    readonly variable: string,
    message: string,
    /** The file the setting names, when the fault is that it cannot be read: the path is what to fix. */
    readonly file?: string,
  ) {
    super(`${variable}: ${message}`);
  }
}

/**
 * The harness saw a product state that does not meet the item (a unit failed, a build that
 * never ended, a oneshot inactive with no job pending). A FAIL, like an assertion; the message
 * carries the state seen.
 */
export class SystemFailure extends Error {
  override readonly name: string = 'SystemFailure';
  /** Survives Vitest's error serialisation, as HarnessError's does. */
  readonly verdict: 'FAIL' = 'FAIL';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
  }
}

/** Node's socket errors that a retry may cure. */
const TRANSIENT_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_SOCKET']);

/** Whether a wait may keep going after this error: a transient HarnessError, or a raw transient socket error. */
export function isTransient(error: unknown): boolean {
  if (error instanceof HarnessError) return error.transient;
  if (error instanceof SystemFailure) return false;
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && TRANSIENT_CODES.has(code);
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
