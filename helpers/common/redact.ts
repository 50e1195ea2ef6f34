/**
 * Everything that leaves the process (console, logs, report attachments, error messages)
 * goes through redact(). Secrets are registered as soon as they are decrypted or read, and
 * redacted in every form they may travel in (helpers/common/secret-forms.ts): whole, line by
 * line, field by field, and base64, hex, percent- or JSON-escaped.
 */
import { FormIndex, MIN_VALUE_LENGTH } from './secret-forms.ts';

const REDACTED = '[REDACTED]';
const registered = new Set<string>();
/** Built on first use after a registration: one pass over a text finds every form of every value. */
let index: FormIndex | undefined;

/** Shapes that are secret whatever their value: age identities and PEM private keys. */
const SECRET_SHAPES: RegExp[] = [/AGE-SECRET-KEY-1[0-9A-Z]+/g, /-----BEGIN ([A-Z0-9]+ )?PRIVATE KEY-----[\s\S]*?-----END ([A-Z0-9]+ )?PRIVATE KEY-----/g];

/** Values shorter than MIN_VALUE_LENGTH would redact ordinary words; they are still never printed by us. */
export function registerSecret(value: string): void {
  if (value.trim().length < MIN_VALUE_LENGTH || registered.has(value)) return;
  registered.add(value);
  index = undefined;
}

export function redact(text: string): string {
  let out = text;
  for (const shape of SECRET_SHAPES) out = out.replace(shape, REDACTED);
  if (registered.size === 0) return out;
  index ??= new FormIndex([...registered].map((value, at) => ({ label: `#${at}`, value })));
  const ranges = index.ranges(out);
  if (ranges.length === 0) return out;
  // Overlapping forms were merged into one range: a value inside a longer one goes whole.
  let result = '';
  let at = 0;
  for (const [start, end] of ranges) {
    result += out.slice(at, start) + REDACTED;
    at = end;
  }
  return result + out.slice(at);
}

export function registeredSecretCount(): number {
  return registered.size;
}

/** For tests only. */
export function forgetSecrets(): void {
  registered.clear();
  index = undefined;
}
