/**
 * The throwaway's lifecycle on the lab, end to end: teardown holds whenever the run is killed,
 * the memory guardrail refuses before anything exists, a kept throwaway is removed by
 * `accept down`, and the ssh target checks an existing host without provisioning anything.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadConfig, systemNamesEnv } from '../../helpers/common/config.ts';
import { exec, succeed } from '../../helpers/common/exec.ts';
import { HOST_PATH, hostShellArgv } from '../../helpers/common/host.ts';
import { waitFor } from '../../helpers/common/wait.ts';
import { connectSsh } from '../../helpers/ssh/index.ts';
import { keptFile, readKept, writeKept } from '../../machines/kept.ts';
import { DOD_ITEMS } from '../../reporting/dod-items.ts';
import { latestRunRecord } from '../../reporting/run-record-io.ts';
import { labSettings } from '../../lab/index.ts';
import { runForgeLog } from '../../lab/forge.ts';
import { LAB_SYSTEM_NAMES } from '../../lab/repos.ts';
import { exists, leaseLabWorker, leftoverThrowaways, runAccept, runVitest, type ChildRun } from './support.ts';
import type { WorkerLease } from '../../lab/workers.ts';

/** The lab project of the kept throwaway below, held for the whole describe. */
let keptProject = 'terraform-ci';
const labDir = loadConfig().lab.dir;

/**
 * The lab is shared: other people's throwaways come and go while this file runs. So each check
 * is about the instances a run of this file named in its output, and nothing else.
 */
function throwawaysNamedIn(output: string): string[] {
  return [...new Set(output.replace(ANSI, '').match(/\baccept-\d{8}t\d{6}-[0-9a-z]{4}\b/g) ?? [])];
}

async function stillPresent(names: string[]): Promise<string[]> {
  const present = new Set(await leftoverThrowaways());
  return names.filter((name) => present.has(name));
}

/** None of the run's throwaways remains, allowing the reaper up to 30 s after the run has exited. */
async function expectNothingLeft(run: ChildRun): Promise<void> {
  const names = throwawaysNamedIn(run.output);
  expect(names.length, `the run named no throwaway:\n${run.output}`).toBeGreaterThan(0);
  await waitFor(
    `${names.join(', ')} to be gone from the lab`,
    async () => {
      const left = await stillPresent(names);
      return left.length === 0 || { done: false, saw: left };
    },
    { timeoutMs: 30_000, intervalMs: 500 },
  ).catch((error: Error) => {
    throw new Error(`${error.message}\n--- output of the run ---\n${run.output}`);
  });
}

/**
 * Other people's kept throwaways can fill the 12 GiB guideline on a shared lab; these runs are
 * not about the guideline, so only the server's physical memory limits them.
 */
const ROOMY = { ACCEPT_RAM_GUIDELINE: '1TiB' };
const C7_SPEC = 'acceptance/c7-docs.spec.ts';

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // The group has already gone.
  }
}

/**
 * A run that receives `signal` once its output matches `when` (after `delay` ms), optionally a
 * second time `again` ms later; with when the first signal was sent.
 */
async function runKilled(signal: NodeJS.Signals, when: RegExp, timing: { delay?: number; again?: number } = {}): Promise<{ run: ChildRun; sentAt?: number }> {
  let matched = false;
  let sentAt: number | undefined;
  const run = await runAccept(['run'], {
    env: ROOMY,
    timeoutMs: 300_000,
    onOutput: (output, child) => {
      if (matched || !when.test(output.replace(ANSI, ''))) return;
      matched = true;
      setTimeout(() => {
        sentAt = performance.now();
        signalGroup(child.pid, signal);
        if (timing.again !== undefined) setTimeout(() => signalGroup(child.pid, signal), timing.again);
      }, timing.delay ?? 0);
    },
  });
  return { run, sentAt };
}

