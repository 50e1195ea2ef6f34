import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { systemNamesEnv } from '../helpers/common/config.ts';
import { ConfigError, HarnessError } from '../helpers/common/errors.ts';
import { rejectionOf } from '../helpers/common/testing/rejection.ts';
import { checkReadable, readSettingFile } from '../machines/resolve.ts';
import { EXAMPLE_NAMES } from '../machines/system-profile.fixture.ts';
import {
  DISK_WARN_BYTES,
  diskOutcome,
  doctorChecks,
  fixFor,
  formatLine,
  imageFix,
  runChecks,
  socksGreeting,
  socksGreetingAccepted,
  summaryLine,
  toolsOutcome,
  versionOf,
  type Check,
} from './doctor.ts';

const ok = (name: string): Check => ({ name, run: async () => ({ status: 'ok', detail: `${name} fine` }) });

describe('runChecks', () => {
  it('stops at the first blocking problem and reports the rest as not run', async () => {
    const ran: string[] = [];
    const track = (check: Check): Check => ({
      name: check.name,
      run: () => {
        ran.push(check.name);
        return check.run();
      },
    });
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
    expect(
      toolsOutcome([
        { tool: 'nix', package: 'nix-bin', version: '2.8.0' },
        { tool: 'git', package: 'git', version: '2.39.5' },
      ]),
    ).toEqual({ status: 'ok', detail: 'nix 2.8.0, git 2.39.5' });
    const missing = toolsOutcome([
      { tool: 'nix', package: 'nix-bin' },
      { tool: 'git', package: 'git', version: '2.39.5' },
      { tool: 'age', package: 'age' },
    ]);
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

describe('the fix for each fault', () => {
  const LAB_UP = '`npm run lab -- up` (as root)';
  const unreadable = (variable: string, file: string) => rejectionOf(readSettingFile(file, variable), ConfigError);

  it('sends a setting that names a missing file to its path, never to `lab up`', async () => {
    const missing = '/nonexistent/accept-doctor/age.txt';
    const error = await unreadable('ACCEPT_AGE_KEY_FILE', missing);
    expect(fixFor(error, 'lab', { ACCEPT_AGE_KEY_FILE: missing })).toBe(
      `fix the path in ACCEPT_AGE_KEY_FILE: ${missing} cannot be read (docs/configuration.md), or unset it to use the lab's`,
    );
    expect(fixFor(error, 'incus', { ACCEPT_AGE_KEY_FILE: missing })).toBe(
      `fix the path in ACCEPT_AGE_KEY_FILE: ${missing} cannot be read (docs/configuration.md)`,
    );
    expect(fixFor(await unreadable('ACCEPT_SSH_KEY', '/nonexistent/id'), 'ssh', { ACCEPT_SSH_KEY: '/nonexistent/id' })).toMatch(
      /^fix the path in ACCEPT_SSH_KEY: \/nonexistent\/id cannot be read/,
    );
  });

  it('names the file in a directory setting that is missing, with that setting', () => {
    const error = (() => {
      try {
        checkReadable({ variable: 'ACCEPT_INCUS_CERT_DIR', path: '/nonexistent/certs/client.crt', inDir: 'client.crt', instead: 'ACCEPT_INCUS_CLIENT_CERT' });
      } catch (caught) {
        return caught;
      }
    })();
    expect(fixFor(error, 'incus', { ACCEPT_INCUS_CERT_DIR: '/nonexistent/certs' })).toBe(
      'fix the path in ACCEPT_INCUS_CERT_DIR: /nonexistent/certs/client.crt cannot be read (docs/configuration.md)',
    );
  });

  it('sends a lab that lost a file of its own to `lab up`, naming the file', async () => {
    const error = await unreadable('ACCEPT_TLS_CA_FILE', '/nonexistent/lab/ca/root.pem');
    expect(fixFor(error, 'lab', {})).toBe(`${LAB_UP}: the lab's own /nonexistent/lab/ca/root.pem (ACCEPT_TLS_CA_FILE unset) cannot be read`);
  });

  it('blames a setting the operator chose before the lab, and the lab only for what is its own', () => {
    const refused = Object.assign(new HarnessError('could not reach Incus'), { setting: 'ACCEPT_INCUS_URL' });
    expect(fixFor(refused, 'lab', { ACCEPT_INCUS_URL: 'https://10.0.0.2:8443' })).toBe(
      "check ACCEPT_INCUS_URL (docs/configuration.md), or unset it to use the lab's",
    );
    expect(fixFor(refused, 'lab', {})).toBe(LAB_UP);
    expect(fixFor(refused, 'incus', {})).toBe('check ACCEPT_INCUS_URL (docs/configuration.md)');
    expect(fixFor(new HarnessError('no setting at fault'), 'incus', {})).toBeUndefined();
  });

  it("sends a missing image to the alias or project the operator chose, and the lab's own to `lab up`", () => {
    expect(imageFix('lab', { ACCEPT_INCUS_IMAGE: 'mine' })).toBe(
      "import the blank image under that alias, or correct ACCEPT_INCUS_IMAGE (unset, the lab's is used)",
    );
    expect(imageFix('lab', { ACCEPT_INCUS_PROJECT: 'elsewhere' })).toBe(
      "import the blank image into that project, or correct ACCEPT_INCUS_PROJECT (unset, the lab's is used)",
    );
    expect(imageFix('lab', {})).toBe(LAB_UP);
    expect(imageFix('incus', { ACCEPT_INCUS_IMAGE: 'nixos' })).toBe('import the blank image under that alias, or correct ACCEPT_INCUS_IMAGE');
  });

  it('the configuration check sends an unreadable file to its path, and a bad value to its setting', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'accept-doctor-'));
    try {
      await writeFile(join(dir, 'id_ed25519'), 'key');
      const missing = join(dir, 'age.txt');
      const env = {
        ACCEPT_TARGET: 'ssh',
        ACCEPT_SSH_HOST: 'cc-nix-test',
        ACCEPT_SSH_KEY: join(dir, 'id_ed25519'),
        ACCEPT_AGE_KEY_FILE: missing,
        ACCEPT_BASE_REPO: 'https://git.example.net/cc-ci.git',
        ACCEPT_INSTANCE_REPO: 'https://git.example.net/cc-ci-secrets.git',
        ACCEPT_DOMAIN: 'ci.example.net',
        ACCEPT_TLS_CA_FILE: join(dir, 'id_ed25519'),
        ...systemNamesEnv(EXAMPLE_NAMES),
      };
      const configuration = (extra: Record<string, string>) => doctorChecks({ ...env, ...extra })[0]!.run();
      expect(await configuration({})).toMatchObject({
        status: 'fail',
        fix: `fix the path in ACCEPT_AGE_KEY_FILE: ${missing} cannot be read (docs/configuration.md)`,
      });
      expect(await configuration({ ACCEPT_SSH_PORT: 'x' })).toMatchObject({
        status: 'fail',
        fix: 'correct ACCEPT_SSH_PORT (docs/configuration.md lists every variable)',
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
