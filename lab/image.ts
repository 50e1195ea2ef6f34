/**
 * The lab's "blank VM": a debootstrapped Debian container image. Built once per recipe hash,
 * cached as tarballs outside the lab dir, and imported under one alias per project.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { cp, lstat, mkdir, readFile, readdir, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HarnessError } from '../helpers/common/errors.ts';
import { exec, succeed } from '../helpers/common/exec.ts';
import { timed } from '../helpers/common/log.ts';
import { incusOk, incusQuery } from './incus-cli.ts';

const IMAGE_DIR = join(dirname(fileURLToPath(import.meta.url)), 'image');

/** A directory of symlinks that stands for a NixOS VM's exec PATH (see recipe.json). */
export interface ExecPathRecipe {
  dir: string;
  /** Name in `dir` → the program it points at. */
  links: Record<string, string>;
}

interface Recipe {
  suite: string;
  mirror: string;
  variant: string;
  packages: string[];
  enable: string[];
  /** Units masked in the image: container artefacts a NixOS VM does not have. */
  mask?: string[];
  execPath: ExecPathRecipe;
  remove: string[];
}

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name))
    .sort();
}

/** Hash over every file (path, mode, content) under the given directories or files. */
export async function treeHash(roots: string[]): Promise<string> {
  const hash = createHash('sha256');
  for (const root of roots) {
    const files = (await stat(root)).isDirectory() ? await listFiles(root) : [root];
    for (const file of files) {
      const info = await stat(file);
      hash.update(`${relative(dirname(IMAGE_DIR), file)}\0${info.mode & 0o777}\0`);
      hash.update(await readFile(file));
    }
  }
  return hash.digest('hex').slice(0, 16);
}

/** Hash over everything that shapes the image: the recipe and every overlay file with its mode. */
export function recipeHash(): Promise<string> {
  return treeHash([IMAGE_DIR]);
}

async function readRecipe(): Promise<Recipe> {
  return JSON.parse(await readFile(join(IMAGE_DIR, 'recipe.json'), 'utf8')) as Recipe;
}

/** The image's emulated exec PATH directory; read synchronously, as lab settings are. */
export function imageExecPath(): ExecPathRecipe {
  return (JSON.parse(readFileSync(join(IMAGE_DIR, 'recipe.json'), 'utf8')) as Recipe).execPath;
}

/** Where the host's copy of the exec-PATH directory points: the host's own programs. */
export const HOST_EXEC_PATH_TARGET = '/usr/bin';

/**
 * The same path on the host, as a link to its /usr/bin. LXC 5 runs a container's hooks (lxcfs's
 * mount hook among them) on the host with the container's environment.PATH, and has no
 * lxc.environment.hooks to say otherwise; where that path names nothing, every start exits 127
 * and leaves Incus an instance it can neither stop nor delete. Inside the container the image's
 * own directory (only sh and env) stands at that path, so exec there is as restricted as before.
 * Made before incusd starts, so its boot-time autostarts work too. Idempotent.
 */
export async function ensureHostExecPathLink(dir: string = imageExecPath().dir): Promise<void> {
  const existing = await lstat(dir).catch(() => undefined);
  if (existing?.isSymbolicLink() && (await readlink(dir)) === HOST_EXEC_PATH_TARGET) return;
  if (existing) {
    throw new HarnessError(
      `${dir} exists on this host and is not the lab's link to ${HOST_EXEC_PATH_TARGET}: the lab's containers start with environment.PATH=${dir}, ` +
        `and LXC runs their hooks on the host with it; move it aside, and \`npm run lab -- up\` makes the link`,
    );
  }
  await mkdir(dirname(dir), { recursive: true });
  await symlink(HOST_EXEC_PATH_TARGET, dir);
}

/** Removes the host link ensureHostExecPathLink made, and nothing else. */
export async function removeHostExecPathLink(dir: string = imageExecPath().dir): Promise<void> {
  const existing = await lstat(dir).catch(() => undefined);
  if (existing?.isSymbolicLink() && (await readlink(dir)) === HOST_EXEC_PATH_TARGET) await rm(dir);
}

/**
 * Makes the exec-PATH directory in the rootfs: one symlink per program, each checked to point
 * at something the image has (a link to nothing would fake a missing shell).
 */
