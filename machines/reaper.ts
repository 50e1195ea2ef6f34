/**
 * A watchdog that outlives its parent: if the process that created a throwaway dies in any way
 * (Ctrl-C, SIGTERM, SIGKILL, a crash), the reaper deletes the instance. The parent releases it
 * after a normal teardown. Like testcontainers' Ryuk, but per instance and without a container.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, openSync, closeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ResolvedTarget } from './resolve.ts';

export interface ReaperSpec {
  parentPid: number;
  instance: string;
  runId: string;
  target: Pick<ResolvedTarget, 'incus' | 'socks'>;
}

export interface Reaper {
  pid: number;
  release(): void;
  /**
   * Deletes the instance before returning, blocking this process. For signal handlers: Vitest
   * exits the process right after its own handler, so an asynchronous teardown would not finish.
   */
  deleteNowSync(timeoutMs?: number): boolean;
}

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = resolve(HERE, '..');

export function startReaper(spec: ReaperSpec, logDir: string): Reaper {
  mkdirSync(logDir, { recursive: true });
  const logFd = openSync(join(logDir, `reaper-${spec.instance}.log`), 'a');
  const env = { ...process.env, ACCEPT_REAPER_SPEC: JSON.stringify(spec) };
  const script = join(HERE, 'reaper-main.ts');
  const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: REPO_ROOT, detached: true, stdio: ['ignore', logFd, logFd], env });
  closeSync(logFd);
  child.unref();
  const pid = child.pid ?? 0;
  let released = false;
  return {
    pid,
    release() {
      if (released || !pid) return;
      released = true;
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // It already exited.
      }
    },
    deleteNowSync(timeoutMs = 120_000) {
      const result = spawnSync(process.execPath, ['--import', 'tsx', script, '--now'], {
        cwd: REPO_ROOT,
        env,
        stdio: ['ignore', 'inherit', 'inherit'],
        timeout: timeoutMs,
      });
      return result.status === 0;
    },
  };
}
