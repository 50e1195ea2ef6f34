/** sharedClone: one clone per state of the remote's refs, used again only while it is what a fresh clone would be. */
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { succeed } from '../common/exec.ts';
import { expectedCloneRefs, sharedClone } from './index.ts';

let root: string;
let origin: string;
let work: string;
let cacheDir: string;

const git = (cwd: string, ...args: string[]) => succeed('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', ...args], { cwd });

async function commit(file: string, text: string): Promise<void> {
  await writeFile(join(work, file), text);
  await git(work, 'add', file);
  await git(work, 'commit', '-qm', `${file}: ${text}`);
  await git(work, 'push', '-q', 'origin', 'HEAD:main');
}

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'accept-shared-clone-'));
  origin = join(root, 'origin.git');
  work = join(root, 'work');
  cacheDir = join(root, 'cache');
  await succeed('git', ['init', '-q', '--bare', '-b', 'main', origin]);
  await succeed('git', ['clone', '-q', origin, work]);
  await commit('a.txt', 'one');
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('sharedClone', () => {
  it('clones once while the remote is unchanged, and afresh after a push', async () => {
    const url = `file://${origin}`;
    const first = await sharedClone(url, { cacheDir });
    const second = await sharedClone(url, { cacheDir });
    expect(second.dir).toBe(first.dir);
    expect(second.commit).toBe(first.commit);
    await commit('a.txt', 'two');
    const third = await sharedClone(url, { cacheDir });
    expect(third.dir).not.toBe(first.dir);
    expect(third.commit).not.toBe(first.commit);
  });

  it('clones afresh when another branch moved, as a fresh clone would hold it (a leak scan reads every ref)', async () => {
    const url = `file://${origin}`;
    const first = await sharedClone(url, { cacheDir });
    await git(work, 'push', '-q', 'origin', 'HEAD:side');
    const second = await sharedClone(url, { cacheDir });
    expect(second.commit).toBe(first.commit);
    expect(second.dir).not.toBe(first.dir);
  });

  it('does not use a clone whose work tree was changed, and replaces it', async () => {
    const url = `file://${origin}`;
    const first = await sharedClone(url, { cacheDir });
    await writeFile(join(first.dir, 'a.txt'), 'tampered');
    const second = await sharedClone(url, { cacheDir });
    expect(second.dir).toBe(first.dir);
    expect((await git(second.dir, 'status', '--porcelain')).stdout).toBe('');
    expect(await readdir(cacheDir)).toHaveLength(1);
  });

  it('keeps the clone when its reader is done', async () => {
    const clone = await sharedClone(`file://${origin}`, { cacheDir });
    await clone.remove();
    expect((await git(clone.dir, 'rev-parse', 'HEAD')).stdout.trim()).toBe(clone.commit);
  });
});

describe('expectedCloneRefs', () => {
  it('maps the remote heads to origin/* and keeps tags, without peeled lines', () => {
    const refs = ['a1 HEAD', 'a1 refs/heads/main', 'b2 refs/heads/side', 'c3 refs/tags/v1', 'a1 refs/tags/v1^{}', 'd4 refs/pull/1/head'].join('\n');
    expect(expectedCloneRefs(refs)).toEqual({ head: 'a1', refs: ['a1 refs/remotes/origin/main', 'b2 refs/remotes/origin/side', 'c3 refs/tags/v1'] });
  });
});
