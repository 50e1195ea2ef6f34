import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replaceFile } from './state.ts';

describe('replaceFile', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'accept-state-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('never shows a reader an empty or partial file while it rewrites one', async () => {
    const path = join(dir, 'server.crt');
    const contents = ['A'.repeat(200_000), 'B'.repeat(200_000)];
    await writeFile(path, contents[0]!);
    const seen = new Set<number>();
    let writing = true;
    const reader = (async () => {
      while (writing) seen.add((await readFile(path, 'utf8')).length);
    })();
    for (let round = 1; round <= 40; round++) await replaceFile(path, contents[round % 2]!);
    writing = false;
    await reader;
    expect([...seen]).toEqual([200_000]);
    expect((await readdir(dir)).filter((name) => name.endsWith('.tmp'))).toEqual([]);
  });

  it('leaves an equal file untouched, and gives a new one the mode asked for', async () => {
    const path = join(dir, 'lab.env');
    await replaceFile(path, 'X=1\n', 0o644);
    expect((await stat(path)).mode & 0o777).toBe(0o644);
    const before = (await stat(path)).ino;
    await replaceFile(path, 'X=1\n');
    expect((await stat(path)).ino).toBe(before);
    await replaceFile(path, 'X=2\n');
    expect(await readFile(path, 'utf8')).toBe('X=2\n');
  });
});
