import { afterEach, describe, expect, it } from 'vitest';
import { HarnessError, SystemFailure } from '../common/errors.ts';
import type { CommandResult } from '../common/exec.ts';
import { forgetSecrets, registerSecret } from '../common/redact.ts';
import { StateTimeoutError, WaitTimeoutError } from '../common/wait.ts';
import { CommandNotStartedError, type HostChannel } from '../common/host.ts';
import { rejectionOf } from '../common/testing/rejection.ts';
import {
  OneshotTimeoutError,
  failedUnits,
  journalExcerpt,
  parseShow,
  systemState,
  unitProperties,
  waitBooted,
  waitForOneshots,
  type UnitProperties,
} from './index.ts';

/** A reply, or an error the channel throws (as a transport failure would). */
type Reply = Partial<CommandResult> | Error | ((call: number) => Partial<CommandResult> | Error);

/** A host whose commands are answered from a table (first matching pattern wins). */
function fakeHost(table: Array<[RegExp, Reply]>): HostChannel & { calls: string[] } {
  const calls: string[] = [];
  const counts = new Map<RegExp, number>();
  const exec = async (script: string): Promise<CommandResult> => {
    calls.push(script);
    const row = table.find(([pattern]) => pattern.test(script));
    if (!row) return { command: script, exitCode: 127, stdout: '', stderr: `fake host: no answer for ${script}` };
    const call = counts.get(row[0]) ?? 0;
    counts.set(row[0], call + 1);
    const reply = typeof row[1] === 'function' ? row[1](call) : row[1];
    if (reply instanceof Error) throw reply;
    return { command: script, exitCode: 0, stdout: '', stderr: '', ...reply };
  };
  return {
    name: 'fake-host',
    transport: 'fake',
    calls,
    exec,
    succeed: exec,
    fail: exec,
    pushFile: async () => undefined,
    readFile: async () => Buffer.alloc(0),
  };
}

/** `systemctl show -p …` output for one unit, in the order systemd prints properties. */
function show(unit: string, props: Partial<Record<string, string>>): string {
  const all = {
    Type: 'oneshot',
    RemainAfterExit: 'yes',
    Result: 'success',
    ExecMainStatus: '0',
    ExecMainExitTimestampMonotonic: '52000000',
    Id: unit,
    LoadState: 'loaded',
    ActiveState: 'active',
    SubState: 'exited',
    Job: '',
    ...props,
  };
  return `${Object.entries(all)
    .map(([key, value]) => `${key}=${value}`)
    .join('\n')}\n`;
}

const ONESHOTS = ['ccci-swarm.service', 'ccci-proxy.service', 'ccci-drone.service', 'ccci-bridge.service', 'ccci-dashboard.service'];
const SHOW = /^systemctl show /;

afterEach(() => forgetSecrets());

describe('systemState', () => {
  it('returns the state even though systemctl exits non-zero when degraded', async () => {
    await expect(systemState(fakeHost([[/is-system-running/, { stdout: 'running\n' }]]))).resolves.toBe('running');
    await expect(systemState(fakeHost([[/is-system-running/, { stdout: 'degraded\n', exitCode: 1 }]]))).resolves.toBe('degraded');
    await expect(systemState(fakeHost([[/is-system-running/, { stdout: 'starting\n', exitCode: 1 }]]))).resolves.toBe('starting');
  });

  it('is a HarnessError when there is no answer at all', async () => {
    const host = fakeHost([[/is-system-running/, { exitCode: 1, stderr: 'System has not been booted with systemd as init system (PID 1).' }]]);
    await expect(systemState(host)).rejects.toThrow(/not been booted with systemd/);
    await expect(systemState(host)).rejects.toBeInstanceOf(HarnessError);
  });

  it('is an ERROR naming systemctl and the host when it could not start (127), whatever was printed', async () => {
    const host = fakeHost([[/is-system-running/, { exitCode: 127, stdout: 'running\n', stderr: 'sh: 1: systemctl: not found\n' }]]);
    const error = await rejectionOf(systemState(host), CommandNotStartedError);
    expect(error.message).toMatch(/^command not found on fake-host: `systemctl`/);
  });
});

describe('failedUnits', () => {
  it('lists unit names, with or without the bullet older systemd prints', async () => {
    const stdout = 'ccci-drone.service loaded failed failed Drone reconcile\n● docker.socket loaded failed failed Docker Socket\n\n';
    const host = fakeHost([[/list-units --failed --no-legend --plain/, { stdout }]]);
    await expect(failedUnits(host)).resolves.toEqual(['ccci-drone.service', 'docker.socket']);
  });

  it('gives an empty list when nothing failed, and throws when systemctl does', async () => {
    await expect(failedUnits(fakeHost([[/list-units/, { stdout: '' }]]))).resolves.toEqual([]);
    await expect(failedUnits(fakeHost([[/list-units/, { exitCode: 1, stderr: 'Failed to connect to bus' }]]))).rejects.toThrow(/Failed to connect to bus/);
  });
});

