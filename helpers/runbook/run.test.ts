/** The host's git credentials: pushed before the first runbook step, removed after the last, never recorded. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HarnessError } from '../common/errors.ts';
import { ChannelLostError, hostChannel, type HostChannel } from '../common/host.ts';
import { limitRecordingHost } from '../common/testing/recording-host.ts';
import { Ledger } from '../common/ledger.ts';
import { credentialForms } from '../common/testing/leak-scan.ts';
import { forgetSecrets, redact } from '../common/redact.ts';
import { parseRunbook } from './index.ts';
import { EXIT_UNKNOWN, HOST_GIT_CONFIG, isHostGitCredentialsEntry, runRunbook } from './run.ts';

const TOKEN = 'deploy-Token_41bc0e';
const REBUILD = { rebuild: 60_000 };
const FORMS = credentialForms('deployer', TOKEN);
const STEPS = parseRunbook(
  [
    '```sh runbook',
    'git clone --recursive https://git.example.net/cc-ci.git /root/cc-ci',
    '```',
    '```runbook provision-key',
    '/var/lib/sops-nix/key.txt 0600',
    '```',
    '```sh runbook',
    'nixos-rebuild switch',
    '```',
  ].join('\n'),
  'install.md',
);

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'accept-runbook-creds-'));
  await writeFile(join(dir, 'age.txt'), 'AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ\n');
  await writeFile(join(dir, 'host-credentials'), `https://deployer:${TOKEN}@git.example.net\n`);
});
afterAll(() => rm(dir, { recursive: true, force: true }));
afterEach(() => forgetSecrets());

/** A host whose files are a map; each step sees whether the git config is there, and `rm` may be made to fail. */
function fakeHost(
  ledger: Ledger,
  options: { rmFails?: boolean; missing?: string } = {},
): { host: HostChannel; files: Map<string, Buffer>; configSeenBy: string[] } {
  const files = new Map<string, Buffer>();
  const configSeenBy: string[] = [];
  const host = hostChannel({
    name: 'throwaway-1',
    async exec(script, execOptions = {}) {
      let exitCode = 0;
      if (script.startsWith(`rm -f ${HOST_GIT_CONFIG}`)) {
        if (options.rmFails) exitCode = 1;
        else files.delete(HOST_GIT_CONFIG);
      } else if (files.has(HOST_GIT_CONFIG)) configSeenBy.push(script);
      if (options.missing && script.startsWith(options.missing)) {
        ledger.recordExec(script, 127, 1, execOptions.purpose ?? 'check', '');
        return { command: script, exitCode: 127, stdout: '', stderr: `sh: 1: ${options.missing}: not found\n` };
      }
      ledger.recordExec(script, exitCode, 1, execOptions.purpose ?? 'check', '');
      return { command: script, exitCode, stdout: '', stderr: exitCode ? 'rm: read-only file system' : '' };
    },
    async pushFile(path, content, pushOptions) {
      files.set(path, content);
      ledger.recordPush(path, content, pushOptions.mode, pushOptions.purpose, pushOptions.secret);
    },
    async readFile(path) {
      return files.get(path) ?? Buffer.alloc(0);
    },
  });
  return { host, files, configSeenBy };
}

