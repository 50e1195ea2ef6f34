/**
 * The builder's long-lived session (`accept watch`), driven as a builder drives it: a kept
 * throwaway, one session left open, and a re-run after each change. Every re-run must face the
 * host, the proxy and the kept record as they are at that moment: the first passes; then the kept
 * host is changed and the next re-run FAILs naming the change; then the proxy is stopped and the
 * next re-run is an ERROR; then kept.json is replaced by a stale record, and the run the session
 * starts by itself is an ERROR naming it. Nothing here asserts a time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { succeed } from '../../helpers/common/exec.ts';
import { HOST_PATH, hostShellArgv } from '../../helpers/common/host.ts';
import { waitFor } from '../../helpers/common/wait.ts';
import { keptFile, readKept, writeKept } from '../../machines/kept.ts';
import { RUN_DONE } from '../../reporting/session-line.ts';
import type { WorkerLease } from '../../lab/workers.ts';
import { REPO_ROOT, leaseLabWorker, reportsDirForTest, runAccept } from './support.ts';
import { exampleProfile } from '../../machines/system-profile.fixture.ts';

const ANSI = /\x1b\[[0-9;]*m/g;
const C2_SPEC = 'acceptance/c2-cert-in-git.spec.ts';
/** Where the change below points the host's privkey.pem: a file that is not the key in git. */
const IMPOSTOR = '/etc/accept-e2e-watch/privkey.pem';

