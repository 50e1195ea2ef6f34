/** Host daemons the lab starts itself: there is no systemd on these machines. */
import { spawn } from 'node:child_process';
import { mkdir, open } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { HarnessError } from '../helpers/common/errors.ts';
import { waitFor } from '../helpers/common/wait.ts';

export function isAlive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function portAnswers(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    const done = (answer: boolean) => {
      socket.destroy();
      resolve(answer);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

export interface DaemonSpec {
  name: string;
  command: string;
  args: string[];
  logsDir: string;
  /** Returns true once the daemon is ready to serve. */
  ready: () => Promise<boolean>;
  readyTimeoutMs: number;
}

/** Starts a daemon detached from this process, so it outlives `lab up`. Returns its pid. */
export async function startDaemon(spec: DaemonSpec): Promise<number> {
  await mkdir(spec.logsDir, { recursive: true });
  const logFile = join(spec.logsDir, `${spec.name}.log`);
  const log = await open(logFile, 'a');
  const child = spawn(spec.command, spec.args, { detached: true, stdio: ['ignore', log.fd, log.fd] });
  const pid = child.pid;
  let exit: string | undefined;
  child.once('exit', (code, signal) => {
    exit = `exited with ${signal ?? code}`;
  });
  child.once('error', (error) => {
    exit = error.message;
  });
  child.unref();
  await log.close();
  if (!pid) throw new HarnessError(`could not start ${spec.name} (${spec.command}): ${exit ?? 'no pid'}`);
  try {
    // An exit is final: a HarnessError (not transient) ends the wait at once.
    await waitFor(
      `${spec.name} to answer`,
      async () => {
        if (exit) throw new HarnessError(`${spec.name} ${exit}`);
        return (await spec.ready()) || { done: false as const, saw: 'not answering yet' };
      },
      { timeoutMs: spec.readyTimeoutMs, intervalMs: 200 },
    );
  } catch (error) {
    stopDaemon(pid);
    throw new HarnessError(`${spec.name} did not come up: ${(error as Error).message} (log: ${logFile})`, { cause: error });
  }
  return pid;
}

export function stopDaemon(pid: number | undefined): void {
  if (!isAlive(pid)) return;
  try {
    process.kill(pid!, 'SIGTERM');
  } catch {
    // Already gone between the check and the kill.
  }
}

export async function stopDaemonAndWait(pid: number | undefined, name: string, timeoutMs = 20_000): Promise<void> {
  if (!isAlive(pid)) return;
  stopDaemon(pid);
  await waitFor(`${name} (pid ${pid}) to exit`, async () => !isAlive(pid), { timeoutMs, intervalMs: 200 }).catch(() => {
    process.kill(pid!, 'SIGKILL');
  });
}
