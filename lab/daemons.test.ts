import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HarnessError } from '../helpers/common/errors.ts';
import { WaitTimeoutError, waitFor } from '../helpers/common/wait.ts';
import { isAlive, portAnswers, startDaemon, stopDaemon, stopDaemonAndWait } from './daemons.ts';

let logsDir: string;
const started: number[] = [];

beforeAll(async () => {
  logsDir = await mkdtemp(join(tmpdir(), 'accept-daemons-'));
});

afterEach(() => {
  // Daemons are detached: anything a failed test left running would outlive the run.
  for (const pid of started.splice(0)) stopDaemon(pid);
});

afterAll(async () => {
  await rm(logsDir, { recursive: true, force: true });
});

async function rejection(promise: Promise<unknown>): Promise<Error> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(HarnessError);
  return error as Error;
}

/** The pid a `sh -c 'echo $$; exec …'` daemon wrote as its first log line. */
async function loggedPid(logFile: string): Promise<number> {
  // The log may not exist yet: "not yet", where any other read error ends the wait.
  const log = () => readFile(logFile, 'utf8').catch((error: NodeJS.ErrnoException) => (error.code === 'ENOENT' ? '' : Promise.reject(error)));
  return waitFor('the daemon to log its pid', async () => Number((await log()).split('\n')[0]) || false, { timeoutMs: 5000, intervalMs: 20 });
}

function listen(): Promise<{ server: Server; port: number }> {
  return new Promise((resolve, reject) => {
    const server = createServer((socket) => socket.end());
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (typeof address === 'object' && address) resolve({ server, port: address.port });
      else reject(new Error('no address'));
    });
  });
}

describe('startDaemon', () => {
  it('rejects at once when the daemon exits, naming it and its log, which has its output', async () => {
    let readyChecks = 0;
    const error = await rejection(
      startDaemon({
        name: 'crashy',
        command: 'sh',
        args: ['-c', 'echo boom; exit 3'],
        logsDir,
        ready: async () => {
          readyChecks++;
          return false;
        },
        readyTimeoutMs: 20_000,
      }),
    );
    const logFile = join(logsDir, 'crashy.log');
    expect(error.message).toContain('crashy');
    expect(error.message).toContain(logFile);
    expect(error.message).toContain('exited with 3');
    // An exit is final: the wait ended on the exit, not by waiting out the ready timeout.
    expect(error.cause).not.toBeInstanceOf(WaitTimeoutError);
    expect((error.cause as Error).message).toBe('crashy exited with 3');
    expect(error.message).not.toMatch(/timed out/);
    // Nor by asking the daemon until the deadline and only then noticing the exit: that is 100 checks, 200 ms apart.
    expect(readyChecks).toBeLessThan(50);
    expect(await readFile(logFile, 'utf8')).toContain('boom');
  });

  it('kills a daemon that never becomes ready and says it did not come up', async () => {
    const logFile = join(logsDir, 'sleepy.log');
    const pending = startDaemon({
      name: 'sleepy',
      command: 'sh',
      args: ['-c', 'echo $$; exec sleep 30'],
      logsDir,
      ready: async () => false,
      readyTimeoutMs: 500,
    });
    const pid = await loggedPid(logFile);
    started.push(pid);
    const error = await rejection(pending);
    expect(error.message).toMatch(/^sleepy did not come up: timed out after \d+ ms waiting for sleepy to answer/);
    expect(error.message).toContain(`(log: ${logFile})`);
    await waitFor('the unready daemon to be gone', async () => !isAlive(pid), { timeoutMs: 5000, intervalMs: 50 });
  });

  it('names a program that cannot be started', async () => {
    const error = await rejection(
      startDaemon({ name: 'ghost', command: 'no-such-daemon-4b1d', args: [], logsDir, ready: async () => true, readyTimeoutMs: 2000 }),
    );
    expect(error.message).toContain('ghost');
    expect(error.message).toContain('no-such-daemon-4b1d');
  });

  it('returns the pid of a ready daemon, which keeps running until stopped', async () => {
    let polls = 0;
    const pid = await startDaemon({
      name: 'steady',
      command: 'sleep',
      args: ['30'],
      logsDir,
      ready: async () => ++polls >= 2,
      readyTimeoutMs: 5000,
    });
    started.push(pid);
    expect(isAlive(pid)).toBe(true);
    await stopDaemonAndWait(pid, 'steady', 5000);
    expect(isAlive(pid)).toBe(false);
  });
});

describe('portAnswers', () => {
  it('is true for a listening port and false once it closed', async () => {
    const { server, port } = await listen();
    expect(await portAnswers('127.0.0.1', port)).toBe(true);
    await new Promise((resolve) => server.close(resolve));
    expect(await portAnswers('127.0.0.1', port)).toBe(false);
  });
});

describe('isAlive', () => {
  it('knows this process and nothing for no pid', () => {
    expect(isAlive(process.pid)).toBe(true);
    expect(isAlive(undefined)).toBe(false);
    expect(isAlive(0)).toBe(false);
  });
});
