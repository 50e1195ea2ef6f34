/** Age identities and recipients, and the data key they unwrap from a sops file's age slots. */
import { Decrypter, armor, identityToRecipient } from 'age-encryption';
import { redact, registerSecret } from '../common/redact.ts';
import { SopsError } from './error.ts';
import type { ParsedMetadata } from './metadata.ts';

/** Reads an age identity file: `#` comments, blank lines and `AGE-SECRET-KEY-1…` lines. */
export function parseAgeIdentities(text: string, source: string): string[] {
  const identities: string[] = [];
  text.split(/\r?\n/).forEach((line, index) => {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    if (/^AGE-SECRET-KEY-1[0-9A-Z]+$/.test(trimmed)) {
      registerSecret(trimmed);
      identities.push(trimmed);
      return;
    }
    // The line is not quoted: it might be a mangled key.
    throw new SopsError('malformed', source, `${source}: line ${index + 1} is neither a comment nor an age X25519 identity (AGE-SECRET-KEY-1…)`);
  });
  if (identities.length === 0) {
    throw new SopsError('malformed', source, `${source} holds no age identity (no AGE-SECRET-KEY-1… line)`);
  }
  return identities;
}

/** The age recipients (age1…, public) of identities: what a sops file lists for the keys that open it. */
export async function recipientsOf(identities: string[]): Promise<string[]> {
  return Promise.all(identities.map((identity) => identityToRecipient(identity)));
}

export async function unwrapDataKey(parsed: ParsedMetadata, identities: string[], source: string): Promise<Buffer> {
  const { age } = parsed.metadata;
  if (age.length === 0) {
    if (parsed.otherKeys.length > 0) {
      throw new SopsError(
        'unsupported-key-type',
        source,
        `${source} has no age recipient; its data key is encrypted only for ${parsed.otherKeys.join('; ')}, which this codec cannot use (age only)`,
      );
    }
    throw new SopsError('malformed', source, `${source}: the sops block lists no key that holds the data key`);
  }
  const decrypter = new Decrypter();
  identities.forEach((identity, index) => {
    registerSecret(identity);
    try {
      decrypter.addIdentity(identity);
    } catch {
      // The library's message may quote the key, so it is not passed on.
      throw new SopsError('malformed', source, `age identity #${index + 1} (for ${source}) is not a valid age identity`);
    }
  });
  const problems: string[] = [];
  for (const entry of age) {
    let file: Uint8Array;
    try {
      file = armor.decode(entry.enc);
    } catch {
      problems.push(`${entry.recipient}: enc is not an armored age file`);
      continue;
    }
    try {
      const key = Buffer.from(await decrypter.decrypt(file));
      if (key.length !== 32) {
        throw new SopsError('malformed', source, `${source}: the data key for ${entry.recipient} is ${key.length} bytes, not 32`);
      }
      return key;
    } catch (error) {
      if (error instanceof SopsError) throw error;
      const message = error instanceof Error ? error.message : String(error);
      if (!/no identity matched/.test(message)) problems.push(`${entry.recipient}: ${redact(message)}`);
    }
  }
  const recipients = age.map((entry) => entry.recipient).join(',');
  throw new SopsError(
    'no-matching-key',
    source,
    `none of the ${identities.length} age identities opens any of the ${age.length} recipients ${recipients} in ${source}` +
      (problems.length ? ` (also: ${problems.join('; ')})` : ''),
  );
}
