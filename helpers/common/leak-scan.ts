/** For tests: which files under some directories hold any of some values, in any form a credential travels in. */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** A token as it may be written: itself, percent-encoded (in a URL) and inside a Basic header. */
export function credentialForms(username: string, token: string): string[] {
  return [...new Set([token, encodeURIComponent(token), Buffer.from(`${username}:${token}`).toString('base64')])];
}

/** `file: form` for each file under `dirs` that holds one of `needles`; missing directories hold nothing. */
export async function filesHolding(dirs: string[], needles: string[]): Promise<string[]> {
  const hits: string[] = [];
  for (const dir of dirs) {
    const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
    for (const entry of entries.filter((candidate) => candidate.isFile())) {
      const file = join(entry.parentPath, entry.name);
      const text = (await readFile(file).catch(() => Buffer.alloc(0))).toString('latin1');
      for (const needle of needles) if (text.includes(needle)) hits.push(`${file}: holds ${needle === needles[0] ? 'the token' : 'an encoded form of the token'}`);
    }
  }
  return hits;
}
