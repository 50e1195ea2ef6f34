import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { HarnessError } from '../helpers/common/errors.ts';
import type { IncusInstance, IncusResources } from '../helpers/incus/client.ts';
import { checkMemoryFits, deleteOwnInstance, reservedBytes } from './guard.ts';
import { LABEL_OWNER, instanceName, labelsFor } from './labels.ts';
import { rejectionOf } from '../helpers/common/testing/rejection.ts';

const GiB = 2 ** 30;
const RUN = '20261125t120000-abcd';
const OTHER_RUN = '20261125t120000-zzzz';

function instance(name: string, status: string, config: Record<string, string> = {}, memory?: string): IncusInstance {
  const expanded = memory === undefined ? { ...config } : { ...config, 'limits.memory': memory };
  return { name, status, type: 'virtual-machine', config, devices: {}, expanded_config: expanded, created_at: '2026-11-25T12:00:00Z' };
}

/** Only what the guard calls, and a record of every deletion. */
function fakeClient(instances: IncusInstance[], physical = 16 * GiB) {
  const deleted: string[] = [];
  const patched: string[] = [];
  return {
    project: 'terraform-ci',
    deleted,
    patched,
    async patchInstanceConfig(name: string, config: Record<string, string>): Promise<void> {
      patched.push(`${name} ${Object.keys(config).join(',')}`);
    },
    async resources(): Promise<IncusResources> {
      return { cpu: { total: 8 }, memory: { total: physical, used: 0 } };
    },
    async listInstances(): Promise<IncusInstance[]> {
      return instances;
    },
    async getInstance(name: string): Promise<IncusInstance | undefined> {
      return instances.find((candidate) => candidate.name === name);
    },
    async deleteInstance(name: string): Promise<void> {
      deleted.push(name);
    },
  };
}

const rejection = (promise: Promise<unknown>): Promise<Error> => rejectionOf(promise, Error);

const deployment = () => [instance('cc-nix-test', 'Running', {}, '4GiB'), instance('lichen-staging', 'Running', {}, '4GiB')];

describe('reservedBytes', () => {
  it.each([
    ['4GiB', 4 * GiB],
    ['4GB', 4e9],
    ['512MiB', 512 * 2 ** 20],
    ['4294967296', 4 * GiB],
    ['2kB', 2000],
    ['1PiB', 2 ** 50],
    ['25%', 4 * GiB],
  ])('%s reserves %d bytes of a 16 GiB host', (limit, bytes) => {
    expect(reservedBytes(limit, 16 * GiB).bytes).toBe(bytes);
  });

  it('counts an unset or unreadable limit as the whole host', () => {
    expect(reservedBytes(undefined, 16 * GiB)).toMatchObject({ bytes: 16 * GiB, note: expect.stringContaining('no limits.memory') });
    expect(reservedBytes('', 16 * GiB).bytes).toBe(16 * GiB);
    expect(reservedBytes('lots', 16 * GiB)).toMatchObject({ bytes: 16 * GiB, note: expect.stringContaining('unreadable') });
  });
});