describe('unitProperties and parseShow', () => {
  it('asks for the properties by name and quotes the unit', async () => {
    const host = fakeHost([[SHOW, { stdout: show('ccci-swarm.service', {}) }]]);
    const props = await unitProperties(host, 'ccci-swarm.service');
    expect(props).toEqual({
      unit: 'ccci-swarm.service',
      Id: 'ccci-swarm.service',
      LoadState: 'loaded',
      ActiveState: 'active',
      SubState: 'exited',
      Result: 'success',
      ExecMainStatus: '0',
      ExecMainExitTimestampMonotonic: '52000000',
      Type: 'oneshot',
      RemainAfterExit: 'yes',
      Job: '',
    });
    expect(host.calls[0]).toBe(
      "systemctl show --no-pager -p Id,LoadState,ActiveState,SubState,Result,ExecMainStatus,ExecMainExitTimestampMonotonic,Type,RemainAfterExit,Job -- 'ccci-swarm.service'",
    );
  });

  it('splits blocks per unit in order and keeps values containing "="', () => {
    const stdout = `${show('a.service', { Result: 'exit-code', ExecMainStatus: '1' })}\n${show('b.service', { Type: 'simple', SubState: 'x=y' })}`;
    const [a, b] = parseShow(stdout, ['a.service', 'b.service']);
    expect(a).toMatchObject({ unit: 'a.service', Result: 'exit-code', ExecMainStatus: '1' });
    expect(b).toMatchObject({ unit: 'b.service', Type: 'simple', SubState: 'x=y' });
    expect(() => parseShow(show('a.service', {}), ['a.service', 'b.service'])).toThrow(/1 blocks for 2 units/);
  });

  it('keeps shell metacharacters in a unit name inert', async () => {
    const host = fakeHost([[SHOW, { stdout: show("x';reboot;'", { LoadState: 'not-found' }) }]]);
    await unitProperties(host, "x';reboot;'");
    expect(host.calls[0]).toContain(`-- 'x'\\'';reboot;'\\'''`);
  });
});

