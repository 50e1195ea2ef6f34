import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

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
});
