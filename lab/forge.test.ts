import { spawn } from 'node:child_process';
import { access, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/common/dial.ts';
import { SERVICES_DIR } from '../helpers/common/testing/standins.ts';
import { waitFor } from '../helpers/common/wait.ts';

/** A fake incusd on a unix socket: GET /1.0/instances/<name> is 200 while `present` holds it. */
async function fakeIncus(dir: string, present: Set<string>): Promise<{ socket: string; close(): Promise<void> }> {
  const socket = join(dir, 'incus.socket');
  const server = http.createServer((request, response) => {
    const name = /^\/1\.0\/instances\/([^?]+)/.exec(request.url ?? '')?.[1];
    response.writeHead(name && present.has(decodeURIComponent(name)) ? 200 : 404, { 'Content-Type': 'application/json' });
    response.end('{}');
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  return { socket, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

/** forge.py serving `instance`, started by `ownerPid`, with a directory of its own to remove when it stops. */
async function forgeOf(instance: string, ownerPid: number, socket: string, dir: string) {
  const own = join(dir, 'own');
  await mkdir(own);
  await writeFile(join(dir, 'enrolled'), 'custom-html\n');
  const port = await freePort();
  const child = spawn(
    'python3',
    [
      join(SERVICES_DIR, 'forge.py'),
      '--port',
      String(port),
      '--state',
      join(own, 'state.json'),
      '--url',
      'https://127.0.0.1',
      '--org',
      'coop-cloud',
      '--members',
      'alice=alice_token',
      '--recipes',
      join(dir, 'enrolled'),
      '--instance',
      instance,
      '--project',
      'p',
      '--incus-socket',
      socket,
      '--owner-pid',
      String(ownerPid),
      '--remove-on-exit',
      own,
    ],
    { env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1', CCCI_SECRETS_DIR: dir }, stdio: 'ignore' },
  );
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  cleanups.push(async () => {
    child.kill('SIGKILL');
    await exited;
  });
  return { own, exited: () => child.exitCode !== null || child.signalCode !== null, whenExited: exited };
}

describe("the lab's forge of one throwaway (lab/forge.ts)", () => {
  it('keeps running while its throwaway exists, though the run that started it is gone, and stops once the throwaway is', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'accept-forge-life-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const present = new Set(['accept-x']);
    const incus = await fakeIncus(dir, present);
    cleanups.push(() => incus.close());
    const dead = spawn('true');
    await new Promise((resolve) => dead.once('exit', resolve));
    const forge = await forgeOf('accept-x', dead.pid!, incus.socket, dir);
    // A kept throwaway: its run has ended, and its forge serves on (three looks at incusd).
    await new Promise((resolve) => setTimeout(resolve, 3_500));
    expect(forge.exited()).toBe(false);
    present.delete('accept-x');
    expect(await forge.whenExited).toBe(0);
    await expect(access(forge.own)).rejects.toThrow();
  }, 20_000);

  it('before its throwaway exists, stops once the run that started it is gone', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'accept-forge-life-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const incus = await fakeIncus(dir, new Set());
    cleanups.push(() => incus.close());
    const owner = spawn('sleep', ['2']);
    const forge = await forgeOf('accept-y', owner.pid!, incus.socket, dir);
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    expect(forge.exited(), 'it stopped while its run was still there').toBe(false);
    await waitFor('the forge to stop after its run', async () => forge.exited(), { timeoutMs: 10_000, intervalMs: 100 });
    expect(await forge.whenExited).toBe(0);
  }, 20_000);
});
