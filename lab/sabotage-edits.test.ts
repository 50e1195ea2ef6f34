import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { HarnessError } from '../helpers/common/errors.ts';
import { applyEdits, editedText } from './sabotage-edits.ts';

describe('editedText', () => {
  it('replaces the expected text, taking the replacement literally', () => {
    expect(editedText('s', { file: 'f.py', expected: 'if ok:', replacement: 'if $&:' }, 'a\nif ok:\nb')).toBe('a\nif $&:\nb');
  });

  it('refuses text that is gone, naming the sabotage, the file and the text', () => {
    const edit = { file: 'services/bridge.py', expected: '    if not is_member(login):', replacement: '' };
    const refuse = () => editedText('d1-bridge-ignores-membership', edit, '    if not member(login):\n');
    expect(refuse).toThrow(HarnessError);
    expect(refuse).toThrow('sabotage d1-bridge-ignores-membership: services/bridge.py no longer contains "    if not is_member(login):"');
  });

  it('refuses text found more than once: which one would it break?', () => {
    expect(() => editedText('s', { file: 'f', expected: 'x', replacement: 'y' }, 'x x')).toThrow(
      'sabotage s: f contains "x" 2 times, so the edit is ambiguous',
    );
  });

  it('refuses to append to, replace in or remove a file that does not exist', () => {
    for (const edit of [
      { file: 'README.md', append: 'x' },
      { file: 'README.md', expected: 'a', replacement: 'b' },
      { file: 'README.md', remove: true as const },
    ]) {
      expect(() => editedText('s', edit, undefined)).toThrow('sabotage s: README.md does not exist');
    }
  });
});

describe('applyEdits', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('applies edits in order in a work tree: one edit sees the one before', async () => {
    dir = await mkdtemp(join(tmpdir(), 'accept-edits-'));
    await writeFile(join(dir, 'a.txt'), 'one\n');
    await writeFile(join(dir, 'gone.txt'), 'x');
    await applyEdits('s', dir, [
      { file: 'a.txt', append: 'two\n' },
      { file: 'a.txt', expected: 'two\n', replacement: 'three\n' },
      { file: 'new/b.txt', content: 'b' },
      { file: 'gone.txt', remove: true },
    ]);
    expect(await readFile(join(dir, 'a.txt'), 'utf8')).toBe('one\nthree\n');
    expect(await readFile(join(dir, 'new/b.txt'), 'utf8')).toBe('b');
    await expect(readFile(join(dir, 'gone.txt'))).rejects.toThrow(/ENOENT/);
  });
});
