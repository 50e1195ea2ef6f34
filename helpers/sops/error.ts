/** The one error of the sops codec: what went wrong (its kind), in which file. */
import { HarnessError } from '../common/errors.ts';
import { redact } from '../common/redact.ts';

export type SopsErrorKind = 'no-matching-key' | 'tampered-value' | 'mac-mismatch' | 'unsupported-key-type' | 'unsupported-feature' | 'malformed';

export class SopsError extends HarnessError {
  override readonly name = 'SopsError';
  constructor(
    readonly kind: SopsErrorKind,
    readonly source: string,
    message: string,
  ) {
    // Redacted as a last line of defence; messages are built to hold no plaintext anyway.
    super(redact(message));
  }
}
