/**
 * The verdict model: the four verdicts, their order, and how an error is classified. An error is
 * classified here once; the run record takes its verdicts from here, and the Allure listener
 * (reporting/allure.ts, wired in vitest.config.ts) applies the same classification to every
 * result before it is written, so the two can never disagree.
 */

export type Verdict = 'PASS' | 'FAIL' | 'ERROR' | 'SKIPPED';

/** Every verdict, in the order counts and messages list them. */
export const VERDICTS: readonly Verdict[] = ['PASS', 'FAIL', 'ERROR', 'SKIPPED'];

/** Worst first: one ERROR makes the whole run ERROR. */
export const SEVERITY: readonly Verdict[] = ['ERROR', 'FAIL', 'SKIPPED', 'PASS'];

/**
 * HarnessError and its subclasses, by the name their stack trace starts with. Only the category
 * that names them uses this list (an unlisted one is still ERROR); reporting/allure.test.ts keeps it whole.
 */
export const HARNESS_ERROR_NAMES = [
  'HarnessError',
  'ConfigError',
  'DialError',
  'IncusError',
  'SshError',
  'SopsError',
  'WaitTimeoutError',
  'CommandError',
  'NixBuildError',
  'CommandNotStartedError',
  'HostScanError',
  'ForgeWriteRefused',
  'ChannelLostError',
  'KeptHostError',
  'LabProductionDrifted',
];

/**
 * The only errors that are findings about the system: assertions, and the two helper errors that
 * say "the product is wrong" (helpers/tls: a served chain that does not verify, PEM that is not).
 * Anything else (a HarnessError, a TypeError, a timeout, a raw socket error) is ERROR: an
 * unexplained error must never read as FAIL.
 */
export const PRODUCT_FAILURE_NAMES = ['AssertionError', 'TlsVerificationError', 'PemError', 'SystemFailure'];

export interface ErrorLike {
  name?: string;
  message?: string;
  stack?: string;
  /** Set by HarnessError, and kept through Vitest's serialisation. */
  verdict?: string;
}

/** The error's class name, from the error or else from the first line of its stack trace. */
export function errorName(error: ErrorLike): string | undefined {
  if (error.name) return error.name;
  const first = (error.stack ?? '').trimStart().split('\n')[0] ?? '';
  return /^([A-Za-z_$][\w$]*)(?=:|$)/.exec(first)?.[1];
}

export function errorVerdict(error: ErrorLike | undefined): 'FAIL' | 'ERROR' {
  if (!error || error.verdict === 'ERROR') return 'ERROR';
  if (error.verdict === 'FAIL') return 'FAIL';
  const name = errorName(error);
  return name !== undefined && PRODUCT_FAILURE_NAMES.includes(name) ? 'FAIL' : 'ERROR';
}

export function worstVerdict(verdicts: Iterable<Verdict>): Verdict | undefined {
  const seen = new Set(verdicts);
  return SEVERITY.find((verdict) => seen.has(verdict));
}