/** A free loopback port, for a proxy of this test's own. */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** The lab's own SOCKS5 proxy program, on a port of this test's own: stopping it stops no one else's runs. */
async function startProxy(): Promise<{ url: string; stop: () => Promise<void> }> {
  const port = await freePort();
  const proxy = spawn('microsocks', ['-i', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  await waitFor(
    `microsocks on 127.0.0.1:${port}`,
    async () => {
      const open = await new Promise<boolean>((resolve) => {
        const socket = net.connect(port, '127.0.0.1', () => resolve(socket.end() && true));
        socket.on('error', () => resolve(false));
      });
      return open || { done: false, saw: 'not listening yet' };
    },
    { timeoutMs: 10_000, intervalMs: 100 },
  );
  return {
    url: `socks5://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        if (proxy.exitCode !== null || proxy.signalCode !== null) return resolve();
        proxy.once('exit', () => resolve());
        proxy.kill('SIGTERM');
      }),
  };
}

/** An `accept watch` child, fed lines on stdin; `next()` triggers a re-run and answers its output. */
class Session {
  private output = '';
  private readonly child: ChildProcess;
  private runsSeen = 0;

  constructor(args: string[], env: Record<string, string>) {
    this.child = spawn(process.execPath, [join(REPO_ROOT, 'bin/accept.mjs'), 'watch', ...args], {
      cwd: REPO_ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    this.child.stdout!.on('data', (chunk: Buffer) => (this.output += chunk.toString('utf8')));
    this.child.stderr!.on('data', (chunk: Buffer) => (this.output += chunk.toString('utf8')));
  }

  /** The output of the next run to end (the first one starts by itself), up to its closing line. */
  async run(trigger: boolean): Promise<{ word: string; output: string }> {
    const from = this.output.length;
    if (trigger) this.child.stdin!.write('\n');
    const want = this.runsSeen + 1;
    const done = await waitFor<{ word: string; output: string }>(
      `accept watch run ${want} to end`,
      async () => {
        const text = this.output.slice(from).replace(ANSI, '');
        const match = new RegExp(RUN_DONE.source, 'gm').exec(text);
        if (match && Number(match[1]) === want) return { word: match[3]!, output: text };
        if (this.child.exitCode !== null) throw new Error(`accept watch exited ${this.child.exitCode}:\n${this.output}`);
        return { done: false, saw: text.slice(-400) };
      },
      { timeoutMs: 240_000, intervalMs: 200 },
    );
    this.runsSeen = want;
    return done;
  }

  async quit(): Promise<number | null> {
    if (this.child.exitCode !== null) return this.child.exitCode;
    const exited = new Promise<number | null>((resolve) => this.child.once('exit', (code) => resolve(code)));
    this.child.stdin!.end('q\n');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 30_000);
    const code = await exited;
    clearTimeout(timer);
    return code;
  }

  get all(): string {
    return this.output;
  }
}

/** The DoD summary's rows in a run's output. */
const items = (output: string) =>
  [...output.matchAll(/^\| ([CD]\d+) [^|]+\| (PASS|FAIL|ERROR|SKIPPED) \|(.*)$/gm)].map((match) => ({
    id: match[1]!,
    verdict: match[2]!,
    evidence: match[3]!,
  }));

describe('the long-lived warm session (accept watch) re-reads the kept host each re-run', () => {
  let lease: WorkerLease | undefined;
  let stateDir: string;
  let name: string;
  let project: string;
  let proxy: Awaited<ReturnType<typeof startProxy>> | undefined;
  let session: Session | undefined;
  let keyLink: string;
  let keyTarget: string | undefined;

  const onHost = async (command: string) =>
    (await succeed('incus', ['--project', project, 'exec', name, '--env', `PATH=${HOST_PATH}`, '--', ...hostShellArgv(command)])).stdout;

  beforeAll(async () => {
    lease = await leaseLabWorker();
    project = lease.project;
    stateDir = await mkdtemp(join(tmpdir(), 'accept-e2e-watch-state-'));
    const keep = await runAccept(['run', C2_SPEC], {
      env: { ACCEPT_RAM_GUIDELINE: '1TiB', ACCEPT_KEEP: 'always', ACCEPT_STATE_DIR: stateDir, ACCEPT_TTL: '30m', ACCEPT_INCUS_PROJECT: project },
    });
    expect(keep.exitCode, keep.output).toBe(0);
    const kept = await readKept(stateDir);
    expect(kept, keep.output).toBeDefined();
    name = kept!.host.name;
    keyLink = exampleProfile().host.certKey;
    proxy = await startProxy();
  });

  afterAll(async () => {
    // Whatever happened above, the host is put back, the session ends, and nothing outlives the file.
    if (session) await session.quit();
    if (keyTarget) await onHost(`ln -sfn ${keyTarget} ${keyLink} && rm -rf ${IMPOSTOR.replace(/\/[^/]+$/, '')}`).catch(() => undefined);
    await proxy?.stop();
    if (stateDir) await runAccept(['down'], { env: { ACCEPT_STATE_DIR: stateDir } });
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
    await lease?.release();
  });

  test('the first run passes; a changed host is a FAIL naming the change; a stopped proxy is an ERROR; so is a stale kept record', async () => {
    const reportsDir = await reportsDirForTest();
    session = new Session([C2_SPEC], { ACCEPT_STATE_DIR: stateDir, ACCEPT_REPORTS_DIR: reportsDir, ACCEPT_SOCKS: proxy!.url });

    const first = await session.run(false);
    expect(first.word, first.output).toBe('PASS');
    expect(
      items(first.output).map((item) => `${item.id} ${item.verdict}`),
      first.output,
    ).toEqual(['C2 PASS']);

    // The change a builder might make by hand: privkey.pem now points at a file that is not the key in git.
    keyTarget = (await onHost(`readlink -f -- ${keyLink}`)).trim();
    expect(keyTarget).toMatch(/^\//);
    await onHost(`mkdir -p ${IMPOSTOR.replace(/\/[^/]+$/, '')} && printf 'not the key in git\\n' > ${IMPOSTOR} && ln -sfn ${IMPOSTOR} ${keyLink}`);
    const changed = await session.run(true);
    expect(changed.word, changed.output).toBe('FAIL');
    expect(
      items(changed.output).map((item) => `${item.id} ${item.verdict}`),
      changed.output,
    ).toEqual(['C2 FAIL']);
    expect(changed.output).toContain(`privkey.pem (→ ${IMPOSTOR}) on ${name} is not wildcard_key from git`);

    // Put back, so that what follows is about the proxy alone.
    await onHost(`ln -sfn ${keyTarget} ${keyLink} && rm -rf ${IMPOSTOR.replace(/\/[^/]+$/, '')}`);
    keyTarget = undefined;

    await proxy!.stop();
    const stopped = await session.run(true);
    expect(stopped.word, stopped.output).toBe('ERROR');
    expect(
      items(stopped.output).filter((item) => item.verdict === 'PASS' || item.verdict === 'FAIL'),
      stopped.output,
    ).toEqual([]);
    expect(stopped.output).toContain(proxy!.url.replace('socks5://', ''));

    // A kept record of another lab generation, as a new lab would leave it: the session sees
    // kept.json change and runs again by itself, and that run is an ERROR naming the record and
    // what to run, whatever the host would have said.
    const original = await readFile(keptFile(stateDir), 'utf8');
    const { schemaVersion: _version, keptAt: _at, ...kept } = (await readKept(stateDir))!;
    await writeKept(stateDir, { ...kept, generation: 'input repos generated 2026-01-01T00:00:00.000Z (base 000000000000)' });
    try {
      const stale = await session.run(false);
      expect(stale.word, stale.output).toBe('ERROR');
      expect(stale.output).toContain(`records ${name}, built from input repos generated 2026-01-01`);
      expect(stale.output).toContain('ACCEPT_KEEP=always npm run accept');
      expect(
        items(stale.output).filter((item) => item.verdict === 'PASS' || item.verdict === 'FAIL'),
        stale.output,
      ).toEqual([]);
    } finally {
      await writeFile(keptFile(stateDir), original);
    }

    expect(await session.quit(), session.all).toBe(0);
    session = undefined;
  });
});
