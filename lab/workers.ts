/**
 * Leases on the lab's worker projects, across processes: a run that creates a throwaway holds one
 * project for its whole length, so that at most `count` cold runs share the machine and each
 * sees only its own instances (C6 sums one project). A lease is a file made with O_EXCL that
 * holds the owner's pid; a lease whose owner died is taken over.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { log } from '../helpers/common/log.ts';
import { waitFor } from '../helpers/common/wait.ts';
import { workerProjects } from './lifecycle.ts';
import { pidFileOwner, takePidFile } from './lock.ts';

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

const WHOLE_LAB = 'whole-lab.lease';

function leaseDir(labDir: string): string {
  return join(labDir, 'workers');
}

/**
 * Holds every worker project at once, for what changes the lab itself (a run with another repo
 * layout regenerates the repos and keys every run reads). It takes each project the moment it is
 * free and keeps it, so runs that need one project cannot starve it; a lock of its own comes
 * first, so that two of these cannot each hold a part and wait for the rest.
 */
export async function leaseAllWorkers(labDir: string, count: number, options: LeaseOptions = {}): Promise<WorkerLease> {
  const pid = options.pid ?? process.pid;
  const dir = leaseDir(labDir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const wanted = [join(dir, WHOLE_LAB), ...workerProjects(count).map((project) => join(dir, `${project}.lease`))];
  const held = new Set<string>();
  await waitFor(
    'every lab worker',
    async () => {
      for (const file of wanted) {
        if (held.has(file)) continue;
        if (await takePidFile(file, pid)) held.add(file);
        // Nothing past the lock of its own until that is held.
        if (!held.has(wanted[0]!)) break;
      }
      return held.size === wanted.length;
    },
    {
      timeoutMs: 'unbounded',
      intervalMs: options.pollMs ?? 250,
      heartbeat: {
        everyMs: options.heartbeatMs ?? 60_000,
        say: (waitedMs) => log.info(`waiting for every lab worker (holding ${Math.max(0, held.size - 1)} of ${count}) for ${Math.round(waitedMs / 1000)} s`),
      },
    },
  );
  let released = false;
  return {
    project: workerProjects(count)[0]!,
    release: async () => {
      if (released) return;
      released = true;
      await Promise.all([...held].map((file) => rm(file, { force: true })));
    },
  };
}

/** Waits for a free worker project of the first `count` (or of `only`), and holds it until `release()`. */
export async function leaseWorker(labDir: string, count: number, options: LeaseOptions & { only?: string[] } = {}): Promise<WorkerLease> {
  const pid = options.pid ?? process.pid;
  const dir = leaseDir(labDir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const taken = await waitFor(
    'a free lab worker',
    async () => {
      // Someone is taking the whole lab: it has the first claim on every project that frees.
      const whole = await pidFileOwner(join(dir, WHOLE_LAB));
      for (const project of whole ? [] : (options.only ?? workerProjects(count))) {
        const file = join(dir, `${project}.lease`);
        if (await takePidFile(file, pid)) return { project, file };
      }
      return false;
    },
    {
      timeoutMs: 'unbounded',
      intervalMs: options.pollMs ?? 250,
      heartbeat: {
        everyMs: options.heartbeatMs ?? 60_000,
        say: (waitedMs) => log.info(`waiting for a free lab worker (${count} busy) for ${Math.round(waitedMs / 1000)} s`),
      },
    },
  );
  let released = false;
  return {
    project: taken.project,
    release: async () => {
      if (released) return;
      released = true;
      await rm(taken.file, { force: true });
    },
  };
}
