/**
 * What the lab created, recorded as it goes, so that `lab down` removes exactly that and
 * nothing else (a pool, project or daemon that was already there is left alone).
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface LabState {
  version: 1;
  /** Set once every step of `lab up` has finished. */
  ready: boolean;
  created: {
    /** The pool the lab's projects put root disks on, and what it is (btrfs, or dir where btrfs cannot be had). */
    storagePool?: string;
    storageDriver?: 'btrfs' | 'dir';
    /** Pools an older lab created and no profile uses any more: `lab down` removes them too. */
    formerPools?: string[];
    project?: string;
    /** Extra projects for concurrent selftest workers, each with its own copy of the image alias. */
    workerProjects?: string[];
    imageFingerprint?: string;
    trustFingerprint?: string;
    httpsAddress?: string;
    /** Host sysctls the lab raised, with the values it found: `lab down` puts them back. */
    sysctls?: Record<string, number>;
  };
  daemons: Partial<Record<DaemonName, { pid: number; startedAt: string }>>;
  /** Recipe hash of the image under the alias. */
  imageRecipe?: string;
  repos?: { generatedAt: string; layout: 'submodule' | 'input'; baseCommit: string; instanceCommit: string; templates?: string };
}

export type DaemonName = 'incusd' | 'socks' | 'git';

export const LAB_PROJECT = 'terraform-ci';
/** The lab's stand-in for the running cc-ci, in each project a run uses (b1's name). */
export const LAB_PRODUCTION = 'cc-nix-test';
/** The lab's idle stand-in for the neighbour that shares the project on b1. */
export const LAB_NEIGHBOUR = 'lichen-staging';
/**
 * btrfs on a loop file: an instance is a snapshot of the unpacked image (well under a second),
 * where a dir pool unpacks the whole image for every throwaway (about 10 s here).
 */
export const LAB_POOL = 'accept';
export const LAB_POOL_SIZE = '40GiB';
export const LAB_IMAGE_ALIAS = 'accept-blank';
export const LAB_INCUS_ADDRESS = '127.0.0.1:8443';
export const LAB_SOCKS = '127.0.0.1:1055';
/** The lab's git server: plain ("dumb") HTTP, which both git and Nix's git fetcher speak. */
export const LAB_GIT_PORT = 8418;
export const LAB_DOMAIN = 'ci.lab.test';

export interface LabPaths {
  dir: string;
  state: string;
  /** Held by whoever reads and rewrites the state (lab up, down, the worker projects). */
  stateLock: string;
  env: string;
  clientCert: string;
  clientKey: string;
  serverCert: string;
  keysDir: string;
  bootstrapKey: string;
  masterKey: string;
  caDir: string;
  /** The stand-in forge's own files: its users' tokens, its loopback cert, one directory per run's forge. */
  forgeDir: string;
  rootCa: string;
  gitDir: string;
  workDir: string;
  logsDir: string;
  imageCache: string;
}

export function labPaths(dir: string): LabPaths {
  return {
    dir,
    state: join(dir, 'state.json'),
    stateLock: join(dir, 'state.lock'),
    env: join(dir, 'lab.env'),
    clientCert: join(dir, 'incus', 'client.crt'),
    clientKey: join(dir, 'incus', 'client.key'),
    serverCert: join(dir, 'incus', 'server.crt'),
    keysDir: join(dir, 'keys'),
    bootstrapKey: join(dir, 'keys', 'bootstrap.age'),
    masterKey: join(dir, 'keys', 'master-recovery.age'),
    caDir: join(dir, 'ca'),
    forgeDir: join(dir, 'forge'),
    rootCa: join(dir, 'ca', 'root.pem'),
    gitDir: join(dir, 'git'),
    workDir: join(dir, 'work'),
    logsDir: join(dir, 'logs'),
    // Kept across `lab down` so that the next `up` need not debootstrap again.
    imageCache: '/var/cache/cc-ci-acceptance/images',
  };
}

export function emptyState(): LabState {
  return { version: 1, ready: false, created: {}, daemons: {} };
}

export async function readState(paths: LabPaths): Promise<LabState | undefined> {
  try {
    return JSON.parse(await readFile(paths.state, 'utf8')) as LabState;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * Puts `content` at `path` by a rename, and only if it differs: runs read the lab's files while
 * other runs bring the lab up, and an in-place rewrite showed one of them an empty server cert.
 */
export async function replaceFile(path: string, content: string | Buffer, mode = 0o600): Promise<void> {
  const current = await readFile(path).catch(() => undefined);
  if (current?.equals(Buffer.from(content))) return;
  // A name of its own: a rename must never find its file taken by another writer's rename.
  const temporary = `${path}.${process.pid}.${Math.random().toString(36).slice(2, 10)}.tmp`;
  await writeFile(temporary, content, { mode });
  await rename(temporary, path);
}

export async function writeState(paths: LabPaths, state: LabState): Promise<void> {
  await mkdir(paths.dir, { recursive: true, mode: 0o700 });
  await replaceFile(paths.state, `${JSON.stringify(state, null, 2)}\n`, 0o600);
}