describe('checkMemoryFits', () => {
  it('allows the deployment plus one 4 GiB throwaway: exactly the 12 GiB guideline, below 16 GiB', async () => {
    const fit = await checkMemoryFits(fakeClient(deployment()), { instance: 'accept-x', memory: '4GiB', guidelineBytes: 12 * GiB });
    expect(fit).toMatchObject({ runningBytes: 8 * GiB, newBytes: 4 * GiB, totalBytes: 12 * GiB, physicalBytes: 16 * GiB });
    expect(fit.running.map((row) => row.name)).toEqual(['cc-nix-test', 'lichen-staging']);
  });

  it('refuses when the sum would exceed the guideline, naming ACCEPT_RAM_GUIDELINE and every term', async () => {
    const error = await rejection(checkMemoryFits(fakeClient(deployment()), { instance: 'accept-x', memory: '5GiB', guidelineBytes: 12 * GiB }));
    expect(error).toBeInstanceOf(HarnessError);
    expect(error.message).toContain('refusing to create accept-x');
    expect(error.message).toContain('cc-nix-test 4GiB + lichen-staging 4GiB = 8.0 GiB');
    expect(error.message).toContain('with accept-x (5GiB) it would be 13.0 GiB, over the 12.0 GiB guideline (ACCEPT_RAM_GUIDELINE)');
  });

  it('refuses when the sum would reach physical memory, even within the guideline', async () => {
    const error = await rejection(checkMemoryFits(fakeClient(deployment(), 12 * GiB), { instance: 'accept-x', memory: '4GiB', guidelineBytes: 64 * GiB }));
    expect(error).toBeInstanceOf(HarnessError);
    expect(error.message).toMatch(/not below the server's 12\.0 GiB of physical memory \(\/1\.0\/resources\)/);
    expect(error.message).not.toContain('over the');
  });

  it('counts only instances that hold memory: running and frozen, not stopped', async () => {
    const client = fakeClient([instance('a', 'Running', {}, '2GiB'), instance('b', 'Frozen', {}, '2GiB'), instance('c', 'Stopped', {}, '8GiB')]);
    const fit = await checkMemoryFits(client, { instance: 'accept-x', memory: '1GiB', guidelineBytes: 12 * GiB });
    expect(fit.runningBytes).toBe(4 * GiB);
  });

  it('counts a running instance without limits.memory as the whole host, so nothing more fits', async () => {
    const client = fakeClient([instance('unbounded', 'Running')]);
    const error = await rejection(checkMemoryFits(client, { instance: 'accept-x', memory: '1GiB', guidelineBytes: 64 * GiB }));
    expect(error.message).toContain("unbounded (unset) [no limits.memory: counted as the server's whole memory]");
  });

  it('reads the expanded config, where a profile sets the limit', async () => {
    const fromProfile = { ...instance('p', 'Running'), expanded_config: { 'limits.memory': '2GiB' } };
    const fit = await checkMemoryFits(fakeClient([fromProfile]), { instance: 'accept-x', memory: '1GiB', guidelineBytes: 12 * GiB });
    expect(fit.runningBytes).toBe(2 * GiB);
  });

  it('passes on an empty project', async () => {
    const fit = await checkMemoryFits(fakeClient([]), { instance: 'accept-x', memory: '4GiB', guidelineBytes: 12 * GiB });
    expect(fit.totalBytes).toBe(4 * GiB);
  });
});

describe('deleteOwnInstance', () => {
  const name = instanceName(RUN);
  const ours = () => instance(name, 'Running', labelsFor(RUN, new Date()), '4GiB');

  it('deletes an instance carrying our labels for this run', async () => {
    const client = fakeClient([ours()]);
    expect(await deleteOwnInstance(client, name, RUN)).toBe('deleted');
    expect(client.deleted).toEqual([name]);
  });

  it('treats an instance already gone as success', async () => {
    const client = fakeClient([]);
    expect(await deleteOwnInstance(client, name, RUN)).toBe('absent');
    expect(client.deleted).toEqual([]);
  });

  it('refuses the real hosts, naming the instance and the labels it lacks', async () => {
    const client = fakeClient(deployment());
    const error = await rejection(deleteOwnInstance(client, 'cc-nix-test', RUN));
    expect(error).toBeInstanceOf(HarnessError);
    expect(error.message).toBe(
      `refusing to delete cc-nix-test in project terraform-ci: it does not carry this harness's labels for run ${RUN} ` +
        '(user.accept.owner=unset, user.accept.run-id=unset); it was not created by this run, so it is left alone',
    );
    expect(client.deleted).toEqual([]);
  });

  it("refuses another run's throwaway, and a look-alike with a foreign owner", async () => {
    const other = instance(name, 'Running', labelsFor(OTHER_RUN, new Date()));
    await expect(deleteOwnInstance(fakeClient([other]), name, RUN)).rejects.toThrow(`user.accept.run-id=${OTHER_RUN}`);
    const foreign = instance(name, 'Running', { ...labelsFor(RUN, new Date()), [LABEL_OWNER]: 'someone-else' });
    const client = fakeClient([foreign]);
    await expect(deleteOwnInstance(client, name, RUN)).rejects.toThrow('user.accept.owner=someone-else');
    expect(client.deleted).toEqual([]);
  });
});

describe('the machines layer changes instances only behind an ownership check', () => {
  // Every call that stops, resizes or deletes an instance, by file; each must sit behind isOurs.
  const ALLOWED: Record<string, string> = {
    'guard.ts': 'deleteOwnInstance and rebootOwnInstance check isOurs for the run',
    'sweep.ts': 'the sweeper skips anything that is not isOurs and expired',
    // The reaper deletes through deleteOwnInstance, so it needs no entry of its own.
  };

  it('finds such calls only in the allowed files, each of which checks isOurs', async () => {
    const dir = fileURLToPath(new URL('.', import.meta.url));
    const calls: string[] = [];
    for (const file of (await readdir(dir)).filter((name) => name.endsWith('.ts') && !name.endsWith('.test.ts'))) {
      const source = await readFile(join(dir, file), 'utf8');
      for (const match of source.matchAll(/\b(\w+)\.(deleteInstance|patchInstanceConfig|stop)\(/g)) {
        // Instance calls go through an Incus client; `reaper.release()` and a throwaway's own stop() are not these.
        if (match[2] === 'stop' && match[1] !== 'client') continue;
        calls.push(`${file}: ${match[0]}`);
        expect(ALLOWED[file], `${file} calls ${match[0]} and is not on the allow-list`).toBeDefined();
        expect(source, `${file} calls ${match[0]} without isOurs`).toContain('isOurs(');
      }
    }
    expect([...new Set(calls.map((call) => call.split(':')[0]))].sort()).toEqual(Object.keys(ALLOWED).sort());
  });
});
