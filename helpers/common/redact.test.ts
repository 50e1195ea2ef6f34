import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { forgetSecrets, redact, registerSecret, registeredSecretCount } from './redact.ts';

afterEach(() => forgetSecrets());

/** A PEM block of random base64, wrapped at 64 like openssl does. */
function pem(label: string, bytes = 300): string {
  const body = randomBytes(bytes)
    .toString('base64')
    .match(/.{1,64}/g)!
    .join('\n');
  return `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
}

// Bech32 charset, upper case: the shape `age-keygen` prints.
const AGE_IDENTITY = 'AGE-SECRET-KEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQS4YX8E3';
const AGE_RECIPIENT = 'age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq';

describe('redact', () => {
  it('replaces every occurrence of a registered value', () => {
    registerSecret('hmac-webhook-secret');
    expect(redact('X-Signature: hmac-webhook-secret; again hmac-webhook-secret.')).toBe('X-Signature: [REDACTED]; again [REDACTED].');
  });

  it('registers the trimmed value too, so a secret read from a file matches without its newline', () => {
    registerSecret('oauth-client-secret\n');
    expect(redact('secret=oauth-client-secret&x=1')).toBe('secret=[REDACTED]&x=1');
  });

  it('leaves text without secrets alone', () => {
    registerSecret('something-secret');
    expect(redact('nothing to see here')).toBe('nothing to see here');
  });

  it('replaces the lines of a registered PEM body wherever they travel alone', () => {
    const cert = pem('CERTIFICATE');
    registerSecret(cert);
    const lines = cert.split('\n');
    const line = lines[2]!;
    expect(line.length).toBe(64);
    // A diff shows one changed line of a file, not the whole block.
    expect(redact(`@@ -3 +3 @@\n-${line}\n+something else`)).toBe('@@ -3 +3 @@\n-[REDACTED]\n+something else');
    expect(redact(cert)).toBe('[REDACTED]');
    // The armour lines are not secret, and are not registered.
    expect(redact(`${lines[0]}\n`)).toBe(`${lines[0]}\n`);
  });

  it('replaces age identities that were never registered, and keeps recipients', () => {
    const keyFile = `# created: 2024-01-01T00:00:00Z\n# public key: ${AGE_RECIPIENT}\n${AGE_IDENTITY}\n`;
    expect(redact(keyFile)).toBe(`# created: 2024-01-01T00:00:00Z\n# public key: ${AGE_RECIPIENT}\n[REDACTED]\n`);
    expect(redact(`SOPS_AGE_KEY=${AGE_IDENTITY} sops -d x`)).toBe('SOPS_AGE_KEY=[REDACTED] sops -d x');
  });

  it.each(['PRIVATE KEY', 'EC PRIVATE KEY', 'RSA PRIVATE KEY', 'OPENSSH PRIVATE KEY', 'ENCRYPTED PRIVATE KEY'])(
    'replaces an unregistered %s block whole',
    (label) => {
      const block = pem(label).trimEnd();
      expect(redact(`before\n${block}\nafter`)).toBe('before\n[REDACTED]\nafter');
    },
  );

  it('replaces a real private key from node:crypto, and two blocks separately', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const key = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const cert = pem('CERTIFICATE');
    expect(redact(`${key}${cert}${key}`)).toBe(`[REDACTED]\n${cert}[REDACTED]\n`);
  });

  it('keeps certificates, which are public', () => {
    const cert = pem('CERTIFICATE');
    expect(redact(cert)).toBe(cert);
  });

  it('does not register short values, which would redact ordinary words', () => {
    const before = registeredSecretCount();
    registerSecret('abc');
    registerSecret('12345');
    registerSecret('');
    expect(registeredSecretCount()).toBe(before);
    expect(redact('abc 12345 abcdef')).toBe('abc 12345 abcdef');
    registerSecret('123456');
    expect(registeredSecretCount()).toBe(before + 1);
    expect(redact('abc 123456')).toBe('abc [REDACTED]');
  });

  it('replaces the longest registered value first', () => {
    // Registered shortest first: the order of registration must not matter.
    registerSecret('swordfish');
    registerSecret('swordfish-and-chips');
    expect(redact('pw=swordfish-and-chips; old=swordfish')).toBe('pw=[REDACTED]; old=[REDACTED]');
    expect(redact('pw=swordfish-and-chips')).not.toContain('-and-chips');
  });

  it('forgetSecrets empties the registry', () => {
    registerSecret('forgettable-secret');
    forgetSecrets();
    expect(registeredSecretCount()).toBe(0);
    expect(redact('forgettable-secret')).toBe('forgettable-secret');
  });
});
