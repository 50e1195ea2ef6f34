/**
 * Leases on the lab's worker projects, across processes: a run that creates a throwaway holds one
 * project for its whole length, so that at most `count` cold runs share the machine and each
 * sees only its own instances (C6 sums one project). A lease is a file made with O_EXCL that
 * holds the owner's pid; a lease whose owner died is taken over.
 */
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { log } from '../helpers/common/log.ts';
import { isAlive } from './daemons.ts';
import { workerProjects } from './index.ts';

export interface WorkerLease {
  project: string;
  release(): Promise<void>;
}

export interface LeaseOptions {
  /** How often a waiting caller looks again. */
  pollMs?: number;
  /** How often a waiting caller says it still waits. */
  heartbeatMs?: number;
  pid?: number;
}

function leaseDir(labDir: string): string {
  return join(labDir, 'workers');
}

async function tryTake(file: string, pid: number): Promise<boolean> {
  try {
    const handle = await open(file, 'wx', 0o600);
    await handle.writeFile(`${pid}\n`);
    await handle.close();
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const owner = Number((await readFile(file, 'utf8').catch(() => '')).trim());
  // An empty file is a lease being written this instant: leave it to its writer.
  if (!Number.isInteger(owner) || owner <= 0 || isAlive(owner)) return false;
  await rm(file, { force: true });
  return tryTake(file, pid);
}

/** Waits for a free worker project of the first `count`, and holds it until `release()`. */
export async function leaseWorker(labDir: string, count: number, options: LeaseOptions = {}): Promise<WorkerLease> {
  const pid = options.pid ?? process.pid;
  const dir = leaseDir(labDir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const started = Date.now();
  let heard = started;
  for (;;) {
    for (const project of workerProjects(count)) {
      const file = join(dir, `${project}.lease`);
      if (await tryTake(file, pid)) {
        let released = false;
        return {
          project,
          release: async () => {
            if (released) return;
            released = true;
            await rm(file, { force: true });
          },
        };
      }
    }
    if (Date.now() - heard >= (options.heartbeatMs ?? 60_000)) {
      heard = Date.now();
      log.info(`waiting for a free lab worker (${count} busy) for ${Math.round((heard - started) / 1000)} s`);
    }
    await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 250));
  }
}
