/** For tests: which files under some directories hold any of some values, in any form a credential travels in. */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MultiMatcher } from '../multi-match.ts';
import { secretForms } from '../secret-forms.ts';

/**
 * A token in every form it may be written in (helpers/common/secret-forms.ts), and the same for
 * `username:token`; the last is the token inside a Basic header (base64 of `username:token`).
 */
export function credentialForms(username: string, token: string): string[] {
  const basic = Buffer.from(`${username}:${token}`).toString('base64');
  const forms = [token, ...secretForms('token', token).map(({ text }) => text), ...secretForms('basic', `${username}:${token}`).map(({ text }) => text)];
  return [...new Set(forms.filter((form) => form !== basic)), basic];
}

/** `file: form` for each file under `dirs` that holds one of `needles` (all searched in one pass); missing directories hold nothing. */
export async function filesHolding(dirs: string[], needles: string[]): Promise<string[]> {
  const matcher = new MultiMatcher(needles.map((needle) => Buffer.from(needle)));
  const hits: string[] = [];
  for (const dir of dirs) {
    const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
    for (const entry of entries.filter((candidate) => candidate.isFile())) {
      const file = join(entry.parentPath, entry.name);
      const counts = matcher.counts(await readFile(file).catch(() => Buffer.alloc(0)));
      if (counts) hits.push(`${file}: holds ${counts[0]! > 0 ? 'the token' : 'an encoded form of the token'}`);
    }
  }
  return hits;
}
