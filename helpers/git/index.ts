/** Operator-side git: clones of the base and instance repos, read as a person would. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HarnessError } from '../common/errors.ts';
import { exec } from '../common/exec.ts';

export interface Clone extends AsyncDisposable {
  dir: string;
  url: string;
  commit: string;
  remove(): Promise<void>;
}

async function git(args: string[], cwd?: string): Promise<string> {
  const result = await exec('git', args, { cwd, timeoutMs: 300_000 });
  if (result.exitCode !== 0) throw new HarnessError(`git ${args.join(' ')} failed (exit ${result.exitCode}): ${result.stderr.trim()}`);
  return result.stdout.trim();
}

/** A fresh clone in a temporary directory; `remove()` (or `await using`) deletes it. */
export async function cloneRepo(url: string, options: { recursive?: boolean; setting?: string } = {}): Promise<Clone> {
  const dir = await mkdtemp(join(tmpdir(), 'accept-clone-'));
  try {
    await git(['clone', '-q', ...(options.recursive ? ['--recursive'] : []), url, dir]);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw new HarnessError(`could not clone ${url}${options.setting ? ` (${options.setting})` : ''}: ${(error as Error).message}`, { cause: error });
  }
  const commit = await git(['rev-parse', 'HEAD'], dir);
  let removed = false;
  const remove = async () => {
    if (removed) return;
    removed = true;
    await rm(dir, { recursive: true, force: true });
  };
  return { dir, url, commit, remove, [Symbol.asyncDispose]: remove };
}
