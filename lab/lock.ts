/**
 * Files that hold a live owner's pid, made with O_EXCL: the lab's cross-process locks (the
 * worker leases, and the lock around changes to the lab's state). A file whose owner died is
 * taken over.
 */
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { log } from '../helpers/common/log.ts';
import { waitFor } from '../helpers/common/wait.ts';
import { isAlive } from './daemons.ts';

/** The live pid holding a pid file, if any. */
export async function pidFileOwner(file: string): Promise<number | undefined> {
  const owner = Number((await readFile(file, 'utf8').catch(() => '')).trim());
  return Number.isInteger(owner) && owner > 0 && isAlive(owner) ? owner : undefined;
}

/** Takes the pid file for `pid` if nobody alive holds it; false when someone does. */
export async function takePidFile(file: string, pid: number): Promise<boolean> {
  try {
    const handle = await open(file, 'wx', 0o600);
    await handle.writeFile(`${pid}\n`);
    await handle.close();
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const owner = Number((await readFile(file, 'utf8').catch(() => '')).trim());
  // An empty file is a lock being written this instant: leave it to its writer.
  if (!Number.isInteger(owner) || owner <= 0 || isAlive(owner)) return false;
  await rm(file, { force: true });
  return takePidFile(file, pid);
}

export interface PidLockOptions {
  /** What the lock guards, for the line a waiting caller prints. */
  what: string;
  pollMs?: number;
  heartbeatMs?: number;
  pid?: number;
}

/**
 * Runs `work` holding the pid file `file`, waiting while another live process holds it. For
 * read-modify-write of shared state: two `lab up`s at once would each write what they read.
 */
export async function withPidLock<T>(file: string, options: PidLockOptions, work: () => Promise<T>): Promise<T> {
  const pid = options.pid ?? process.pid;
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  await waitFor(`${options.what} (${file})`, () => takePidFile(file, pid), {
    timeoutMs: 'unbounded',
    intervalMs: options.pollMs ?? 200,
    heartbeat: {
      everyMs: options.heartbeatMs ?? 30_000,
      say: async (waitedMs) =>
        log.info(`waiting for ${options.what} (held by pid ${(await pidFileOwner(file)) ?? 'unknown'}, ${file}) for ${Math.round(waitedMs / 1000)} s`),
    },
  });
  try {
    return await work();
  } finally {
    await rm(file, { force: true });
  }
}