// The line timed() prints when creation starts, and a spec file's result line from Vitest
// (which colours its output even into a pipe).
const ANSI = /\x1b\[[0-9;]*m/g;
const CREATING = /→ Creating throwaway accept-\S+ from /;
const SPEC_RESULT = /^\s*[✓×↓❯]\s+(cold\s+)?acceptance\/\S+\.spec\.ts/m;
// The throwaway's runbook: the lab's production stand-in runs the same one when it converges first.
const RUNBOOK = /Creating throwaway[\s\S]*Runbook step 1\//;

describe('teardown holds whenever the run is killed', () => {
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGKILL'] as const) {
    test(`${signal} while the throwaway is being created leaves no throwaway`, async () => {
      // Creating takes seconds; 500 ms in, the create request is with Incus, not just about to be sent.
      const { run, sentAt } = await runKilled(signal, CREATING, { delay: 500 });
      expect(sentAt, run.output).toBeDefined();
      expect(run.exitCode === 0, run.output).toBe(false);
      await expectNothingLeft(run);
    });
  }

  for (const signal of ['SIGINT', 'SIGTERM', 'SIGKILL'] as const) {
    test(`${signal} while the specs run leaves no throwaway`, async () => {
      const { run, sentAt } = await runKilled(signal, SPEC_RESULT);
      expect(sentAt, run.output).toBeDefined();
      expect(run.exitCode === 0, run.output).toBe(false);
      await expectNothingLeft(run);
    });
  }

  test('a second SIGINT 300 ms after the first exits at once; the reaper still removes the throwaway', async () => {
    const { run, sentAt } = await runKilled('SIGINT', RUNBOOK, { again: 300 });
    expect(sentAt, run.output).toBeDefined();
    expect(run.exitCode === 0, run.output).toBe(false);
    // "At once": the run says it leaves the deletion to the reaper, and never started its own teardown.
    expect(run.output).toMatch(/could not delete accept-\S+ now; its reaper keeps trying/);
    expect(run.output).not.toMatch(/→ Deleting throwaway/);
    const swept = await runAccept(['sweep']);
    expect(swept.exitCode, swept.output).toBe(0);
    await expectNothingLeft(run);
  });
});

describe('guardrails', () => {
  test('a RAM guideline the throwaway does not fit in is refused before anything is created', async () => {
    const run = await runAccept(['run'], { env: { ACCEPT_RAM_GUIDELINE: '1GiB' } });
    expect(run.exitCode, run.output).not.toBe(0);
    expect(run.output).toMatch(
      /refusing to create accept-\S+: project terraform-ci(-\d+)? runs .* it would be [0-9.]+ GiB, over the 1\.0 GiB guideline \(ACCEPT_RAM_GUIDELINE\)/,
    );
    expect(run.output).not.toMatch(CREATING);
    // No wait: there was never anything for a reaper to remove.
    const refused = /refusing to create (accept-[0-9a-z-]+):/.exec(run.output.replace(ANSI, ''))![1]!;
    expect(await stillPresent([refused])).toEqual([]);
  });

  test('a cold run against the ssh target stops before anything: it never provisions', async () => {
    const run = await runAccept(['run'], { env: { ACCEPT_TARGET: 'ssh', ACCEPT_SSH_HOST: 'cc-nix-test' } });
    expect(run.exitCode, run.output).not.toBe(0);
    expect(run.output).toMatch(/ACCEPT_TARGET: is ssh: that target is an existing host and the harness never provisions or destroys anything on it/);
    expect(run.output).toContain('npx vitest run --project warm');
    expect(run.output).not.toMatch(CREATING);
    expect(throwawaysNamedIn(run.output)).toEqual([]);
  });
});

async function incus(...args: string[]): Promise<string> {
  return (await succeed('incus', ['--project', keptProject, ...args])).stdout;
}

/**
 * What a warm run honestly cannot check on a kept host, and says so: the live rebuild is a cold
 * run's, and the checks that change the host need ACCEPT_ALLOW_HOST_CHANGES=1.
 */
const HOST_CHANGES = /^this changes the host \(commit to its checkout, rebuild, restore\)/;
const WARM_SKIPS: Partial<Record<string, RegExp>> = {
  C4: /^warm run: this host was not created by this run/,
  C5: /^warm run: the live half needs a cold run that creates the machine/,
  D5: HOST_CHANGES,
  D6: HOST_CHANGES,
  D8: /^warm run: the live half needs a cold run that creates the machine/,
};

/** What a warm run facing the running cc-ci alone cannot check there, and says so: a throwaway's checks, and changes to the host. */
const PRODUCTION_ALONE_SKIPS = new RegExp(
  [HOST_CHANGES.source, WARM_SKIPS.C4!.source, WARM_SKIPS.C5!.source, '^no provisioning ledger', '^no runbook ran in this run']
    .map((source) => `(?:${source})`)
    .join('|'),
);

