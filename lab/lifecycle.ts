/**
 * The embedded lab: a real Incus daemon on this machine, a SOCKS5 proxy, the mTLS API and a
 * git server, plus generated cc-ci repos. `labUp` is idempotent: every step checks before it acts.
 */
import { access, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { HarnessError } from '../helpers/common/errors.ts';
import { exec } from '../helpers/common/exec.ts';
import { log, timed } from '../helpers/common/log.ts';
import { waitFor } from '../helpers/common/wait.ts';
import { isAlive, portAnswers, startDaemon, stopDaemonAndWait } from './daemons.ts';
import { withPidLock } from './lock.ts';
import { buildImageTarballs, currentImage, ensureHostExecPathLink, imageExecPath, importImage, recipeHash, removeHostExecPathLink, treeHash } from './image.ts';
import { REPO_TEMPLATES } from './repos.ts';
import { incus, incusOk, incusQuery } from './incus-cli.ts';
import { createClientCert } from './pki.ts';
import { BASE_REPO, INSTANCE_REPO, generateRepos } from './repos.ts';
import {
  LAB_DOMAIN,
  LAB_GIT_PORT,
  LAB_IMAGE_ALIAS,
  LAB_INCUS_ADDRESS,
  LAB_POOL,
  LAB_POOL_SIZE,
  LAB_PROJECT,
  LAB_SOCKS,
  emptyState,
  labPaths,
  readState,
  replaceFile,
  writeState,
  type LabPaths,
  type LabState,
} from './state.ts';

/** What the harness needs to use the lab as an Incus target. */
export interface LabSettings {
  incusUrl: string;
  clientCertFile: string;
  clientKeyFile: string;
  serverCertFile: string;
  project: string;
  image: string;
  socks: string;
  ageKeyFile: string;
  baseRepo: string;
  instanceRepo: string;
  domain: string;
  tlsCaFile: string;
  gitPort: number;
  /** The throwaway's exec PATH: a directory of the image holding only sh and env, as a NixOS VM's agent gives. */
  execPath: string;
}

export function labSettings(dir: string): LabSettings {
  const paths = labPaths(dir);
  const gitUrl = `http://127.0.0.1:${LAB_GIT_PORT}`;
  return {
    incusUrl: `https://${LAB_INCUS_ADDRESS}`,
    clientCertFile: paths.clientCert,
    clientKeyFile: paths.clientKey,
    serverCertFile: paths.serverCert,
    project: LAB_PROJECT,
    image: LAB_IMAGE_ALIAS,
    socks: `socks5://${LAB_SOCKS}`,
    ageKeyFile: paths.bootstrapKey,
    baseRepo: `${gitUrl}/${BASE_REPO}`,
    instanceRepo: `${gitUrl}/${INSTANCE_REPO}`,
    domain: LAB_DOMAIN,
    tlsCaFile: paths.rootCa,
    gitPort: LAB_GIT_PORT,
    execPath: imageExecPath().dir,
  };
}

/** Debian packages the lab needs, with the command that shows each is there. */
const HOST_PACKAGES: { pkg: string; probe: string[]; backports?: boolean }[] = [
  { pkg: 'incus', probe: ['incus', '--version'], backports: true },
  { pkg: 'debootstrap', probe: ['debootstrap', '--version'] },
  { pkg: 'btrfs-progs', probe: ['mkfs.btrfs', '--version'] },
  { pkg: 'zstd', probe: ['zstd', '--version'] },
  { pkg: 'microsocks', probe: ['sh', '-c', 'command -v microsocks'] },
  { pkg: 'nix-bin', probe: ['nix', '--version'] },
  { pkg: 'age', probe: ['age', '--version'] },
  { pkg: 'git', probe: ['git', '--version'] },
  { pkg: 'openssl', probe: ['openssl', 'version'] },
  { pkg: 'python3-cryptography', probe: ['/usr/bin/python3', '-c', 'import cryptography, yaml'] },
  { pkg: 'python3-yaml', probe: ['/usr/bin/python3', '-c', 'import yaml'] },
];

async function missingPackages(): Promise<typeof HOST_PACKAGES> {
  const missing: typeof HOST_PACKAGES = [];
  for (const entry of HOST_PACKAGES) {
    const result = await exec(entry.probe[0]!, entry.probe.slice(1)).catch(() => undefined);
    if (result?.exitCode !== 0) missing.push(entry);
  }
  return missing;
}

/** The lab's Debian packages, installed if missing: the unit tests use nix, age and openssl for real, and nothing else of the lab. */
export async function ensureLabTools(): Promise<void> {
  const missing = await missingPackages();
  if (missing.length === 0) return;
  const names = missing.map((entry) => entry.pkg);
  if (process.getuid?.() !== 0) {
    throw new HarnessError(
      `the lab needs ${names.join(', ')} installed, and installing them with apt-get needs root: run \`npm run lab -- up\` as root once, or install them yourself`,
    );
  }
  await timed(`Installing ${names.join(', ')} from Debian`, async () => {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const sources = '/etc/apt/sources.list.d/bookworm-backports.list';
    if (missing.some((entry) => entry.backports)) {
      const already = await exec('sh', ['-c', 'grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/']);
      if (already.exitCode !== 0) await writeFile(sources, 'deb http://deb.debian.org/debian bookworm-backports main\n');
    }
    const update = await exec('apt-get', ['update', '-q'], { env, timeoutMs: 600_000 });
    if (update.exitCode !== 0) throw new HarnessError(`apt-get update failed:\n${update.stderr.slice(-2000)}`);
    const plain = missing.filter((entry) => !entry.backports).map((entry) => entry.pkg);
    const backports = missing.filter((entry) => entry.backports).map((entry) => entry.pkg);
    for (const [args, list] of [
      [[], plain],
      [['-t', 'bookworm-backports'], backports],
    ] as const) {
      if (list.length === 0) continue;
      const result = await exec('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...args, ...list], { env, timeoutMs: 1_200_000 });
      if (result.exitCode !== 0) throw new HarnessError(`apt-get install ${list.join(' ')} failed:\n${result.stderr.slice(-2000)}`);
    }
  });
}

async function incusdAnswers(): Promise<boolean> {
  const result = await exec('incus', ['query', '/1.0'], { timeoutMs: 5000 }).catch(() => undefined);
  return result?.exitCode === 0;
}

/**
 * The inotify limits Incus's production set-up asks for, at least. Every container's systemd
 * takes inotify instances under the one host uid the lab's idmap gives them all, and the
 * kernel's default of 128 runs out with the lab's machines and a few throwaways: their .path
 * units and console-getty then fail, and a rebuild exits 4.
 */
const HOST_SYSCTLS: Record<string, number> = {
  'fs/inotify/max_user_instances': 1024,
  'fs/inotify/max_user_watches': 524_288,
};

async function ensureHostSysctls(state: LabState): Promise<void> {
  for (const [key, wanted] of Object.entries(HOST_SYSCTLS)) {
    const file = join('/proc/sys', key);
    const found = Number((await readFile(file, 'utf8')).trim());
    if (found >= wanted) continue;
    await writeFile(file, `${wanted}\n`);
    state.created.sysctls = { ...state.created.sysctls, [key]: state.created.sysctls?.[key] ?? found };
    log.info(`raised ${key.replaceAll('/', '.')} from ${found} to ${wanted} (lab down puts it back)`);
  }
}

async function restoreHostSysctls(state: LabState): Promise<void> {
  for (const [key, found] of Object.entries(state.created.sysctls ?? {})) {
    await writeFile(join('/proc/sys', key), `${found}\n`).catch((error: Error) =>
      log.warn(`could not put ${key.replaceAll('/', '.')} back to ${found}: ${error.message}`),
    );
  }
}

async function ensureIncusd(paths: LabPaths, state: LabState): Promise<void> {
  await ensureHostExecPathLink();
  await ensureHostSysctls(state);
  if (await incusdAnswers()) return;
  await timed('Starting incusd', async () => {
    await mkdir('/var/log/incus', { recursive: true });
    const logFile = '/var/log/incus/incusd.log';
    try {
      const pid = await startDaemon({
        name: 'incusd',
        command: '/usr/libexec/incus/incusd',
        args: ['--group', 'root', '--logfile', logFile],
        logsDir: paths.logsDir,
        ready: incusdAnswers,
        readyTimeoutMs: 60_000,
      });
      state.daemons.incusd = { pid, startedAt: new Date().toISOString() };
    } catch (error) {
      const tail = await readFile(logFile, 'utf8').then(
        (text) => text.split('\n').slice(-8).join('\n'),
        () => '(no log)',
      );
      throw new HarnessError(`incusd did not come up: ${(error as Error).message}\nlast lines of ${logFile}:\n${tail}`, { cause: error });
    }
  });
}

async function ensureStoragePool(state: LabState): Promise<void> {
  const existing = await incusQuery<{ driver: string }>(`/1.0/storage-pools/${LAB_POOL}`);
  if (existing) {
    state.created.storageDriver ??= existing.driver === 'btrfs' ? 'btrfs' : 'dir';
    return;
  }
  const btrfs = await incus(['storage', 'create', LAB_POOL, 'btrfs', `size=${LAB_POOL_SIZE}`]);
  if (btrfs.exitCode === 0) {
    state.created.storageDriver = 'btrfs';
    log.info(`created storage pool ${LAB_POOL} (btrfs on a ${LAB_POOL_SIZE} loop file)`);
  } else {
    // Still a working lab, only slower to create throwaways: say so, with Incus's reason.
    log.warn(
      `storage pool ${LAB_POOL}: btrfs could not be created (${btrfs.stderr.trim() || `incus exited ${btrfs.exitCode}`}); using a dir pool, where every throwaway unpacks the whole image`,
    );
    await incusOk(['storage', 'create', LAB_POOL, 'dir']);
    state.created.storageDriver = 'dir';
  }
  if (state.created.storagePool && state.created.storagePool !== LAB_POOL) {
    state.created.formerPools = [...new Set([...(state.created.formerPools ?? []), state.created.storagePool])];
  }
  state.created.storagePool = LAB_POOL;
}

/** A project of the lab's shape: its own images and profiles, root disks on the lab's pool. */
async function ensureProject(state: LabState, project: string, recordCreation: () => Promise<void>): Promise<boolean> {
  let created = false;
  if (!(await incusQuery(`/1.0/projects/${project}`))) {
    // Recorded first: a `lab up` killed right after the create still leaves `lab down` knowing it.
    await recordCreation();
    await incusOk(['project', 'create', project, '-c', 'features.images=true', '-c', 'features.profiles=true']);
    created = true;
    log.info(`created project ${project}`);
  }
  const ours = created || (project === LAB_PROJECT ? Boolean(state.created.project) : (state.created.workerProjects ?? []).includes(project));
  const profile = await incusQuery<{ devices: Record<string, { pool?: string }> }>(`/1.0/profiles/default?project=${project}`);
  if (ours && profile) {
    const root = profile.devices.root;
    if (!root) await incusOk(['profile', 'device', 'add', 'default', 'root', 'disk', 'path=/', `pool=${LAB_POOL}`, '--project', project]);
    else if (root.pool !== LAB_POOL) await incusOk(['profile', 'device', 'set', 'default', 'root', `pool=${LAB_POOL}`, '--project', project]);
  }
  return created;
}

async function ensureStorageAndProject(paths: LabPaths, state: LabState): Promise<void> {
  await ensureStoragePool(state);
  await ensureProject(state, LAB_PROJECT, async () => {
    state.created.project = LAB_PROJECT;
    await writeState(paths, state);
  });
}

async function ensureApi(paths: LabPaths, state: LabState): Promise<void> {
  const address = (await incusOk(['config', 'get', 'core.https_address'])).trim();
  if (address === '') {
    await incusOk(['config', 'set', 'core.https_address', LAB_INCUS_ADDRESS]);
    state.created.httpsAddress = LAB_INCUS_ADDRESS;
  } else if (address !== LAB_INCUS_ADDRESS) {
    throw new HarnessError(`core.https_address of the local incusd is ${address}; the lab needs ${LAB_INCUS_ADDRESS} (unset it, or stop using the lab)`);
  }
  await mkdir(`${paths.dir}/incus`, { recursive: true, mode: 0o700 });
  if (
    !(await access(paths.clientCert).then(
      () => true,
      () => false,
    ))
  ) {
    await createClientCert(paths.clientCert, paths.clientKey, 'cc-ci-acceptance-lab');
  }
  const fingerprint = new X509Certificate(await readFile(paths.clientCert)).fingerprint256.replaceAll(':', '').toLowerCase();
  const trusted = JSON.parse(await incusOk(['config', 'trust', 'list', '-f', 'json'])) as { fingerprint: string }[];
  if (!trusted.some((entry) => entry.fingerprint === fingerprint)) {
    await incusOk(['config', 'trust', 'add-certificate', paths.clientCert, '--name', 'cc-ci-acceptance-lab']);
  }
  state.created.trustFingerprint = fingerprint;
  await replaceFile(paths.serverCert, await readFile('/var/lib/incus/server.crt'), 0o644);
  await waitFor(`the Incus API on ${LAB_INCUS_ADDRESS}`, async () => portAnswers('127.0.0.1', 8443), { timeoutMs: 15_000 });
}

async function ensureSocks(paths: LabPaths, state: LabState): Promise<void> {
  const [host, port] = LAB_SOCKS.split(':') as [string, string];
  if (await portAnswers(host, Number(port))) return;
  await timed(`Starting the SOCKS5 proxy on ${LAB_SOCKS}`, async () => {
    const pid = await startDaemon({
      name: 'socks',
      command: 'microsocks',
      args: ['-i', host, '-p', port],
      logsDir: paths.logsDir,
      ready: () => portAnswers(host, Number(port)),
      readyTimeoutMs: 10_000,
    });
    state.daemons.socks = { pid, startedAt: new Date().toISOString() };
  });
}

async function ensureImage(paths: LabPaths, state: LabState): Promise<void> {
  const hash = await recipeHash();
  const fingerprint = await currentImage(LAB_PROJECT, LAB_IMAGE_ALIAS, hash);
  if (fingerprint) {
    state.created.imageFingerprint ??= fingerprint;
    state.imageRecipe = hash;
    return;
  }
  const tarballs = await buildImageTarballs(paths.imageCache, hash);
  if (tarballs.cached) log.info(`image recipe ${hash} is cached in ${paths.imageCache}`);
  state.created.imageFingerprint = await timed(`Importing image ${LAB_IMAGE_ALIAS} (recipe ${hash})`, () =>
    importImage(LAB_PROJECT, LAB_IMAGE_ALIAS, tarballs),
  );
  state.imageRecipe = hash;
}

async function ensureRepos(paths: LabPaths, state: LabState, layout: 'submodule' | 'input'): Promise<void> {
  const present = await access(`${paths.gitDir}/${BASE_REPO}/HEAD`).then(
    () => true,
    () => false,
  );
  // A change to the templates (e.g. after a pull) regenerates the repos, as the recipe does the image.
  const templates = await treeHash(REPO_TEMPLATES);
  // The forge's tokens and cert are generated with the repos (a lab from before they were needs new ones).
  const forgeReady = await access(join(paths.forgeDir, 'tokens')).then(
    () => true,
    () => false,
  );
  if (state.repos && present && forgeReady && state.repos.layout === layout && state.repos.templates === templates) return;
  const settings = labSettings(paths.dir);
  await timed('Generating the base and instance repos with fresh keys', async () => {
    const generated = await generateRepos(paths, settings.domain, `http://127.0.0.1:${settings.gitPort}`, layout);
    state.repos = { generatedAt: new Date().toISOString(), layout, baseCommit: generated.baseCommit, instanceCommit: generated.instanceCommit, templates };
  });
}

async function ensureGitServer(paths: LabPaths, state: LabState): Promise<void> {
  await mkdir(paths.gitDir, { recursive: true });
  if (await portAnswers('127.0.0.1', LAB_GIT_PORT)) return;
  // Serves the bare repos as files; git and Nix fetch them over "dumb" HTTP.
  const pid = await startDaemon({
    name: 'git',
    command: '/usr/bin/python3',
    args: ['-m', 'http.server', String(LAB_GIT_PORT), '--bind', '127.0.0.1', '--directory', paths.gitDir],
    logsDir: paths.logsDir,
    ready: () => portAnswers('127.0.0.1', LAB_GIT_PORT),
    readyTimeoutMs: 10_000,
  });
  state.daemons.git = { pid, startedAt: new Date().toISOString() };
}

function envFile(settings: LabSettings): string {
  const rows: [string, string][] = [
    ['ACCEPT_TARGET', 'lab'],
    ['ACCEPT_INCUS_URL', settings.incusUrl],
    ['ACCEPT_INCUS_CLIENT_CERT', settings.clientCertFile],
    ['ACCEPT_INCUS_CLIENT_KEY', settings.clientKeyFile],
    ['ACCEPT_INCUS_SERVER_CERT', settings.serverCertFile],
    ['ACCEPT_INCUS_PROJECT', settings.project],
    ['ACCEPT_INCUS_IMAGE', settings.image],
    ['ACCEPT_SOCKS', settings.socks],
    ['ACCEPT_AGE_KEY_FILE', settings.ageKeyFile],
    ['ACCEPT_BASE_REPO', settings.baseRepo],
    ['ACCEPT_INSTANCE_REPO', settings.instanceRepo],
    ['ACCEPT_DOMAIN', settings.domain],
    ['ACCEPT_TLS_CA_FILE', settings.tlsCaFile],
  ];
  return `# Written by \`accept lab up\`: the lab's settings, for reference (the lab target applies them itself).\n${rows.map(([k, v]) => `${k}=${v}`).join('\n')}\n`;
}

function requireRoot(action: string): void {
  if (process.getuid?.() !== 0) {
    throw new HarnessError(
      `${action} needs root: the lab installs Debian packages, runs incusd and administers it over its root-only socket (running as uid ${process.getuid?.()})`,
    );
  }
}

/** Changes to the lab's state, one process at a time: concurrent runs each bring the lab up. */
function withStateLock<T>(paths: LabPaths, what: string, work: () => Promise<T>): Promise<T> {
  return withPidLock(paths.stateLock, { what: `another process's ${what} of the lab` }, work);
}

export async function labUp(dir: string, layout: 'submodule' | 'input' = 'submodule'): Promise<LabSettings> {
  requireRoot('lab up');
  const paths = labPaths(dir);
  await mkdir(paths.dir, { recursive: true, mode: 0o700 });
  return withStateLock(paths, 'bring-up', () => labUpLocked(paths, dir, layout));
}

async function labUpLocked(paths: LabPaths, dir: string, layout: 'submodule' | 'input'): Promise<LabSettings> {
  const state = (await readState(paths)) ?? emptyState();
  // Record progress after every step, so that `down` can undo a half-finished `up`.
  const step = async (work: () => Promise<void>) => {
    try {
      await work();
    } finally {
      await writeState(paths, state);
    }
  };
  await step(() => ensureLabTools());
  await step(() => ensureIncusd(paths, state));
  await step(() => ensureStorageAndProject(paths, state));
  await step(() => ensureApi(paths, state));
  await step(() => ensureSocks(paths, state));
  await step(() => ensureImage(paths, state));
  // The git server runs before the repos exist: the input layout locks its flake through it.
  await step(() => ensureGitServer(paths, state));
  await step(() => ensureRepos(paths, state, layout));
  const settings = labSettings(dir);
  await replaceFile(paths.env, envFile(settings), 0o644);
  state.ready = true;
  await writeState(paths, state);
  return settings;
}

/** The Incus projects of `count` concurrent lab workers: the lab's own project first. */
export function workerProjects(count: number): string[] {
  return Array.from({ length: count }, (_, index) => (index === 0 ? LAB_PROJECT : `${LAB_PROJECT}-${index + 1}`));
}

/**
 * Makes sure `count` lab workers each have a project: its own memory guideline (C6 sums one
 * project) and its own copy of the image alias (the same image, no second unpack). Idempotent.
 */
export async function ensureWorkerProjects(dir: string, count: number): Promise<string[]> {
  const paths = labPaths(dir);
  return withStateLock(paths, 'worker set-up', () => ensureWorkerProjectsLocked(paths, dir, count));
}

async function ensureWorkerProjectsLocked(paths: LabPaths, dir: string, count: number): Promise<string[]> {
  const state = await readState(paths);
  if (!state?.ready) throw new HarnessError(`no lab is up in ${dir}: run \`npm run lab -- up\` first`);
  const hash = await recipeHash();
  const fingerprint = await currentImage(LAB_PROJECT, LAB_IMAGE_ALIAS, hash);
  if (!fingerprint) throw new HarnessError(`the lab's project ${LAB_PROJECT} has no ${LAB_IMAGE_ALIAS} image for recipe ${hash}: run \`npm run lab -- up\``);
  const projects = workerProjects(count);
  for (const project of projects.slice(1)) {
    try {
      await ensureProject(state, project, async () => {
        state.created.workerProjects = [...new Set([...(state.created.workerProjects ?? []), project])];
        await writeState(paths, state);
      });
      if ((await currentImage(project, LAB_IMAGE_ALIAS, hash)) !== fingerprint) {
        const stale = await incusQuery<{ target: string }>(`/1.0/images/aliases/${LAB_IMAGE_ALIAS}?project=${project}`);
        if (stale) await incusOk(['image', 'delete', stale.target, '--project', project]);
        await incusOk(['image', 'copy', fingerprint, 'local:', '--project', LAB_PROJECT, '--target-project', project, '--alias', LAB_IMAGE_ALIAS]);
      }
    } finally {
      await writeState(paths, state);
    }
  }
  return projects;
}

/** Deletes a project the lab made, with everything in it. */
async function deleteLabProject(project: string): Promise<void> {
  if (!(await incusQuery(`/1.0/projects/${project}`))) return;
  const instances = (await incusQuery<{ name: string }[]>(`/1.0/instances?recursion=1&project=${project}`)) ?? [];
  for (const instance of instances) {
    await timed(`Deleting instance ${instance.name} (${project})`, () =>
      incusOk(['delete', '--force', instance.name, '--project', project]).then(() => undefined),
    );
  }
  const images = (await incusQuery<{ fingerprint: string }[]>(`/1.0/images?recursion=1&project=${project}`)) ?? [];
  for (const image of images) await incus(['image', 'delete', image.fingerprint, '--project', project]);
  await incus(['profile', 'device', 'remove', 'default', 'root', '--project', project]);
  await incusOk(['project', 'delete', project]);
  log.info(`deleted project ${project}`);
}

export async function labDown(dir: string, options: { purge?: boolean } = {}): Promise<void> {
  requireRoot('lab down');
  const paths = labPaths(dir);
  if (!(await readState(paths))) {
    log.info(`nothing to do: no lab state in ${paths.dir}`);
    return;
  }
  await withStateLock(paths, 'take-down', () => labDownLocked(paths, options));
}

async function labDownLocked(paths: LabPaths, options: { purge?: boolean }): Promise<void> {
  const state = await readState(paths);
  if (!state) {
    log.info(`nothing to do: no lab state in ${paths.dir}`);
    return;
  }
  if (await incusdAnswers()) {
    const project = state.created.project ?? LAB_PROJECT;
    if (await incusQuery(`/1.0/projects/${project}`)) {
      const instances = (await incusQuery<{ name: string; config: Record<string, string> }[]>(`/1.0/instances?recursion=1&project=${project}`)) ?? [];
      for (const instance of instances) {
        // Only what this harness made: in a project we did not create, leave others alone.
        if (!state.created.project && !instance.config['user.accept.run-id']) continue;
        await timed(`Deleting instance ${instance.name}`, () => incusOk(['delete', '--force', instance.name, '--project', project]).then(() => undefined));
      }
      if (state.created.imageFingerprint) {
        await incus(['image', 'delete', state.created.imageFingerprint, '--project', project]);
      }
      if (state.created.project) {
        await incus(['profile', 'device', 'remove', 'default', 'root', '--project', project]);
        await incusOk(['project', 'delete', project]);
        log.info(`deleted project ${project}`);
      }
    }
    for (const project of state.created.workerProjects ?? []) await deleteLabProject(project);
    if (state.created.trustFingerprint) await incus(['config', 'trust', 'remove', state.created.trustFingerprint]);
    if (state.created.httpsAddress) await incus(['config', 'unset', 'core.https_address']);
    for (const pool of [state.created.storagePool, ...(state.created.formerPools ?? [])]) {
      if (!pool) continue;
      const result = await incus(['storage', 'delete', pool]);
      if (result.exitCode !== 0) log.warn(`storage pool ${pool} kept: ${result.stderr.trim()}`);
    }
  }
  for (const name of ['git', 'socks', 'incusd'] as const) {
    const daemon = state.daemons[name];
    if (daemon && isAlive(daemon.pid)) await timed(`Stopping ${name}`, () => stopDaemonAndWait(daemon.pid, name));
  }
  await removeHostExecPathLink();
  await restoreHostSysctls(state);
  await rm(paths.dir, { recursive: true, force: true });
  if (options.purge) await rm(paths.imageCache, { recursive: true, force: true });
  log.info(options.purge ? 'lab removed, image cache purged' : `lab removed; the image cache in ${paths.imageCache} is kept (--purge removes it)`);
}

export interface StatusLine {
  what: string;
  ok: boolean;
  detail: string;
}

export async function labStatus(dir: string): Promise<StatusLine[]> {
  const paths = labPaths(dir);
  const state = await readState(paths);
  const lines: StatusLine[] = [];
  const add = (what: string, ok: boolean, detail: string) => lines.push({ what, ok, detail });
  const missing = await missingPackages();
  add('packages', missing.length === 0, missing.length ? `missing: ${missing.map((m) => m.pkg).join(', ')}` : 'installed');
  const incusd = await incusdAnswers();
  add(
    'incusd',
    incusd,
    incusd
      ? state?.daemons.incusd && isAlive(state.daemons.incusd.pid)
        ? `running (pid ${state.daemons.incusd.pid}, started by the lab)`
        : 'running'
      : 'not answering',
  );
  if (incusd) {
    add('project', Boolean(await incusQuery(`/1.0/projects/${LAB_PROJECT}`)), LAB_PROJECT);
    const pool = await incusQuery<{ driver: string }>(`/1.0/storage-pools/${LAB_POOL}`).catch(() => undefined);
    add('storage', Boolean(pool), pool ? `${LAB_POOL} (${pool.driver})` : `no pool ${LAB_POOL}`);
    if (state?.created.workerProjects?.length) add('workers', true, `projects ${[LAB_PROJECT, ...state.created.workerProjects].join(', ')}`);
    const hash = await recipeHash();
    const image = await currentImage(LAB_PROJECT, LAB_IMAGE_ALIAS, hash).catch(() => undefined);
    add('image', Boolean(image), image ? `${LAB_IMAGE_ALIAS} ${image.slice(0, 12)} (recipe ${hash})` : `no image for recipe ${hash}`);
    const instances = (await incusQuery<{ name: string; status: string }[]>(`/1.0/instances?recursion=1&project=${LAB_PROJECT}`).catch(() => [])) ?? [];
    add('instances', true, instances.length ? instances.map((i) => `${i.name} (${i.status})`).join(', ') : 'none');
  }
  add('incus API', await portAnswers('127.0.0.1', 8443), `https://${LAB_INCUS_ADDRESS}`);
  const [socksHost, socksPort] = LAB_SOCKS.split(':') as [string, string];
  add('SOCKS5 proxy', await portAnswers(socksHost, Number(socksPort)), LAB_SOCKS);
  add('git server', await portAnswers('127.0.0.1', LAB_GIT_PORT), `http://127.0.0.1:${LAB_GIT_PORT}`);
  add(
    'repos',
    Boolean(state?.repos),
    state?.repos ? `base ${state.repos.baseCommit.slice(0, 8)}, instance ${state.repos.instanceCommit.slice(0, 8)} (${state.repos.layout})` : 'not generated',
  );
  // A recorded bring-up says nothing about daemons that died since (a reboot, a kill).
  const down = lines.filter((line) => !line.ok).map((line) => line.what);
  const ready = Boolean(state?.ready) && down.length === 0;
  add('ready', ready, ready ? `state in ${paths.state}` : `${state?.ready ? `${down.join(', ')} not up` : 'never brought up'}: run \`npm run lab -- up\``);
  return lines;
}

/**
 * The lab's generation: it changes whenever `lab up` generates new repos and keys (a first
 * bring-up, a layout switch). A throwaway built from another generation cannot pass against
 * this one, so warm runs refuse it. Undefined when no lab is up in `dir`.
 */
export async function labGeneration(dir: string): Promise<string | undefined> {
  const repos = (await readState(labPaths(dir)))?.repos;
  return repos ? `${repos.layout} repos generated ${repos.generatedAt} (base ${repos.baseCommit.slice(0, 12)})` : undefined;
}

/** Whether `lab up` has completed in `dir`. */
export async function labIsUp(dir: string): Promise<boolean> {
  return Boolean((await readState(labPaths(dir)))?.ready);
}
