/**
 * The lab's forge, outside the throwaway as the real recipes' forge is outside cc-ci: one
 * stand-in (lab/base/services/forge.py) per throwaway, on the lab host. The throwaway's bridge
 * and runner reach it through a proxy device on its own loopback (127.0.0.1:3000, where cc-ci's
 * units in the lab look for it); the harness reaches it over HTTPS at 127.0.0.1, through the
 * SOCKS proxy like every other face. One per run, so concurrent runs never see each other's
 * comments. It stops itself once its throwaway is gone (a kept one keeps it), or, before that
 * exists, once the run that started it is gone.
 */
import { access, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../helpers/common/dial.ts';
import { HarnessError } from '../helpers/common/errors.ts';
import { isAlive, portAnswers, startDaemon, stopDaemonAndWait } from './daemons.ts';
import { withPidLock } from './lock.ts';
import { labPaths } from './state.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const FORGE_SCRIPT = join(HERE, 'base', 'services', 'forge.py');
/** Each recipe repo's own files (its tests/ among them), as the forge serves them. */
export const FORGE_SEED = join(HERE, 'forge-seed');
/** The enrolment list of the lab's base repo: one recipe repo, with one open PR, each. */
const ENROLLED = join(HERE, 'base', 'tests', 'enrolled');
const INCUS_SOCKET = '/var/lib/incus/unix.socket';
/** Where cc-ci's units in the lab's base repo look for the forge, on the throwaway's own loopback. */
export const FORGE_PORT_IN_INSTANCE = 3000;

export interface RunForge {
  /** What the harness dials: HTTPS on the lab host, the lab CA's cert for 127.0.0.1. */
  url: string;
  /** The plain-HTTP port the throwaway's proxy device connects to. */
  httpPort: number;
  /** Stops the forge and removes its directory now; safe to call many times. */
  stop(): Promise<void>;
}

function runDir(labDir: string, instance: string): string {
  return join(labPaths(labDir).forgeDir, 'runs', instance);
}

/** The forge directories of runs whose forge is gone: a forge removes its own, unless it was killed. */
export async function sweepStale(labDir: string): Promise<void> {
  const runs = join(labPaths(labDir).forgeDir, 'runs');
  for (const name of await readdir(runs).catch(() => [] as string[])) {
    const text = await readFile(join(runs, name, 'forge.pid'), 'utf8').catch(() => undefined);
    // No pid yet: another process may be starting that forge this very moment. Only an old one is stale.
    if (text === undefined) {
      const made = await stat(join(runs, name)).then(
        (info) => info.mtimeMs,
        () => undefined,
      );
      if (made !== undefined && Date.now() - made > STARTING_GRACE_MS) await rm(join(runs, name), { recursive: true, force: true });
      continue;
    }
    if (isAlive(Number(text.trim()))) continue;
    // Its recorded forge is gone, but another process may have started a new one there since
    // the pid file was read (a rebuilt production's forge reuses its directory): never sweep a
    // directory a running forge serves.
    const dir = join(runs, name);
    if ((await forgesOf(dir)).length === 0) await rm(dir, { recursive: true, force: true });
  }
}

/** How long a forge directory may stand without a pid file while its forge starts (its ready wait is 20 s). */
const STARTING_GRACE_MS = 120_000;

/** The pid of the forge kept under `key`, if it still runs. */
export async function runForgePid(labDir: string, key: string): Promise<number | undefined> {
  const pid = Number((await readFile(join(runDir(labDir, key), 'forge.pid'), 'utf8').catch(() => '')).trim());
  return pid > 0 && isAlive(pid) ? pid : undefined;
}

/** Stops the forge kept under `key`, if one runs (the lab's production gets a new one when it is rebuilt). */
export async function stopRunForge(labDir: string, key: string): Promise<void> {
  const dir = runDir(labDir, key);
  // Its pid file, and any forge of that directory whose pid file is already gone (one that saw its
  // instance go removes the directory as it stops, and must not take a new forge's with it).
  const pids = new Set([await runForgePid(labDir, key), ...(await forgesOf(dir))].filter((pid): pid is number => pid !== undefined));
  for (const pid of pids) await stopDaemonAndWait(pid, `the forge ${key}`, 5_000);
  await rm(dir, { recursive: true, force: true });
}

/** Processes of forges that remove `dir` when they stop, found by their command line. */
async function forgesOf(dir: string): Promise<number[]> {
  const marker = `\0--remove-on-exit\0${dir}\0`;
  const pids: number[] = [];
  for (const entry of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(join('/proc', entry, 'cmdline'), 'utf8').catch(() => '');
    if (`\0${cmdline}`.includes(marker)) pids.push(Number(entry));
  }
  return pids;
}

/**
 * `key` names the forge's directory: the instance's name by default (a throwaway's is unique);
 * the lab's production stand-ins share a name across projects, so theirs carries the project.
 */
export async function startRunForge(labDir: string, run: { instance: string; project: string; key?: string }): Promise<RunForge> {
  const paths = labPaths(labDir);
  const tokens = join(paths.forgeDir, 'tokens');
  const cert = join(paths.caDir, 'forge-fullchain.pem');
  const key = join(paths.caDir, 'forge.key');
  for (const needed of [tokens, cert, key]) {
    await access(needed).catch(() => {
      throw new HarnessError(
        `the lab's forge has no ${needed}: the lab was generated before the forge moved off the throwaway; run \`npm run lab -- up\` to regenerate it`,
      );
    });
  }
  const dir = runDir(labDir, run.key ?? run.instance);
  // One process at a time sweeps and starts: a sweep must not take the directory of a forge
  // another process is starting this moment (its pid file not yet written, or an old one's still there).
  const { pid, httpPort, tlsPort } = await withPidLock(join(paths.forgeDir, 'runs.lock'), { what: 'another run starting a forge' }, async () => {
    await sweepStale(labDir);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return spawnForge(dir, { tokens, cert, key }, run);
  });
  let stopping: Promise<void> | undefined;
  return {
    url: `https://127.0.0.1:${tlsPort}`,
    httpPort,
    stop: () =>
      (stopping ??= (async () => {
        await stopDaemonAndWait(pid, `the forge of ${run.instance}`, 5_000);
        await rm(dir, { recursive: true, force: true });
      })()),
  };
}

/** Starts the forge stand-in serving `dir`, and records its pid there once it answers. */
async function spawnForge(
  dir: string,
  { tokens, cert, key }: { tokens: string; cert: string; key: string },
  run: { instance: string; project: string },
): Promise<{ pid: number; httpPort: number; tlsPort: number }> {
  const httpPort = await freePort();
  const tlsPort = await freePort();
  const args = [
    FORGE_SCRIPT,
    '--port',
    String(httpPort),
    '--tls-port',
    String(tlsPort),
    '--cert',
    cert,
    '--key',
    key,
    '--state',
    join(dir, 'state.json'),
    '--url',
    `https://127.0.0.1:${tlsPort}`,
    '--org',
    'coop-cloud',
    '--members',
    'ccci-bot=forge_bot_token,alice=forge_member_token',
    '--outsiders',
    'mallory=forge_outsider_token',
    '--creators',
    'alice',
    '--recipes',
    ENROLLED,
    '--seed',
    FORGE_SEED,
    '--instance',
    run.instance,
    '--project',
    run.project,
    '--incus-socket',
    INCUS_SOCKET,
    '--owner-pid',
    String(process.pid),
    '--remove-on-exit',
    dir,
  ];
  // Through env(1): the daemon helper starts a command with this process's environment as it is.
  const pid = await startDaemon({
    name: 'forge',
    command: '/usr/bin/env',
    args: [`CCCI_SECRETS_DIR=${tokens}`, 'PYTHONUNBUFFERED=1', 'PYTHONDONTWRITEBYTECODE=1', '/usr/bin/python3', ...args],
    logsDir: dir,
    ready: async () => (await portAnswers('127.0.0.1', httpPort)) && portAnswers('127.0.0.1', tlsPort),
    readyTimeoutMs: 20_000,
  });
  await writeFile(join(dir, 'forge.pid'), `${pid}\n`);
  return { pid, httpPort, tlsPort };
}

/** The request log of the forge that serves `instance`, while it runs (for the harness's own tests). */
export function runForgeLog(labDir: string, instance: string): string {
  return join(runDir(labDir, instance), 'forge.log');
}

/** Writes the machine made through the forge's plain port (its proxy device), by login and route. */
export type MachineWrites = Record<string, Record<string, number>>;

/** What the machine served by the forge under `key` wrote to it so far; undefined once the forge is gone. */
export async function machineWrites(labDir: string, key: string): Promise<MachineWrites | undefined> {
  const text = await readFile(join(runDir(labDir, key), 'state.json'), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  return (JSON.parse(text) as { machine_writes?: MachineWrites }).machine_writes ?? {};
}
