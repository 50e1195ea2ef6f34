import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { workerProjects } from './index.ts';
import { leaseAllWorkers, leaseWorker } from './workers.ts';

let labDir: string;
beforeEach(async () => {
  labDir = await mkdtemp(join(tmpdir(), 'accept-workers-'));
});
afterEach(async () => {
  await rm(labDir, { recursive: true, force: true });
});

describe('worker projects', () => {
  test('the lab project first, then numbered ones', () => {
    expect(workerProjects(3)).toEqual(['terraform-ci', 'terraform-ci-2', 'terraform-ci-3']);
    expect(workerProjects(1)).toEqual(['terraform-ci']);
  });
});

describe('leaseWorker', () => {
  test('hands out each project once, and a released one again', async () => {
    const first = await leaseWorker(labDir, 2);
    const second = await leaseWorker(labDir, 2);
    expect([first.project, second.project]).toEqual(['terraform-ci', 'terraform-ci-2']);
    expect(await readFile(join(labDir, 'workers', 'terraform-ci.lease'), 'utf8')).toBe(`${process.pid}\n`);
    await first.release();
    await first.release();
    const third = await leaseWorker(labDir, 2);
    expect(third.project).toBe('terraform-ci');
    await Promise.all([second.release(), third.release()]);
  });

  test('waits while every project is held, and takes the first one freed', async () => {
    const held = await Promise.all([leaseWorker(labDir, 2), leaseWorker(labDir, 2)]);
    let got: string | undefined;
    const waiting = leaseWorker(labDir, 2, { pollMs: 10 }).then((lease) => {
      got = lease.project;
      return lease;
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(got).toBeUndefined();
    // Two leases taken at once may come back in either order: expect the one released.
    const freed = held[1]!.project;
    await held[1]!.release();
    const lease = await waiting;
    expect(lease.project).toBe(freed);
    await Promise.all([held[0]!.release(), lease.release()]);
  });

  test('while it waits, says so every heartbeatMs', async () => {
    const held = await leaseWorker(labDir, 1);
    const lines: string[] = [];
    const write = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
      lines.push(String(chunk));
      return true;
    });
    try {
      const waiting = leaseWorker(labDir, 1, { pollMs: 5, heartbeatMs: 20 });
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(lines.length).toBeGreaterThan(0);
      expect(lines[0]).toBe('  waiting for a free lab worker (1 busy) for 0 s\n');
      await held.release();
      await (await waiting).release();
    } finally {
      write.mockRestore();
    }
  });

  test('takes over a lease whose owner died, and leaves a live owner alone', async () => {
    await mkdir(join(labDir, 'workers'), { recursive: true });
    // A pid far above pid_max is never alive.
    await writeFile(join(labDir, 'workers', 'terraform-ci.lease'), '99999999\n');
    await writeFile(join(labDir, 'workers', 'terraform-ci-2.lease'), `${process.ppid}\n`);
    const lease = await leaseWorker(labDir, 2);
    expect(lease.project).toBe('terraform-ci');
    expect(await readFile(join(labDir, 'workers', 'terraform-ci-2.lease'), 'utf8')).toBe(`${process.ppid}\n`);
    await lease.release();
  });
});

describe('leaseAllWorkers', () => {
  test('takes each project as it frees, keeping it, so a single lease waits until it lets go', async () => {
    const single = await leaseWorker(labDir, 2);
    let all: Awaited<ReturnType<typeof leaseAllWorkers>> | undefined;
    const waiting = leaseAllWorkers(labDir, 2, { pollMs: 10 }).then((lease) => (all = lease));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(all).toBeUndefined();
    // terraform-ci-2 was free, so the waiting caller took it: a single lease finds nothing free.
    let other: string | undefined;
    const next = leaseWorker(labDir, 2, { pollMs: 10 }).then((lease) => {
      other = lease.project;
      return lease;
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(other).toBeUndefined();
    await single.release();
    await waiting;
    expect(all!.project).toBe('terraform-ci');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(other).toBeUndefined();
    await all!.release();
    expect((await next).project).toBe('terraform-ci');
    await (await next).release();
  });

  test('one at a time: a second caller waits for the first to let go', async () => {
    const first = await leaseAllWorkers(labDir, 2);
    let second: Awaited<ReturnType<typeof leaseAllWorkers>> | undefined;
    const waiting = leaseAllWorkers(labDir, 2, { pollMs: 10 }).then((lease) => (second = lease));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(second).toBeUndefined();
    await first.release();
    await (await waiting).release();
  });
});
