/**
 * Temporary directories that a killed run does not leave behind for good. Each is named
 * `<prefix>-<pid>-XXXXXX`; the first one a process makes under a prefix removes those of
 * processes that no longer exist, since a SIGKILL runs no `finally`.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const swept = new Map<string, Promise<string[]>>();

/** Whether a process with this pid runs (EPERM: it does, as another user). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes `<prefix>-<pid>-*` under `parent` whose process is gone; answers what it removed. */
export async function sweepOrphans(prefix: string, parent = tmpdir(), alive: (pid: number) => boolean = processAlive): Promise<string[]> {
  const pattern = new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-(\\d+)-[^/]+$`);
  const removed: string[] = [];
  for (const name of await readdir(parent).catch(() => [] as string[])) {
    const pid = Number(pattern.exec(name)?.[1]);
    if (!pid || pid === process.pid || alive(pid)) continue;
    await rm(join(parent, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}

/** A fresh directory `<prefix>-<pid>-XXXXXX` under the system's temporary directory, after one sweep of orphans per prefix. */
export async function scratchDir(prefix: string): Promise<string> {
  if (!swept.has(prefix))
    swept.set(
      prefix,
      sweepOrphans(prefix).catch(() => []),
    );
  await swept.get(prefix);
  return mkdtemp(join(tmpdir(), `${prefix}-${process.pid}-`));
}
