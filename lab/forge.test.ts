import { spawn } from 'node:child_process';
import { access, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/common/dial.ts';
import { SERVICES_DIR } from '../helpers/common/testing/standins.ts';
import { waitFor } from '../helpers/common/wait.ts';
import { sweepStale } from './forge.ts';

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

/** A directory of this test's own, with a fake incusd on a socket in it that knows `present`; both go when the test ends. */
async function dirWithIncus(prefix: string, present: Set<string>): Promise<{ dir: string; socket: string }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const incus = await fakeIncus(dir, present);
  cleanups.push(() => incus.close());
  return { dir, socket: incus.socket };
}

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const dead = spawn('true');
  await new Promise((resolve) => dead.once('exit', resolve));
  return dead.pid!;
}

/** forge.py serving `instance`, started by `ownerPid`, with a directory of its own to remove when it stops. */
async function forgeOf(instance: string, ownerPid: number, socket: string, dir: string, own = join(dir, 'own')) {
  await mkdir(own, { recursive: true });
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
  return { own, port, exited: () => child.exitCode !== null || child.signalCode !== null, whenExited: exited };
}

describe("the lab's forge of one throwaway (lab/forge.ts)", () => {
  it('keeps running while its throwaway exists, though the run that started it is gone, and stops once the throwaway is', async () => {
    const present = new Set(['accept-x']);
    const { dir, socket } = await dirWithIncus('accept-forge-life-', present);
    const dead = await deadPid();
    const forge = await forgeOf('accept-x', dead, socket, dir);
    // A kept throwaway: its run has ended, and its forge serves on (three looks at incusd).
    await new Promise((resolve) => setTimeout(resolve, 3_500));
    expect(forge.exited()).toBe(false);
    present.delete('accept-x');
    expect(await forge.whenExited).toBe(0);
    await expect(access(forge.own)).rejects.toThrow();
  }, 20_000);

  it('before its throwaway exists, stops once the run that started it is gone', async () => {
    const { dir, socket } = await dirWithIncus('accept-forge-life-', new Set());
    const owner = spawn('sleep', ['2']);
    const forge = await forgeOf('accept-y', owner.pid!, socket, dir);
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    expect(forge.exited(), 'it stopped while its run was still there').toBe(false);
    await waitFor('the forge to stop after its run', async () => forge.exited(), { timeoutMs: 10_000, intervalMs: 100 });
    expect(await forge.whenExited).toBe(0);
  }, 20_000);
});

describe('the sweep of forge directories left by killed runs (lab/forge.ts)', () => {
  it('removes a directory whose recorded forge is dead, but never one a running forge serves', async () => {
    const { dir: labDir, socket } = await dirWithIncus('accept-forge-sweep-', new Set(['cc-nix-test']));
    const dead = await deadPid();
    const runs = join(labDir, 'forge', 'runs');
    // Both record a dead forge; in "served", a new forge has started since (its pid file not yet written).
    const served = join(runs, 'p-cc-nix-test');
    const left = join(runs, 'accept-gone');
    const forge = await forgeOf('cc-nix-test', process.pid, socket, labDir, served);
    for (const dir of [served, left]) {
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, 'forge.pid'), `${dead}\n`);
    }
    await waitFor(
      'the forge to write its state',
      () =>
        access(join(served, 'state.json')).then(
          () => true,
          () => false,
        ),
      { timeoutMs: 10_000, intervalMs: 100 },
    );
    await sweepStale(labDir);
    await expect(access(left), 'the directory of a dead forge was kept').rejects.toThrow();
    await expect(access(served), 'the directory a running forge serves was swept').resolves.toBeUndefined();
    expect(forge.exited()).toBe(false);
  }, 20_000);
});

describe("the forge stand-in's own faults", () => {
  it('answer 500 naming what broke, so that a lab ERROR says so', async () => {
    const { dir, socket } = await dirWithIncus('accept-forge-fault-', new Set(['accept-z']));
    await writeFile(join(dir, 'alice_token'), 'alice-secret\n');
    const forge = await forgeOf('accept-z', process.pid, socket, dir);
    const comment = () =>
      fetch(`http://127.0.0.1:${forge.port}/api/v1/repos/coop-cloud/custom-html/issues/1/comments`, {
        method: 'POST',
        headers: { Authorization: 'token alice-secret', 'Content-Type': 'application/json' },
        body: JSON.stringify({ body: '!testme' }),
      });
    await waitFor(
      'the forge to answer',
      () =>
        comment().then(
          (answer) => answer.status === 201,
          () => false,
        ),
      { timeoutMs: 10_000, intervalMs: 100 },
    );
    // Its state directory taken from under it: the write fails, and the answer says how.
    await rm(forge.own, { recursive: true, force: true });
    const answer = await comment();
    expect(answer.status).toBe(500);
    expect(((await answer.json()) as { message: string }).message).toMatch(/^internal error of the lab's stand-in: FileNotFoundError: .*state\.json/);
  }, 20_000);
});
