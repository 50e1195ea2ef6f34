/**
 * Everything that leaves the process (console, logs, report attachments, error messages)
 * goes through redact(). Secrets are registered as soon as they are decrypted or read.
 */
const REDACTED = '[REDACTED]';
const registered = new Set<string>();

/** Shapes that are secret whatever their value: age identities and PEM private keys. */
const SECRET_SHAPES: RegExp[] = [
  /AGE-SECRET-KEY-1[0-9A-Z]+/g,
  /-----BEGIN ([A-Z0-9]+ )?PRIVATE KEY-----[\s\S]*?-----END ([A-Z0-9]+ )?PRIVATE KEY-----/g,
];

/** Values shorter than this would redact ordinary words; they are still never printed by us. */
const MIN_REGISTERED_LENGTH = 6;

export function registerSecret(value: string): void {
  const trimmed = value.trim();
  if (trimmed.length >= MIN_REGISTERED_LENGTH) registered.add(trimmed);
  if (value.length >= MIN_REGISTERED_LENGTH) registered.add(value);
  // PEM bodies also travel line by line and base64 only (e.g. inside diffs).
  for (const line of trimmed.split('\n')) {
    if (line.length >= 40 && !line.startsWith('-----')) registered.add(line.trim());
  }
}

export function redact(text: string): string {
  let out = text;
  for (const shape of SECRET_SHAPES) out = out.replace(shape, REDACTED);
  // Longest first, so that a registered value containing another is removed whole.
  for (const secret of [...registered].sort((a, b) => b.length - a.length)) {
    if (out.includes(secret)) out = out.split(secret).join(REDACTED);
  }
  return out;
}

export function registeredSecretCount(): number {
  return registered.size;
}

/** For tests only. */
export function forgetSecrets(): void {
  registered.clear();
}