describe('runRunbook with ACCEPT_HOST_GIT_CREDENTIALS_FILE', () => {
  it('every step sees the git config, which is gone afterwards; the ledger records a secret push and a removal, no token', async () => {
    const ledger = new Ledger();
    const { host, files, configSeenBy } = fakeHost(ledger);
    const outcome = await runRunbook(STEPS, host, {
      source: 'install.md',
      ageKeyFile: join(dir, 'age.txt'),
      durations: REBUILD,
      hostGitCredentialsFile: join(dir, 'host-credentials'),
    });
    expect(outcome.completed).toBe(true);
    expect(configSeenBy).toEqual(['git clone --recursive https://git.example.net/cc-ci.git /root/cc-ci', 'nixos-rebuild switch']);
    expect(files.has(HOST_GIT_CONFIG)).toBe(false);
    const marked = ledger.entries.filter(isHostGitCredentialsEntry);
    expect(marked.map((entry) => entry.kind)).toEqual(['push', 'exec']);
    expect(marked[0]).toMatchObject({ path: HOST_GIT_CONFIG, mode: '0600', secret: true });
    // What C3 and C4 compare: without the marked entries, the ledger is the runbook.
    expect(ledger.entries.filter((entry) => !isHostGitCredentialsEntry(entry)).map((entry) => entry.kind)).toEqual(['exec', 'push', 'exec']);
    const recorded = `${JSON.stringify(ledger.entries)}\n${ledger.toText()}\n${JSON.stringify(outcome)}`;
    for (const form of FORMS) expect(recorded).not.toContain(form);
    expect(redact(Buffer.from(`deployer:${TOKEN}`).toString('base64'))).toBe('[REDACTED]');
  });

  it('the config pushed holds the token only as a header for its origin', async () => {
    const ledger = new Ledger();
    let pushed = '';
    const { host } = fakeHost(ledger);
    const spy: HostChannel = {
      ...host,
      pushFile: async (path, content, options) => {
        if (path === HOST_GIT_CONFIG) pushed = content.toString();
        await host.pushFile(path, content, options);
      },
    };
    await runRunbook(STEPS, spy, {
      source: 'install.md',
      ageKeyFile: join(dir, 'age.txt'),
      durations: REBUILD,
      hostGitCredentialsFile: join(dir, 'host-credentials'),
    });
    expect(pushed).toBe(`[http "https://git.example.net/"]\n\textraHeader = Authorization: Basic ${Buffer.from(`deployer:${TOKEN}`).toString('base64')}\n`);
  });

  it('a credential left on the host is an ERROR that names the file and the host', async () => {
    const { host } = fakeHost(new Ledger(), { rmFails: true });
    const error = await runRunbook(STEPS, host, {
      source: 'install.md',
      ageKeyFile: join(dir, 'age.txt'),
      durations: REBUILD,
      hostGitCredentialsFile: join(dir, 'host-credentials'),
    }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(HarnessError);
    expect((error as Error).message).toMatch(/\/root\/\.gitconfig from throwaway-1/);
  });

  it("a step whose program is not found (127) ends the runbook there, naming the program, as the document's failure; the credentials are removed all the same", async () => {
    const { host, files } = fakeHost(new Ledger(), { missing: 'nixos-rebuild' });
    const outcome = await runRunbook(STEPS, host, {
      source: 'install.md',
      ageKeyFile: join(dir, 'age.txt'),
      durations: REBUILD,
      hostGitCredentialsFile: join(dir, 'host-credentials'),
    });
    expect(outcome.completed).toBe(false);
    expect(outcome.steps.at(-1)).toMatchObject({ index: 3, exitCode: 127, notStarted: ['nixos-rebuild'] });
    expect(files.has(HOST_GIT_CONFIG)).toBe(false);
  });

  it('an unreadable credentials file stops before anything reaches the host', async () => {
    const ledger = new Ledger();
    const { host } = fakeHost(ledger);
    await expect(
      runRunbook(STEPS, host, { source: 'install.md', ageKeyFile: join(dir, 'age.txt'), durations: REBUILD, hostGitCredentialsFile: join(dir, 'absent') }),
    ).rejects.toThrow(/ACCEPT_HOST_GIT_CREDENTIALS_FILE/);
    expect(ledger.entries).toEqual([]);
  });

  it('without the setting nothing but the runbook reaches the host', async () => {
    const ledger = new Ledger();
    const { host } = fakeHost(ledger);
    await runRunbook(STEPS, host, { source: 'install.md', ageKeyFile: join(dir, 'age.txt'), durations: REBUILD });
    expect(ledger.entries.filter(isHostGitCredentialsEntry)).toEqual([]);
    expect(ledger.entries).toHaveLength(3);
  });
});

describe('runRunbook time limits', () => {
  it('gives each shell step ACCEPT_REBUILD_TIMEOUT, and a step that uses it all up is an ERROR naming that setting', async () => {
    // The rebuild step hangs until its own limit, as a slow rebuild would.
    const { host, limits } = limitRecordingHost('throwaway-1', async (script, options) => {
      if (!script.startsWith('nixos-rebuild')) return {};
      await new Promise((resolve) => setTimeout(resolve, options.timeoutMs));
      throw new Error('operation timed out');
    });
    const error = await runRunbook(STEPS, host, { source: 'install.md', ageKeyFile: join(dir, 'age.txt'), durations: { rebuild: 50 } }).catch(
      (caught: unknown) => caught,
    );
    expect(limits.map((call) => call.timeoutMs)).toEqual([50, 50]);
    expect(error).toBeInstanceOf(HarnessError);
    expect((error as Error).message).toMatch(
      /runbook step 3 \(install\.md:\d+\) on throwaway-1 did not finish within 0 s \(ACCEPT_REBUILD_TIMEOUT; .*raise ACCEPT_REBUILD_TIMEOUT; operation timed out/,
    );
  });
});

describe('runRunbook when the channel drops during a step', () => {
  /** A host whose channel drops under the rebuild, then answers `true` again after `downFor` probes (or never). */
  function droppingHost(downFor: number): { host: HostChannel; probes: () => number } {
    let probes = 0;
    const host = hostChannel({
      name: 'throwaway-2',
      transport: 'incus exec',
      async exec(script) {
        if (script.startsWith('nixos-rebuild')) throw new ChannelLostError('throwaway-2', 'incus exec', script, 'websocket: close 1006 (abnormal closure)');
        if (script === 'true') {
          probes++;
          if (probes <= downFor) throw new ChannelLostError('throwaway-2', 'incus exec', script, 'Failed to connect to incus-agent');
        }
        return { command: script, exitCode: 0, stdout: '', stderr: '' };
      },
      async pushFile() {},
      async readFile() {
        return Buffer.alloc(0);
      },
    });
    return { host, probes: () => probes };
  }

  it("waits for the channel within the step's budget, then records the step as ended unknown, over which channel, and for how long it was gone", async () => {
    const { host, probes } = droppingHost(1);
    const outcome = await runRunbook(STEPS, host, { source: 'install.md', ageKeyFile: join(dir, 'age.txt'), durations: { rebuild: 20_000 } });
    expect(probes()).toBe(2);
    expect(outcome.completed).toBe(false);
    expect(outcome.steps.map(({ index, exitCode, channel }) => ({ index, exitCode, via: channel.via, lost: channel.lostForMs !== undefined }))).toEqual([
      { index: 1, exitCode: 0, via: 'incus exec', lost: false },
      { index: 2, exitCode: 0, via: 'incus exec (files API)', lost: false },
      { index: 3, exitCode: EXIT_UNKNOWN, via: 'incus exec', lost: true },
    ]);
    expect(outcome.steps[2]!.outputTail).toMatch(
      /the incus exec channel to throwaway-2 dropped while `nixos-rebuild switch` ran \(websocket: close 1006 \(abnormal closure\)\): whether it finished, and how, is unknown; the channel answered again after \d+ s/,
    );
  }, 30_000);

  it('a channel that never comes back within the budget is an ERROR that says what to enable', async () => {
    const { host } = droppingHost(Number.POSITIVE_INFINITY);
    const error = await runRunbook(STEPS, host, { source: 'install.md', ageKeyFile: join(dir, 'age.txt'), durations: { rebuild: 3_000 } }).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(HarnessError);
    expect((error as Error).message).toMatch(
      /timed out after .* waiting for the incus exec channel to throwaway-2 to answer again after it dropped during runbook step 3 .*enable virtualisation\.incus\.agent/,
    );
  }, 30_000);
});