describe('waitForOneshots', () => {
  const showAll = (overrides: Record<string, Partial<Record<string, string>>> = {}) => ONESHOTS.map((unit) => show(unit, overrides[unit] ?? {})).join('\n');

  it('converges once every unit is an active, successful oneshot, polling until then', async () => {
    const host = fakeHost([
      [SHOW, (call) => ({ stdout: call < 2 ? showAll({ 'ccci-drone.service': { ActiveState: 'activating', SubState: 'start' } }) : showAll() })],
    ]);
    const report = await waitForOneshots(host, ONESHOTS, { timeoutMs: 5000, intervalMs: 10 });
    expect(report.converged).toBe(true);
    expect(report.units).toHaveLength(5);
    expect(host.calls.filter((call) => SHOW.test(call))).toHaveLength(3);
    // One round trip per poll, not one per unit.
    expect(host.calls[0]).toContain(ONESHOTS.map((unit) => `'${unit}'`).join(' '));
  });

  it('stops early when a unit failed, with its journal, redacted', async () => {
    registerSecret('drone-rpc-secret-value');
    const host = fakeHost([
      [SHOW, { stdout: showAll({ 'ccci-drone.service': { ActiveState: 'failed', SubState: 'failed', Result: 'exit-code', ExecMainStatus: '1' } }) }],
      [
        /^journalctl -u 'ccci-drone\.service' -n 30 --no-pager -o short-iso$/,
        { stdout: '2026-11-25T10:00:00+0000 host ccci-drone[1]: bad secret drone-rpc-secret-value\n' },
      ],
    ]);
    const report = await waitForOneshots(host, ONESHOTS, { timeoutMs: 60_000, intervalMs: 10 });
    expect(report.converged).toBe(false);
    if (report.converged) return;
    expect(report.broken).toHaveLength(1);
    expect(report.broken[0]).toMatchObject({ unit: 'ccci-drone.service', reason: 'unit failed (result exit-code, exit status 1)' });
    expect(report.broken[0]!.journal).toContain('bad secret [REDACTED]');
    expect(report.broken[0]!.journal).not.toContain('drone-rpc-secret-value');
  });

  it('stops early for a missing unit or one that does not remain after exit and never ran, journal errors included', async () => {
    const host = fakeHost([
      [
        SHOW,
        {
          stdout: showAll({
            'ccci-swarm.service': { LoadState: 'not-found', ActiveState: 'inactive', Type: '' },
            'ccci-proxy.service': { RemainAfterExit: 'no', ActiveState: 'inactive', SubState: 'dead', ExecMainExitTimestampMonotonic: '0' },
          }),
        },
      ],
      [/^journalctl -u 'ccci-proxy/, { stdout: '-- No entries --\n' }],
      [/^journalctl/, { exitCode: 1, stderr: 'journal is corrupt' }],
    ]);
    const report = await waitForOneshots(host, ONESHOTS, { timeoutMs: 60_000, intervalMs: 10 });
    expect(report.converged).toBe(false);
    if (report.converged) return;
    expect(report.broken.map(({ unit, reason }) => [unit, reason])).toEqual([
      ['ccci-swarm.service', 'unit is not-found'],
      ['ccci-proxy.service', 'unit is inactive/dead with no job pending (result success, exit status 0, and it never ran): nothing will start it'],
    ]);
    expect(report.broken[0]!.journal).toMatch(/journal unavailable: .*journal is corrupt/);
    expect(report.broken[1]!.journal).toBe('-- No entries --');
  });

  it('counts a oneshot without RemainAfterExit as converged once it ran and succeeded, as systemd reports it', async () => {
    const host = fakeHost([[SHOW, { stdout: showAll({ 'ccci-proxy.service': { RemainAfterExit: 'no', ActiveState: 'inactive', SubState: 'dead' } }) }]]);
    expect((await waitForOneshots(host, ONESHOTS, { timeoutMs: 60_000, intervalMs: 10 })).converged).toBe(true);
    const failed = fakeHost([
      [
        SHOW,
        {
          stdout: showAll({
            'ccci-proxy.service': { RemainAfterExit: 'no', ActiveState: 'inactive', SubState: 'dead', Result: 'exit-code', ExecMainStatus: '1' },
          }),
        },
      ],
      [/^journalctl/, { stdout: '' }],
    ]);
    expect((await waitForOneshots(failed, ONESHOTS, { timeoutMs: 60_000, intervalMs: 10 })).converged).toBe(false);
  });

  it('stops early, naming its state, when a unit is inactive with no job pending (a stopped oneshot)', async () => {
    const host = fakeHost([
      [SHOW, { stdout: showAll({ 'ccci-bridge.service': { ActiveState: 'inactive', SubState: 'dead' } }) }],
      [/^journalctl -u 'ccci-bridge\.service'/, { stdout: '2026-11-25T10:00:00+0000 host systemd[1]: Stopped ccci-bridge.service.\n' }],
    ]);
    const report = await waitForOneshots(host, ONESHOTS, { timeoutMs: 60_000, intervalMs: 10 });
    // Early: the first look decided it, where waiting out the minute would have looked again every 10 ms.
    expect(host.calls.filter((call) => SHOW.test(call))).toHaveLength(1);
    expect(report.converged).toBe(false);
    if (report.converged) return;
    expect(report.broken.map(({ unit, reason }) => [unit, reason])).toEqual([
      ['ccci-bridge.service', 'unit is inactive/dead with no job pending (result success, exit status 0): nothing will start it'],
    ]);
    expect(report.broken[0]!.journal).toContain('Stopped ccci-bridge.service.');
  });

  it.each([
    ['activating', { ActiveState: 'activating', SubState: 'start' }],
    ['inactive with a start job queued', { ActiveState: 'inactive', SubState: 'dead', Job: '4711' }],
  ])('keeps waiting while a unit is %s', async (_how, state) => {
    const host = fakeHost([[SHOW, (call) => ({ stdout: call < 3 ? showAll({ 'ccci-proxy.service': state }) : showAll() })]]);
    const report = await waitForOneshots(host, ONESHOTS, { timeoutMs: 5000, intervalMs: 10 });
    expect(report.converged).toBe(true);
    expect(host.calls.filter((call) => SHOW.test(call))).toHaveLength(4);
  });

  it("on timeout while units are still changing, is a FAIL listing every unit's state", async () => {
    const host = fakeHost([
      [
        SHOW,
        {
          stdout: showAll({
            'ccci-bridge.service': { ActiveState: 'activating', SubState: 'start' },
            'ccci-drone.service': { ActiveState: 'inactive', SubState: 'dead', Job: '12' },
          }),
        },
      ],
    ]);
    const error = await waitForOneshots(host, ONESHOTS, { timeoutMs: 50, intervalMs: 10 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OneshotTimeoutError);
    expect(error).toBeInstanceOf(StateTimeoutError);
    expect(error).toBeInstanceOf(SystemFailure);
    expect(error).not.toBeInstanceOf(HarnessError);
    expect((error as OneshotTimeoutError).verdict).toBe('FAIL');
    const message = (error as Error).message;
    for (const unit of ONESHOTS) expect(message).toContain(unit);
    expect(message).toContain('… ccci-bridge.service: activating/start result=success');
    expect(message).toContain('… ccci-drone.service: inactive/dead result=success status=0 type=oneshot remain-after-exit=yes job=12');
    expect(message).toContain('✓ ccci-swarm.service: active/exited');
    expect((error as OneshotTimeoutError).units.map((unit: UnitProperties) => unit.ActiveState)).toContain('activating');
  });

  it('ends at once as an ERROR when systemctl itself fails', async () => {
    const host = fakeHost([[SHOW, { exitCode: 1, stderr: 'Failed to connect to bus' }]]);
    const error = await waitForOneshots(host, ONESHOTS.slice(0, 1), { timeoutMs: 60_000, intervalMs: 10 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HarnessError);
    expect(error).not.toBeInstanceOf(WaitTimeoutError);
    expect((error as Error).message).toMatch(/systemctl show ccci-swarm\.service on fake-host failed \(exit 1\): Failed to connect to bus/);
    expect(host.calls).toHaveLength(1);
    await expect(waitForOneshots(host, [], { timeoutMs: 40 })).rejects.toThrow(/at least one unit/);
  });

  it('retries a transient channel error, and is an ERROR naming it when systemctl never answered', async () => {
    const host = fakeHost([[SHOW, new HarnessError('ssh to fake-host: connection reset', { transient: true })]]);
    const error = await waitForOneshots(host, ONESHOTS.slice(0, 1), { timeoutMs: 40, intervalMs: 10 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WaitTimeoutError);
    expect(error).not.toBeInstanceOf(SystemFailure);
    expect((error as Error).message).toMatch(/last saw: error: ssh to fake-host: connection reset$/);
    expect(host.calls.length).toBeGreaterThan(1);
  });
});

describe('journalExcerpt', () => {
  it('runs journalctl with the line count and redacts registered secrets and key shapes', async () => {
    registerSecret('hmac-webhook-secret');
    const host = fakeHost([
      [/^journalctl -u 'ccci-bridge\.service' -n 5 --no-pager -o short-iso$/, { stdout: 'a hmac-webhook-secret b\nAGE-SECRET-KEY-1QQQQQQQQQQ\n' }],
    ]);
    await expect(journalExcerpt(host, 'ccci-bridge.service', 5)).resolves.toBe('a [REDACTED] b\n[REDACTED]');
    await expect(journalExcerpt(host, 'ccci-bridge.service', 0)).rejects.toThrow(/positive integer/);
  });
});

describe('waitBooted', () => {
  it("waits through Incus's refusals while the machine is not up, then answers its state", async () => {
    const host = fakeHost([
      [
        /is-system-running/,
        (call) => (call < 2 ? new Error("VM agent isn't currently running") : { stdout: call < 3 ? 'starting\n' : 'degraded\n', exitCode: 1 }),
      ],
    ]);
    expect(await waitBooted(host, 'fake-host to boot', { timeoutMs: 10_000 })).toBe('degraded');
    expect(host.calls.length).toBe(4);
  });

  it("ends at once, as the channel's own error, when the channel fails for any other reason", async () => {
    const host = fakeHost([[/is-system-running/, new HarnessError('SOCKS5 proxy socks5://127.0.0.1:9 refused the connection')]]);
    const error = await rejectionOf(waitBooted(host, 'fake-host to boot', { timeoutMs: 10_000, observes: 'system' }), HarnessError);
    expect(error.message).toMatch(/SOCKS5 proxy/);
    expect(host.calls.length).toBe(1);
  });

  it("is a FAIL with the state seen when the system's own boot never ends, and an ERROR when it is the harness's", async () => {
    const starting = () => fakeHost([[/is-system-running/, { stdout: 'starting\n', exitCode: 1 }]]);
    expect(
      await rejectionOf(waitBooted(starting(), 'fake-host to come back after the reboot', { timeoutMs: 600, observes: 'system' }), StateTimeoutError),
    ).toBeInstanceOf(StateTimeoutError);
    expect(await rejectionOf(waitBooted(starting(), 'fake-host to boot', { timeoutMs: 600 }), WaitTimeoutError)).toBeInstanceOf(WaitTimeoutError);
  });
});
