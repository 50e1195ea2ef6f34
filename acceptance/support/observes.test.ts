import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { checkLine, withMachine } from './run-record.ts';

const ACCEPTANCE = fileURLToPath(new URL('..', import.meta.url));

describe('every check names the machine it observed', () => {
  it('each test of each spec calls observes() first thing', async () => {
    const missing: string[] = [];
    for (const file of (await readdir(ACCEPTANCE)).filter((name) => name.endsWith('.spec.ts'))) {
      const lines = (await readFile(join(ACCEPTANCE, file), 'utf8')).split('\n');
      lines.forEach((line, index) => {
        if (/^\s*test(\.each)?\(/.test(line) && !/^\s*observes\(task, /.test(lines[index + 1] ?? '')) missing.push(`${file}:${index + 1}`);
      });
    }
    expect(missing, `tests that do not say which machine they observe: ${missing.join(', ')}`).toEqual([]);
  });

  it('puts the machine before a line that does not name it, and leaves one that does as it is', () => {
    expect(withMachine('served leaf = git wildcard_cert', 'accept-1 (the throwaway of this run)')).toBe('[accept-1 (the throwaway of this run)] served leaf = git wildcard_cert');
    expect(withMachine('cc-nix-test (the running cc-ci): /run/current-system = clean build', 'cc-nix-test (the running cc-ci)')).toBe('cc-nix-test (the running cc-ci): /run/current-system = clean build');
    expect(checkLine({ name: 'zero drift', verdict: 'FAIL', cause: 'clean-clone toplevel ≠ /run/current-system', machine: 'cc-nix-test (the running cc-ci)' })).toBe(
      '[cc-nix-test (the running cc-ci)] zero drift: clean-clone toplevel ≠ /run/current-system',
    );
    expect(checkLine({ name: 'x', verdict: 'PASS', evidence: 'no machine recorded' })).toBe('no machine recorded');
  });
});
