import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { HarnessError } from '../helpers/common/errors.ts';
import { DISK_WARN_BYTES, diskOutcome, formatLine, runChecks, socksGreeting, socksGreetingAccepted, summaryLine, toolsOutcome, versionOf, type Check } from './doctor.ts';

const ok = (name: string): Check => ({ name, run: async () => ({ status: 'ok', detail: `${name} fine` }) });

describe('runChecks', () => {
  it('stops at the first blocking problem and reports the rest as not run', async () => {
    const ran: string[] = [];
    const track = (check: Check): Check => ({ name: check.name, run: () => (ran.push(check.name), check.run()) });
    const { lines, blockedBy } = await runChecks([
      track(ok('configuration')),
      track({ name: 'proxy', run: async () => ({ status: 'fail', detail: 'refused', fix: 'start it' }) }),
      track(ok('Incus API')),
      track(ok('disk')),
    ]);
    expect(blockedBy).toBe('proxy');
    expect(ran).toEqual(['configuration', 'proxy']);
    expect(lines.map((line) => line.status)).toEqual(['ok', 'fail', 'not-run', 'not-run']);
    expect(lines[2]!.detail).toBe('not run: blocked by proxy');
  });

  it('does not stop at a warning or a check that does not apply', async () => {
    const { lines, blockedBy } = await runChecks([
      { name: 'SSH', run: async () => ({ status: 'skip', detail: 'only for ACCEPT_TARGET=ssh' }) },
      { name: 'disk', run: async () => ({ status: 'warn', detail: 'low', fix: 'free some' }) },
      ok('tools'),
    ]);
    expect(blockedBy).toBeUndefined();
    expect(lines.map((line) => line.status)).toEqual(['skip', 'warn', 'ok']);
  });

  it('turns a thrown error into a blocking failure, and calls an unexpected one a harness bug', async () => {
    const { lines } = await runChecks([{ name: 'a', run: async () => Promise.reject(new HarnessError('proxy gone\nmore')) }]);
    expect(lines[0]).toMatchObject({ status: 'fail', detail: 'proxy gone', fix: undefined });
    const bug = await runChecks([{ name: 'b', run: async () => Promise.reject(new TypeError('x is undefined')) }]);
    expect(bug.lines[0]!.fix).toMatch(/harness bug/);
  });

  it('hands each line over as soon as it is known', async () => {
    const seen: string[] = [];
    await runChecks([ok('a'), ok('b')], (line) => seen.push(line.name));
    expect(seen).toEqual(['a', 'b']);
  });
});

describe('formatLine', () => {
  it('prints one line per check, with the fix for a failure or a warning only', () => {
    expect(formatLine({ name: 'proxy', status: 'fail', detail: 'socks5://127.0.0.1:1055: ECONNREFUSED', fix: '`npm run lab -- up`' })).toBe(
      '✗ proxy            socks5://127.0.0.1:1055: ECONNREFUSED → fix: `npm run lab -- up`',
    );
    expect(formatLine({ name: 'disk', status: 'ok', detail: '80 GB free', fix: 'never shown' })).toBe('✓ disk             80 GB free');
    expect(formatLine({ name: 'SSH', status: 'not-run', detail: 'not run: blocked by proxy' })).toMatch(/^· SSH/);
    expect(formatLine({ name: 'x', status: 'fail', detail: 'AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQ' })).not.toContain('AGE-SECRET-KEY');
  });
});

describe('pure checks', () => {
  it('warns under 5 GB free, and does not block', () => {
    expect(diskOutcome('/var/lib', DISK_WARN_BYTES - 1)).toMatchObject({ status: 'warn', fix: expect.stringContaining('/var/lib') });
    expect(diskOutcome('/var/lib', 80.7e9)).toEqual({ status: 'ok', detail: '80.7 GB free on /var/lib' });
  });

  it('accepts only a SOCKS5 "no authentication" choice', () => {
    expect(socksGreetingAccepted(Buffer.from([5, 0]))).toBe(true);
    expect(socksGreetingAccepted(Buffer.from([5, 0xff]))).toBe(false);
    expect(socksGreetingAccepted(Buffer.from('HTTP/1.1 400'))).toBe(false);
    expect(socksGreetingAccepted(Buffer.from([5]))).toBe(false);
  });

  it('names missing tools with the Debian packages that bring them', () => {
    expect(toolsOutcome([{ tool: 'nix', package: 'nix-bin', version: '2.8.0' }, { tool: 'git', package: 'git', version: '2.39.5' }])).toEqual({ status: 'ok', detail: 'nix 2.8.0, git 2.39.5' });
    const missing = toolsOutcome([{ tool: 'nix', package: 'nix-bin' }, { tool: 'git', package: 'git', version: '2.39.5' }, { tool: 'age', package: 'age' }]);
    expect(missing).toEqual({ status: 'fail', detail: 'missing: nix, age (found git 2.39.5)', fix: 'apt-get install -y nix-bin age' });
  });

  it('reads versions the way the tools print them', () => {
    expect(versionOf('nix (Nix) 2.8.0\n')).toBe('2.8.0');
    expect(versionOf('git version 2.39.5')).toBe('2.39.5');
    expect(versionOf('v1.1.1')).toBe('v1.1.1');
    expect(versionOf('no digits here')).toBeUndefined();
  });

  it('sums up: ready, or blocked with how many checks did not run', () => {
    const lines = [
      { name: 'a', status: 'ok' as const, detail: '' },
      { name: 'b', status: 'warn' as const, detail: '' },
      { name: 'c', status: 'skip' as const, detail: '' },
    ];
    expect(summaryLine(lines, undefined, 640)).toBe('doctor: ready to run, 1 check(s) passed, 1 warning(s), 1 not applicable (640 ms)');
    expect(summaryLine([...lines, { name: 'd', status: 'not-run', detail: '' }], 'proxy', 2500)).toBe('doctor: blocked by proxy; 1 check(s) not run (2.5 s)');
  });
});

describe('socksGreeting', () => {
  async function fakeProxy(reply: Buffer): Promise<{ url: string; close: () => void }> {
    const server = createServer((socket) => socket.once('data', () => socket.end(reply)));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    return { url: `socks5://127.0.0.1:${port}`, close: () => server.close() };
  }

  it('passes a SOCKS5 proxy and fails anything else on that port', async () => {
    const good = await fakeProxy(Buffer.from([5, 0]));
    const bad = await fakeProxy(Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n'));
    try {
      expect((await socksGreeting(good.url)).status).toBe('ok');
      expect(await socksGreeting(bad.url)).toMatchObject({ status: 'fail', detail: expect.stringContaining('not as a SOCKS5 proxy') });
    } finally {
      good.close();
      bad.close();
    }
  });

  it('names the refusal when nothing listens', async () => {
    expect(await socksGreeting('socks5://127.0.0.1:9')).toEqual({ status: 'fail', detail: 'socks5://127.0.0.1:9: ECONNREFUSED' });
  });
});
