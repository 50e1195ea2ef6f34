import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig, realTargetDurations } from '../helpers/common/config.ts';
import { ConfigError } from '../helpers/common/errors.ts';

import { KEPT_SCHEMA_VERSION, KeptHostError, forgetKept, keptFile, readKept, writeKept } from './kept.ts';
import { attachKept, attachProductionAlone } from './providers/incus.ts';
import type { ResolvedTarget } from './resolve.ts';
import { exampleProfile } from './system-profile.fixture.ts';

const host = {
  name: 'accept-20261201t000000-abcd',
  project: 'terraform-ci',
  createdAt: '2026-12-01T00:00:00.000Z',
  expiresAt: '2026-12-01T02:00:00.000Z',
  https: { host: '127.0.0.1', port: 40443 },
  ledger: [],
};
const record = {
  runId: '20261201t000000-abcd',
  target: 'lab' as const,
  server: 'https://127.0.0.1:8443',
  generation: 'submodule repos generated 2026-12-01T00:00:00Z',
  host,
};

function resolved(overrides: Partial<ResolvedTarget> = {}): ResolvedTarget {
  return {
    kind: 'lab',
    incus: {
      url: 'https://127.0.0.1:8443',
      clientCertFile: '/c',
      clientKeyFile: '/k',
      serverCertFile: '/s',
      project: 'terraform-ci',
      image: 'accept-blank',
      instanceType: 'container',
      memory: '4GiB',
      profiles: ['default'],
      instanceConfig: {},
      address: { family: 'inet' },
    },
    ramGuidelineBytes: 12 * 2 ** 30,
    socks: 'socks5://127.0.0.1:1055',
    ageKeyFile: '/age',
    baseRepo: 'http://127.0.0.1:8418/cc-ci.git',
    instanceRepo: 'http://127.0.0.1:8418/cc-ci-secrets.git',
    domain: 'ci.lab.test',
    tlsCaFile: '/ca.pem',
    durations: realTargetDurations({ durations: {} }),
    forgeWrites: { kind: 'stand-in' },
    profile: exampleProfile(),
    machines: { production: { name: 'cc-nix-test', via: 'incus', memory: '4GiB' }, neighbours: ['lichen-staging'] },
    rebootCheck: false,
    ...overrides,
  };
}
const faced = { kind: 'lab' as const, server: 'https://127.0.0.1:8443', standIns: [], notes: [] };

describe('the kept-host record', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'accept-kept-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('round-trips, versioned, and holds only the facts of the host', async () => {
    await writeKept(dir, record);
    const text = JSON.parse(await readFile(keptFile(dir), 'utf8')) as Record<string, unknown>;
    expect(text.schemaVersion).toBe(KEPT_SCHEMA_VERSION);
    expect(Object.keys(text).sort()).toEqual(['generation', 'host', 'keptAt', 'runId', 'schemaVersion', 'server', 'target']);
    expect(await readKept(dir)).toMatchObject(record);
    await forgetKept(dir);
    expect(await readKept(dir)).toBeUndefined();
  });

  it('refuses a record of an older harness, naming the file, the cause and what to run', async () => {
    // The version-1 record was the whole run context, settings and all.
    await writeFile(keptFile(dir), JSON.stringify({ runId: 'x', mode: 'warm', target: { kind: 'lab' }, instance: { name: 'accept-x' } }));
    const error = await readKept(dir).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(KeptHostError);
    expect((error as Error).message).toContain(`${keptFile(dir)}: has no schemaVersion (written by an older harness)`);
    expect((error as Error).message).toContain('ACCEPT_KEEP=always npm run accept');
  });

  it('refuses a malformed record, listing what is wrong', async () => {
    await writeFile(keptFile(dir), JSON.stringify({ schemaVersion: KEPT_SCHEMA_VERSION, runId: 'x', target: 'ssh', server: '', host: { name: 'a' } }));
    await expect(readKept(dir)).rejects.toThrow(/is malformed: server is not a non-empty string; keptAt .*target is "ssh".*host\.project.*host\.https/);
    await writeFile(keptFile(dir), '{not json');
    await expect(readKept(dir)).rejects.toThrow(`${keptFile(dir)}: is not JSON`);
  });

  describe('a warm run attaching to it', () => {
    const config = () => loadConfig({ ACCEPT_STATE_DIR: dir, ACCEPT_SOCKS: 'socks5://127.0.0.1:9' });

    it('takes the host from the record and every setting from the configuration in force', async () => {
      await writeKept(dir, record);
      const run = (await attachKept(config(), resolved({ socks: 'socks5://127.0.0.1:9', domain: 'ci.other.test' }), faced, record.generation))!;
      expect(run.mode).toBe('warm');
      expect(run.instance).toMatchObject({ name: host.name, createdInThisRun: false });
      expect(run.https).toEqual(host.https);
      expect(run.target.socks).toBe('socks5://127.0.0.1:9');
      expect(run.domain).toBe('ci.other.test');
    });

    it('refuses a host built from another lab generation, naming both', async () => {
      await writeKept(dir, record);
      const error = await attachKept(config(), resolved(), faced, 'input repos generated 2026-12-02T00:00:00Z').catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(KeptHostError);
      expect((error as Error).message).toMatch(
        /built from submodule repos generated 2026-12-01T00:00:00Z, but the lab target is now input repos generated 2026-12-02/,
      );
    });

    it('refuses a record of another server or target', async () => {
      await writeKept(dir, record);
      await expect(
        attachKept(config(), resolved({ incus: { ...resolved().incus, url: 'https://b1.example.net:8443' } }), faced, record.generation),
      ).rejects.toThrow(/records accept-\S+ on https:\/\/127\.0\.0\.1:8443, but the Incus API in force is https:\/\/b1\.example\.net:8443/);
      await expect(attachKept(config(), resolved({ kind: 'incus' }), faced, record.generation)).rejects.toThrow(
        /of the lab target, but ACCEPT_TARGET is incus/,
      );
    });

    it('without a record, finds none, and the run faces the running cc-ci alone: read only, named as such', async () => {
      expect(await attachKept(config(), resolved(), faced, undefined)).toBeUndefined();
      const run = attachProductionAlone(
        config(),
        resolved({
          machines: { production: { name: 'cc-nix-test', via: 'incus', memory: '4GiB', https: { host: '127.0.0.1', port: 40444 } }, neighbours: [] },
        }),
        faced,
      );
      expect(run.instance).toMatchObject({ name: 'cc-nix-test', project: 'terraform-ci', createdInThisRun: false });
      expect(run.machines.production).toMatchObject({ name: 'cc-nix-test', via: 'run-host' });
      expect(run.https).toEqual({ host: '127.0.0.1', port: 40444 });
      expect(run.ledger).toEqual([]);
      // A real target gives no endpoint: its names are dialled through the proxy.
      expect(attachProductionAlone(config(), resolved({ kind: 'incus' }), faced).https).toEqual({ host: 'drone.ci.lab.test', port: 443 });
    });

    it('without a record or a running cc-ci, names ACCEPT_STATE_DIR, ACCEPT_PRODUCTION and what to run', () => {
      const call = () =>
        attachProductionAlone(config(), resolved({ machines: { production: { unreachable: 'ACCEPT_PRODUCTION is unset' }, neighbours: [] } }), faced);
      expect(call).toThrow(ConfigError);
      expect(call).toThrow(
        /no kept throwaway recorded in .*kept\.json, and no running cc-ci to check alone \(ACCEPT_PRODUCTION is unset\): run `ACCEPT_KEEP=always npm run accept` once first, or set ACCEPT_PRODUCTION/,
      );
    });
  });
});