export async function makeExecPathDir(rootfs: string, execPath: ExecPathRecipe): Promise<void> {
  const dir = join(rootfs, execPath.dir);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  for (const [name, target] of Object.entries(execPath.links)) {
    const resolved = await stat(join(rootfs, target)).catch(() => undefined);
    if (!resolved?.isFile()) throw new HarnessError(`lab/image/recipe.json execPath: ${name} points at ${target}, which the image does not have`);
    const link = join(dir, name);
    if (await lstat(link).catch(() => undefined)) await rm(link);
    await symlink(target, link);
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** Builds the tarballs unless the cache already has them for this hash. */
export async function buildImageTarballs(cacheRoot: string, hash: string): Promise<{ meta: string; rootfs: string; cached: boolean }> {
  const dir = join(cacheRoot, hash);
  const meta = join(dir, 'metadata.tar.gz');
  const rootfsTar = join(dir, 'rootfs.tar.zst');
  if ((await exists(meta)) && (await exists(rootfsTar))) return { meta, rootfs: rootfsTar, cached: true };

  const recipe = await readRecipe();
  const work = join(cacheRoot, `${hash}.building`);
  const rootfs = join(work, 'rootfs');
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  await timed(`Debootstrapping ${recipe.suite} with ${recipe.packages.length} packages`, async () => {
    const result = await exec('debootstrap', [`--variant=${recipe.variant}`, `--include=${recipe.packages.join(',')}`, recipe.suite, rootfs, recipe.mirror], {
      timeoutMs: 1_200_000,
    });
    if (result.exitCode !== 0) {
      // dpkg's reasons are in the chroot's own log, not on stderr: a virtual package debootstrap did not resolve reads "Package X is not installed".
      const logFile = join(rootfs, 'debootstrap/debootstrap.log');
      const log = await readFile(logFile, 'utf8').catch(() => '');
      // Only the packages dpkg gave up on: earlier, the base system's own are briefly unmet too.
      const failed = new Set(
        (/Errors were encountered while processing:\n((?: \S+\n?)+)/.exec(log)?.[1] ?? '')
          .split('\n')
          .map((line) => line.trim())
          .filter(Boolean),
      );
      const unmet = [
        ...new Set(
          [...log.matchAll(/^ (\S+) depends on ([^;]+); however:\n\s+Package (\S+) is not installed\./gm)]
            .filter((m) => failed.has(m[1]!))
            .map((m) => `${m[1]} needs ${m[2]} (${m[3]} is not installed)`),
        ),
      ];
      throw new HarnessError(
        `debootstrap of the lab image failed (exit ${result.exitCode})` +
          (unmet.length
            ? `; unmet dependencies (list a provider of each virtual package in lab/image/recipe.json): ${unmet.join('; ')}`
            : `; is ${recipe.mirror} reachable?`) +
          `\n${result.stderr.slice(-2000)}\nits log: ${logFile}`,
      );
    }
  });
  await timed('Customising the image', async () => {
    await cp(join(IMAGE_DIR, 'overlay'), rootfs, { recursive: true });
    // Symlinks made here, not kept in the overlay: the recipe hash counts files only, and recipe.json holds these.
    await makeExecPathDir(rootfs, recipe.execPath);
    for (const unit of recipe.enable) await succeed('chroot', [rootfs, 'systemctl', 'enable', unit]);
    for (const unit of recipe.mask ?? []) await succeed('chroot', [rootfs, 'systemctl', 'mask', unit]);
    for (const pattern of recipe.remove) await succeed('sh', ['-c', `rm -f ${join(rootfs, pattern)}`]);
    await writeFile(join(rootfs, 'etc/machine-id'), '');
    await succeed('chroot', [rootfs, 'apt-get', 'clean']);
    await writeFile(
      join(work, 'metadata.yaml'),
      [
        'architecture: x86_64',
        `creation_date: ${Math.floor(Date.now() / 1000)}`,
        'properties:',
        `  description: cc-ci-acceptance blank VM (debian ${recipe.suite}, recipe ${hash})`,
        '  os: debian',
        `  release: ${recipe.suite}`,
        `  recipe: "${hash}"`,
        '',
      ].join('\n'),
    );
  });
  await timed('Packing the image', async () => {
    await succeed('tar', ['-C', work, '-czf', join(work, 'metadata.tar.gz'), 'metadata.yaml']);
    // zstd on both cores: gzip -1 took 18 s of one core for Chromium's rootfs, and Incus unpacks either.
    await succeed('bash', ['-c', `set -o pipefail; tar --numeric-owner -C "${rootfs}" -cf - . | zstd -1 -T0 -q > "${join(work, 'rootfs.tar.zst')}"`]);
  });
  await mkdir(dir, { recursive: true });
  await cp(join(work, 'metadata.tar.gz'), meta);
  await cp(join(work, 'rootfs.tar.zst'), rootfsTar);
  // The gzip tarball of an older harness, for the same recipe: nothing reads it any more.
  await rm(join(dir, 'rootfs.tar.gz'), { force: true });
  await rm(work, { recursive: true, force: true });
  return { meta, rootfs: rootfsTar, cached: false };
}

interface ImageAlias {
  target: string;
}
interface ImageInfo {
  fingerprint: string;
  properties: Record<string, string>;
}

/** The fingerprint under the alias if its recipe matches, else undefined. */
export async function currentImage(project: string, alias: string, hash: string): Promise<string | undefined> {
  const aliasInfo = await incusQuery<ImageAlias>(`/1.0/images/aliases/${alias}?project=${project}`);
  if (!aliasInfo) return undefined;
  const image = await incusQuery<ImageInfo>(`/1.0/images/${aliasInfo.target}?project=${project}`);
  return image?.properties.recipe === hash ? image.fingerprint : undefined;
}

export async function importImage(project: string, alias: string, tarballs: { meta: string; rootfs: string }): Promise<string> {
  const stale = await incusQuery<ImageAlias>(`/1.0/images/aliases/${alias}?project=${project}`);
  if (stale) await incusOk(['image', 'delete', stale.target, '--project', project]);
  const out = await incusOk(['image', 'import', tarballs.meta, tarballs.rootfs, '--alias', alias, '--project', project], {
    timeoutMs: 600_000,
  });
  const match = /fingerprint: ([0-9a-f]{64})/.exec(out);
  if (!match) throw new HarnessError(`could not read the imported image's fingerprint from: ${out}`);
  return match[1]!;
}
