/** The lab's own durations: short where the user set none, longer by ACCEPT_LAB_SLOW where it slows the lab. */
import { describe, expect, it } from 'vitest';
import { loadConfig, realTargetDurations, systemNamesEnv } from '../../helpers/common/config.ts';
import { EXAMPLE_NAMES } from '../system-profile.fixture.ts';
import { resolveSshTarget } from '../resolve.ts';
import { describeMachineWrites, labDurations, labThrowawayHooks, leavingOnStop, resolveLabTarget } from './lab.ts';
import type { Provisioned } from '../provider.ts';

const MIN = 60_000;
const LAB = { boot: 2 * MIN, rebuild: 5 * MIN, converge: MIN, buildStart: MIN, buildFinish: 5 * MIN, check: 2 * MIN };

describe("the lab target's durations", () => {
  it("are the lab's short ones where the user set none: boot 2m, rebuild 5m, converge 1m, build start 1m, build finish 5m, check 2m", () => {
    expect(labDurations(loadConfig({}))).toEqual(LAB);
    expect(resolveLabTarget(loadConfig({ ACCEPT_LAB_DIR: '/tmp/no-lab' })).durations).toEqual(LAB);
  });

  it("are each shorter than the real target's default", () => {
    const real = realTargetDurations(loadConfig({}));
    for (const [name, ms] of Object.entries(LAB)) expect(ms, name).toBeLessThan(real[name as keyof typeof real]);
  });

  it('give way to the ones the user set', () => {
    expect(labDurations(loadConfig({ ACCEPT_BOOT_TIMEOUT: '30s', ACCEPT_CHECK_TIMEOUT: '1h' }))).toEqual({ ...LAB, boot: 30_000, check: 60 * MIN });
  });

  it('grow by ACCEPT_LAB_SLOW for the rebuild and the build finish only, and never change what the user set', () => {
    expect(labDurations(loadConfig({ ACCEPT_LAB_SLOW: '135s' }))).toEqual({ ...LAB, rebuild: 5 * MIN + 135_000, buildFinish: 5 * MIN + 135_000 });
    expect(labDurations(loadConfig({ ACCEPT_LAB_SLOW: '135s', ACCEPT_REBUILD_TIMEOUT: '4m' }))).toMatchObject({
      rebuild: 4 * MIN,
      buildFinish: 5 * MIN + 135_000,
    });
  });

  it('are not what a real target gets: it takes the real defaults, and ignores ACCEPT_LAB_SLOW', () => {
    const ssh = loadConfig({
      ACCEPT_TARGET: 'ssh',
      ACCEPT_SSH_HOST: 'cc-nix-test',
      ACCEPT_SSH_KEY: '/k',
      ACCEPT_AGE_KEY_FILE: '/a',
      ACCEPT_BASE_REPO: 'https://g/b.git',
      ACCEPT_INSTANCE_REPO: 'https://g/i.git',
      ACCEPT_DOMAIN: 'ci.example.net',
      ACCEPT_TLS_CA_FILE: '/ca',
      ...systemNamesEnv(EXAMPLE_NAMES),
      ACCEPT_LAB_SLOW: '135s',
    });
    expect(resolveSshTarget(ssh).durations).toEqual(realTargetDurations(loadConfig({})));
  });
});

describe("the throwaway's writes to the forge it polls", () => {
  it('are told by login and route, and say that production was not written to', () => {
    const text = describeMachineWrites('accept-x', { 'ccci-bot': { create_comment: 3, create_file: 1 } });
    expect(text).toBe(
      "accept-x wrote 4 as ccci-bot (create_comment 3, create_file 1) to the lab's forge of this run, which only it polls: production's pull requests were not written to",
    );
  });

  it('say nothing was written when nothing was, and that they could not be read once the forge had stopped', () => {
    expect(describeMachineWrites('accept-x', {})).toMatch(/^accept-x wrote nothing to the lab's forge/);
    expect(describeMachineWrites('accept-x', undefined)).toMatch(/could not be read: that forge had already stopped/);
  });
});

describe("the lab's throwaway hooks", () => {
  it("give loopback proxies for :443 and :22, the git server and the run's forge on its own loopback, and dial :443 through that proxy", async () => {
    const hooks = labThrowawayHooks(8418, 40100);
    await expect(hooks.endpoint('accept-x')).rejects.toThrow(/no loopback proxy/);
    const devices = await hooks.devices('accept-x');
    expect(Object.keys(devices)).toEqual(['accept-https', 'accept-ssh', 'accept-git', 'accept-forge']);
    expect(devices['accept-git']).toEqual({ type: 'proxy', bind: 'instance', listen: 'tcp:127.0.0.1:8418', connect: 'tcp:127.0.0.1:8418' });
    expect(devices['accept-forge']).toMatchObject({
      type: 'proxy',
      bind: 'instance',
      listen: expect.stringMatching(/^tcp:127\.0\.0\.1:\d+$/),
      connect: 'tcp:127.0.0.1:40100',
    });
    expect(devices['accept-ssh']).toMatchObject({ type: 'proxy', connect: 'tcp:127.0.0.1:22' });
    const https = await hooks.endpoint('accept-x');
    expect(devices['accept-https']).toEqual({ type: 'proxy', listen: `tcp:127.0.0.1:${https.port}`, connect: 'tcp:127.0.0.1:443' });
    expect(https.host).toBe('127.0.0.1');
    // The runbook does not move a loopback proxy: asked again, the same.
    expect(await hooks.endpoint('accept-x')).toEqual(https);
  });
});

describe('the teardown of a sabotage that leaks the throwaway', () => {
  it('keeps the throwaway on stop(), and deletes it once on close(), before the rest is closed', async () => {
    const calls: string[] = [];
    const inner = {
      context: { instance: { name: 'accept-x' } },
      keep: () => calls.push('keep'),
      stop: async () => {
        calls.push('stop');
        return { destroyedAt: 'now' };
      },
      close: async () => {
        calls.push('close');
      },
    } as unknown as Provisioned;
    const leaving = leavingOnStop(inner);
    expect((await leaving.stop()).destroyedAt).toMatch(/^\d{4}-/);
    expect(calls).toEqual(['keep']);
    await leaving.close();
    await leaving.close();
    expect(calls).toEqual(['keep', 'stop', 'close']);
  });
});