describe('a kept throwaway: the whole warm suite on it, then checked over SSH as an existing host, then removed by `accept down`', () => {
  let stateDir: string;
  let keyDir: string;
  let name: string;
  let sshPort: number;
  let hostKeys: string[];
  /** The host key sshd presents to the harness's client. */
  let servedKey: string;
  let sshEnv: Record<string, string>;
  let lease: WorkerLease | undefined;
  /** The kept throwaway's forge, on the lab host: the real target's forge is external too. */
  let forgeUrl: string;

  beforeAll(async () => {
    lease = await leaseLabWorker();
    keptProject = lease.project;
    stateDir = await mkdtemp(join(tmpdir(), 'accept-e2e-state-'));
    keyDir = await mkdtemp(join(tmpdir(), 'accept-e2e-ssh-'));
    const keep = await runAccept(['run'], {
      env: { ...ROOMY, ACCEPT_KEEP: 'always', ACCEPT_STATE_DIR: stateDir, ACCEPT_TTL: '30m', ACCEPT_INCUS_PROJECT: keptProject },
    });
    // It passed, with the throwaway's own exec PATH a NixOS VM's (checked below).
    expect(keep.exitCode, keep.output).toBe(0);
    const kept = await readKept(stateDir);
    expect(kept, keep.output).toBeDefined();
    name = kept!.host.name;
    forgeUrl = kept!.host.forgeUrl!;
    expect(forgeUrl, 'the kept record names no forge').toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(await stillPresent([name])).toEqual([name]);
  });

  afterAll(async () => {
    // Whatever happened above, nothing may outlive this file.
    if (stateDir) await runAccept(['down'], { env: { ACCEPT_STATE_DIR: stateDir } });
    if (keyDir) await rm(keyDir, { recursive: true, force: true });
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
    await lease?.release();
  });

  // First, while the kept host is as the cold run left it (the SSH set-up below changes it).
  test('the whole warm suite, right after the kept cold run, passes every item but those a warm run cannot check', async () => {
    const run = await runVitest(['--project', 'warm'], { ACCEPT_STATE_DIR: stateDir }, 600_000);
    const record = await latestRunRecord(run.reportsDir).catch((error: Error) => expect.unreachable(`${error.message}\n${run.output}`));
    expect(
      record.items.map((item) => item.id),
      run.output,
    ).toEqual(Object.keys(DOD_ITEMS));
    const unexplained = record.items.flatMap((item) =>
      item.checks
        .filter((check) => check.verdict !== 'PASS' && !(check.verdict === 'SKIPPED' && WARM_SKIPS[item.id]?.test(check.evidence ?? '')))
        .map((check) => `${item.id} ${check.name}: ${check.verdict} ${check.cause ?? check.evidence ?? ''}`),
    );
    expect(unexplained, run.output).toEqual([]);
    expect(run.exitCode, run.output).toBe(0);
    expect(await stillPresent([name])).toEqual([name]);
  });

  test("with no kept throwaway recorded, the whole warm suite faces the running cc-ci alone: its checks pass, the throwaway's are SKIPPED saying why, and nothing is created", async () => {
    const emptyState = await mkdtemp(join(tmpdir(), 'accept-e2e-no-kept-'));
    try {
      const before = (await incus('list', '-f', 'csv', '-c', 'n')).trim().split('\n').sort();
      const run = await runVitest(['--project', 'warm'], { ACCEPT_STATE_DIR: emptyState, ACCEPT_INCUS_PROJECT: keptProject }, 600_000);
      const record = await latestRunRecord(run.reportsDir).catch((error: Error) => expect.unreachable(`${error.message}\n${run.output}`));
      expect(
        record.items.map((item) => item.id),
        run.output,
      ).toEqual(Object.keys(DOD_ITEMS));
      const checks = record.items.flatMap((item) => item.checks.map((check) => ({ id: item.id, ...check })));
      // Every check names the running cc-ci, never a throwaway.
      expect(
        checks
          .filter((check) => check.machine?.includes('throwaway') && !check.machine.includes('no kept throwaway'))
          .map((check) => `${check.id} ${check.name}: ${check.machine}`),
        run.output,
      ).toEqual([]);
      const unexplained = checks
        .filter((check) => check.verdict !== 'PASS' && !(check.verdict === 'SKIPPED' && PRODUCTION_ALONE_SKIPS.test(check.evidence ?? '')))
        .map((check) => `${check.id} ${check.name}: ${check.verdict} ${check.cause ?? check.evidence ?? ''}`);
      expect(unexplained, run.output).toEqual([]);
      expect(checks.filter((check) => check.verdict === 'PASS').length, run.output).toBeGreaterThan(10);
      expect(run.exitCode, run.output).toBe(0);
      expect((await incus('list', '-f', 'csv', '-c', 'n')).trim().split('\n').sort()).toEqual(before);
    } finally {
      await rm(emptyState, { recursive: true, force: true });
    }
  });

  describe('… then logged into over SSH', () => {
    beforeAll(async () => {
      // Log in as a person would: an authorized key, and sshd running.
      await succeed('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'accept-e2e', '-f', join(keyDir, 'id_ed25519')]);
      const publicKey = await readFile(join(keyDir, 'id_ed25519.pub'), 'utf8');
      // With the harness's PATH: the throwaway's own exec PATH holds only sh and env, as a NixOS VM's does.
      await succeed(
        'incus',
        [
          '--project',
          keptProject,
          'exec',
          name,
          '--env',
          `PATH=${HOST_PATH}`,
          '--',
          ...hostShellArgv(
            'install -d -m 700 /root/.ssh && cat > /root/.ssh/authorized_keys && chmod 600 /root/.ssh/authorized_keys && systemctl start ssh',
            true,
          ),
        ],
        { input: publicKey },
      );
      hostKeys = (
        await incus('exec', name, '--env', `PATH=${HOST_PATH}`, '--', ...hostShellArgv('for f in /etc/ssh/ssh_host_*_key.pub; do ssh-keygen -lf "$f"; done'))
      )
        .split('\n')
        .map((line) => line.split(' ')[1])
        .filter((fingerprint): fingerprint is string => Boolean(fingerprint));
      expect(hostKeys.length).toBeGreaterThan(0);

      // The lab forwards the instance's port 22 to a loopback port of its own choosing.
      const listen = (await incus('config', 'device', 'get', name, 'accept-ssh', 'listen')).trim();
      sshPort = Number(/^tcp:127\.0\.0\.1:(\d+)$/.exec(listen)?.[1]);
      expect(sshPort, listen).toBeGreaterThan(0);
      // The ssh target checks TLS on port 443 of its host, as on the real deployment.
      await incus('config', 'device', 'add', name, 'e2e-https-443', 'proxy', 'listen=tcp:127.0.0.1:443', 'connect=tcp:127.0.0.1:443');

      const lab = labSettings(labDir);
      const probe = await connectSsh({
        host: '127.0.0.1',
        port: sshPort,
        username: 'root',
        privateKey: await readFile(join(keyDir, 'id_ed25519'), 'utf8'),
        socks: lab.socks,
        hostKey: { trustOnFirstUse: true, known: new Map() },
      });
      servedKey = probe.hostKeyFingerprint;
      await probe.close();
      expect(hostKeys).toContain(servedKey);

      sshEnv = {
        ACCEPT_TARGET: 'ssh',
        ACCEPT_SSH_HOST: '127.0.0.1',
        ACCEPT_SSH_PORT: String(sshPort),
        ACCEPT_SSH_KEY: join(keyDir, 'id_ed25519'),
        ACCEPT_SOCKS: lab.socks,
        ACCEPT_AGE_KEY_FILE: lab.ageKeyFile,
        ACCEPT_BASE_REPO: lab.baseRepo,
        ACCEPT_INSTANCE_REPO: lab.instanceRepo,
        ACCEPT_DOMAIN: lab.domain,
        ACCEPT_TLS_CA_FILE: lab.tlsCaFile,
        // A real target names cc-ci's units and layout: here, the lab's.
        ...systemNamesEnv(LAB_SYSTEM_NAMES),
        ACCEPT_INSTANCE_SECRETS_FILE: 'secrets.yaml',
        ACCEPT_INSTANCE_SUBMODULE: 'secrets',
        ACCEPT_ARCHITECTURE_DOC: 'docs/architecture.md',
        ACCEPT_FORGE_URL: forgeUrl,
        // The ssh target must not need these; pointing them nowhere proves it.
        ACCEPT_STATE_DIR: join(stateDir, 'unused'),
        ACCEPT_INCUS_URL: 'https://127.0.0.1:9',
      };
    });

    test("the throwaway's own exec PATH finds only sh and env, as a NixOS VM's agent gives: what passed above did not lean on it", async () => {
      const own = await exec('incus', [
        '--project',
        keptProject,
        'exec',
        name,
        '--',
        'sh',
        '-c',
        'echo "$PATH"; for tool in git systemctl nix readlink grep sha256sum nixos-rebuild env; do command -v "$tool" || echo "no $tool"; done',
      ]);
      expect(own.exitCode, own.stderr).toBe(0);
      const [path, ...found] = own.stdout.trim().split('\n');
      expect(path).toBe('/usr/libexec/accept-vm-exec-path');
      expect(found).toEqual([
        'no git',
        'no systemctl',
        'no nix',
        'no readlink',
        'no grep',
        'no sha256sum',
        'no nixos-rebuild',
        '/usr/libexec/accept-vm-exec-path/env',
      ]);
    });

    // Verdict classes under faults (issue 13): a warm run faces the settings it is given now.
    const items = (output: string) =>
      [...output.matchAll(/^\| ([CD]\d+) [^|]+\| (PASS|FAIL|ERROR|SKIPPED) \|/gm)].map((match) => ({ id: match[1]!, verdict: match[2]! }));

    test('a warm run with a dead proxy is an ERROR naming the proxy: no PASS, no FAIL, and a non-zero exit', async () => {
      const specs = ['c2-cert-in-git', 'c4-live-rebuild', 'c6-resource-fit', 'd7-results-ux'].map((spec) => `acceptance/${spec}.spec.ts`);
      const run = await runVitest(['--project', 'warm', ...specs], { ACCEPT_STATE_DIR: stateDir, ACCEPT_SOCKS: 'socks5://127.0.0.1:9' });
      expect(run.exitCode, run.output).not.toBe(0);
      // The lab's warm setup reaches Incus first (its running cc-ci), so the run stops there, as one ERROR.
      const seen = items(run.output);
      expect(
        seen.filter((item) => item.verdict !== 'ERROR'),
        run.output,
      ).toEqual([]);
      expect(run.output).toMatch(/\*\*Run \S+: ERROR\*\*/);
      expect(run.output).toMatch(/through SOCKS5 proxy socks5:\/\/127\.0\.0\.1:9 \(ACCEPT_SOCKS\): the proxy refused the connection/);
    });

    test('a warm run with a wrong Drone token gives ERROR for the D items that read Drone, never FAIL or PASS', async () => {
      const tokenFile = join(keyDir, 'wrong-drone-token');
      await writeFile(tokenFile, 'not-the-drone-token\n', { mode: 0o600 });
      const specs = ['d1-testme-trigger', 'd2-install-upgrade-backup'].map((spec) => `acceptance/${spec}.spec.ts`);
      const run = await runVitest(['--project', 'warm', ...specs], { ACCEPT_STATE_DIR: stateDir, ACCEPT_DRONE_TOKEN_FILE: tokenFile });
      expect(run.exitCode, run.output).not.toBe(0);
      expect(items(run.output), run.output).toEqual([
        { id: 'D1', verdict: 'ERROR' },
        { id: 'D2', verdict: 'ERROR' },
      ]);
      expect(run.output).toMatch(/refused the token from ACCEPT_DRONE_TOKEN_FILE/);
    });

    test('a kept throwaway of another lab generation is one clear ERROR naming it and what to run', async () => {
      const kept = (await readKept(stateDir))!;
      const staleDir = await mkdtemp(join(tmpdir(), 'accept-e2e-stale-'));
      try {
        const { schemaVersion: _version, keptAt: _at, ...rest } = kept;
        await writeKept(staleDir, { ...rest, generation: 'input repos generated 2026-01-01T00:00:00.000Z (base 000000000000)' });
        const run = await runVitest(['--project', 'warm', 'acceptance/c1-repo-split.spec.ts', 'acceptance/c2-cert-in-git.spec.ts'], {
          ACCEPT_STATE_DIR: staleDir,
        });
        expect(run.exitCode, run.output).not.toBe(0);
        expect(run.output).toContain(`records ${name}, built from input repos generated 2026-01-01`);
        expect(run.output).toContain('ACCEPT_KEEP=always npm run accept');
        expect(
          items(run.output).filter((item) => item.verdict === 'FAIL' || item.verdict === 'PASS'),
          run.output,
        ).toEqual([]);
      } finally {
        await rm(staleDir, { recursive: true, force: true });
      }
    });

    test('the warm project over SSH passes C2, skips C6 with the reason, and learns the host key on first use', async () => {
      const run = await runVitest(['--project', 'warm', 'acceptance/c2-cert-in-git.spec.ts', 'acceptance/c6-resource-fit.spec.ts'], sshEnv);
      expect(run.output).toMatch(/\| C2 cert in git \| PASS \|/);
      expect(run.output).toContain('| C6 resource fit and cleanup | SKIPPED | the ssh target has no Incus API: C6 needs ACCEPT_TARGET=incus or lab |');
      expect(run.exitCode, run.output).toBe(0);
      const learned = /learned host key (SHA256:\S+) for 127\.0\.0\.1:(\d+)/.exec(run.output);
      expect(learned, run.output).not.toBeNull();
      expect(learned![1]).toBe(servedKey);
      expect(Number(learned![2])).toBe(sshPort);
      // Nothing was created or removed: no throwaway named, and the kept one still there.
      expect(throwawaysNamedIn(run.output)).toEqual([]);
      expect(await stillPresent([name])).toEqual([name]);
    });

    test('over SSH, a real target, with no probe repo: the checks that write are SKIPPED naming the setting, and the forge gets no write', async () => {
      // The forge stand-in logs every request it serves, on the lab host: that log is the recorder.
      const log = runForgeLog(labDir, name);
      const since = (await readFile(log)).length;
      const run = await runVitest(['--project', 'warm', 'acceptance/d1-testme-trigger.spec.ts', 'acceptance/d7-results-ux.spec.ts'], sshEnv);
      const record = await latestRunRecord(run.reportsDir);
      const checks = record.items.flatMap((item) => item.checks.map((check) => ({ item: item.id, ...check })));
      const skipped = checks.filter((check) => check.verdict === 'SKIPPED');
      // The kept run's !testme builds ran on its running cc-ci (the lab's production), not on this
      // host: here D7 finds no build of its own to read, and would have to comment for one.
      expect(skipped.map((check) => check.name).sort(), run.output).toEqual([
        'a !testme comment from a non-member starts no build',
        'a !testme comment from an org member starts a build within 60 s',
        'a failing run is reported as failing on the dashboard: in the run list and on its page',
        "after a failing run, the recipe's badge says failing",
        "after a passing run, the recipe's badge says passing",
        'the PR got its outcome comment, with a link',
        'the PR of a failing run gets the failing outcome back',
        "the badge is a valid SVG carrying the status of the recipe's latest run",
        'the dashboard lists the run and serves its page at /runs/<n>/',
      ]);
      // A comment for a passing build; a commit of a failing test for a failing one.
      for (const check of skipped)
        expect(check.evidence).toMatch(
          /(?:a comment on|a commit to|a pull request on) coop-cloud\/custom-html would write to the forge: .*set ACCEPT_FORGE_PROBE_REPO=owner\/name/,
        );
      // What reads still ran: the /hook check and the Drone UI.
      expect(
        checks
          .filter((check) => check.verdict !== 'SKIPPED' && check.verdict !== 'PASS')
          .map((check) => `${check.item} ${check.name}: ${check.verdict} ${check.cause}`),
        run.output,
      ).toEqual([]);
      const served = { stdout: (await readFile(log)).subarray(since).toString('utf8') };
      const requests = served.stdout.split('\n').filter((line) => /"(GET|POST|PUT|PATCH|DELETE) /.test(line));
      expect(requests.length, `the forge served nothing: the host's bridge polls it\n${served.stdout}`).toBeGreaterThan(0);
      // Each line names its caller. The bridge's bot may still comment a kept build's result in this
      // window; a write by any other login came from the harness.
      const writes = requests.filter((line) => !/"GET /.test(line));
      expect(
        writes.filter((line) => !/^\S+ ccci-bot "/.test(line)),
        'requests that write reached the forge from the harness',
      ).toEqual([]);
    });

    test('the right ACCEPT_SSH_HOST_KEY pin is accepted, and nothing is learned', async () => {
      const run = await runVitest(['--project', 'warm', 'acceptance/c6-resource-fit.spec.ts'], { ...sshEnv, ACCEPT_SSH_HOST_KEY: servedKey });
      expect(run.exitCode, run.output).toBe(0);
      expect(run.output).toContain('| C6 resource fit and cleanup | SKIPPED |');
      expect(run.output).not.toContain('learned host key');
    });

    test('a wrong ACCEPT_SSH_HOST_KEY pin stops the run: the host key changed, naming the setting', async () => {
      const wrong = `SHA256:${Buffer.alloc(32, 7).toString('base64').replace(/=+$/, '')}`;
      const run = await runVitest(['--project', 'warm', 'acceptance/c2-cert-in-git.spec.ts'], { ...sshEnv, ACCEPT_SSH_HOST_KEY: wrong });
      expect(run.exitCode, run.output).not.toBe(0);
      expect(run.output).toMatch(
        new RegExp(`host key of 127\\.0\\.0\\.1:${sshPort} changed: expected ${wrong.replace(/[+/]/g, '\\$&')} \\(ACCEPT_SSH_HOST_KEY\\), got SHA256:`),
      );
      expect(run.output).not.toMatch(/\| C2 cert in git \| PASS/);
    });

    test('a missing ACCEPT_SSH_KEY is named before anything connects', async () => {
      // Blank counts as unset.
      const run = await runVitest(['--project', 'warm', 'acceptance/c6-resource-fit.spec.ts'], { ...sshEnv, ACCEPT_SSH_KEY: '' });
      expect(run.exitCode, run.output).not.toBe(0);
      expect(run.output).toContain('ACCEPT_SSH_KEY: is required when ACCEPT_TARGET=ssh');
    });

    test('`accept down` removes the kept throwaway and kept.json', async () => {
      const down = await runAccept(['down'], { env: { ACCEPT_STATE_DIR: stateDir } });
      expect(down.exitCode, down.output).toBe(0);
      expect(down.stdout).toContain(`deleted ${name}`);
      expect(await exists(keptFile(stateDir))).toBe(false);
      expect(await stillPresent([name])).toEqual([]);
      // A second `down` has nothing to do, and says so.
      const again = await runAccept(['down'], { env: { ACCEPT_STATE_DIR: stateDir } });
      expect(again.exitCode, again.output).toBe(0);
      expect(again.stdout).toContain('no kept throwaway recorded');
    });
  });
});

describe('ACCEPT_KEEP=on-failure', () => {
  test('keeps the throwaway of a failing run for debugging, deletes that of a passing one', async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'accept-e2e-onfailure-'));
    try {
      // C7 alone: whether a run is kept turns on its verdict, not on how many specs made it.
      const failing = await runAccept(['run', C7_SPEC], {
        env: { ...ROOMY, ACCEPT_KEEP: 'on-failure', ACCEPT_STATE_DIR: stateDir, ACCEPT_LAB_SABOTAGE: 'c7-secrets-doc-emptied' },
      });
      expect(failing.exitCode, failing.output).not.toBe(0);
      expect(failing.output).toMatch(/ACCEPT_KEEP=on-failure: keeping accept-\S+/);
      const kept = (await readKept(stateDir))!.host;
      expect(await leftoverThrowaways()).toContain(kept.name);
      const down = await runAccept(['down'], { env: { ACCEPT_STATE_DIR: stateDir } });
      expect(down.stdout).toContain(`deleted ${kept.name}`);
      expect(await leftoverThrowaways()).not.toContain(kept.name);

      const passing = await runAccept(['run', C7_SPEC], { env: { ...ROOMY, ACCEPT_KEEP: 'on-failure', ACCEPT_STATE_DIR: stateDir } });
      expect(passing.exitCode, passing.output).toBe(0);
      expect(passing.stdout).toMatch(/\| C7 docs \| PASS \|/);
      expect(await exists(keptFile(stateDir))).toBe(false);
      const created = [...passing.output.matchAll(/Creating throwaway (accept-[a-z0-9-]+)/g)].map((match) => match[1]!);
      for (const name of created) expect(await leftoverThrowaways()).not.toContain(name);
    } finally {
      await runAccept(['down'], { env: { ACCEPT_STATE_DIR: stateDir } });
      await rm(stateDir, { recursive: true, force: true });
    }
  });
});
