/** Operator-side git: clones of the base and instance repos, read as a person would. */
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, rename, rm, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { loadConfig } from '../common/config.ts';
import { displayUrl, gitHeaderEnv, mergeCredentials, readCredentialsFile, splitUrlCredentials, type GitCredential } from '../common/credentials.ts';
import { HarnessError } from '../common/errors.ts';
import { exec } from '../common/exec.ts';
import { redact } from '../common/redact.ts';
import { scratchDir } from '../common/scratch.ts';

/**
 * The environment every operator-side git (and Nix, which runs git) gets: the credentials of
 * ACCEPT_GIT_CREDENTIALS_FILE and of the repo URLs' userinfo, as headers, and no prompt. Read on
 * each call from the settings, so no call site can forget it.
 */
export function operatorGitEnv(env: Record<string, string | undefined> = process.env, extra: GitCredential[] = []): Record<string, string> {
  const config = loadConfig(env);
  const fromFile = config.gitCredentialsFile ? readCredentialsFile(config.gitCredentialsFile, 'ACCEPT_GIT_CREDENTIALS_FILE') : [];
  return { GIT_TERMINAL_PROMPT: '0', ...gitHeaderEnv(mergeCredentials(fromFile, config.urlCredentials, extra)) };
}

export interface Clone extends AsyncDisposable {
  dir: string;
  url: string;
  commit: string;
  remove(): Promise<void>;
}

async function git(args: string[], cwd?: string, extra: GitCredential[] = []): Promise<string> {
  const result = await exec('git', args, { cwd, env: operatorGitEnv(process.env, extra), timeoutMs: 300_000 });
  if (result.exitCode !== 0) throw new HarnessError(redact(`git ${args.map(displayUrl).join(' ')} failed (exit ${result.exitCode}): ${result.stderr.trim()}`));
  return result.stdout.trim();
}

/** The commit the repo's HEAD points at, asked of the remote without a clone. */
/**
 * The full id of `id` (a commit id, abbreviated or not) when it is a commit in the clone's
 * history up to its HEAD; undefined when it is not.
 */
export async function commitInHistory(clone: Pick<Clone, 'dir'>, id: string): Promise<string | undefined> {
  if (!/^[0-9a-f]{4,40}$/.test(id)) return undefined;
  const resolved = await exec('git', ['rev-parse', '--verify', '--quiet', `${id}^{commit}`], { cwd: clone.dir, env: operatorGitEnv(), timeoutMs: 30_000 });
  if (resolved.exitCode !== 0) return undefined;
  const full = resolved.stdout.trim();
  const ancestor = await exec('git', ['merge-base', '--is-ancestor', full, 'HEAD'], { cwd: clone.dir, env: operatorGitEnv(), timeoutMs: 30_000 });
  return ancestor.exitCode === 0 ? full : undefined;
}

export async function remoteHead(url: string, options: { setting?: string } = {}): Promise<string> {
  const split = splitUrlCredentials(options.setting ?? 'the repo URL', url);
  let out: string;
  try {
    out = await git(['ls-remote', split.url, 'HEAD'], undefined, split.credential ? [split.credential] : []);
  } catch (error) {
    throw new HarnessError(`could not read HEAD of ${displayUrl(url)}${options.setting ? ` (${options.setting})` : ''}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const commit = /^([0-9a-f]{40,64})\s+HEAD$/m.exec(out)?.[1];
  if (!commit) throw new HarnessError(`${displayUrl(url)}${options.setting ? ` (${options.setting})` : ''} has no HEAD to read`);
  return commit;
}

/** A fresh clone in a temporary directory; `remove()` (or `await using`) deletes it. `url` carries no credentials. */
export async function cloneRepo(url: string, options: { recursive?: boolean; setting?: string } = {}): Promise<Clone> {
  // A URL that still carries userinfo is split here too: git never sees it in argv.
  const split = splitUrlCredentials(options.setting ?? 'the clone URL', url);
  const dir = await scratchDir('accept-clone');
  try {
    await git(['clone', '-q', ...(options.recursive ? ['--recursive'] : []), split.url, dir], undefined, split.credential ? [split.credential] : []);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw new HarnessError(`could not clone ${displayUrl(url)}${options.setting ? ` (${options.setting})` : ''}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const commit = await git(['rev-parse', 'HEAD'], dir);
  let removed = false;
  const remove = async () => {
    if (removed) return;
    removed = true;
    await rm(dir, { recursive: true, force: true });
  };
  return { dir, url: displayUrl(url), commit, remove, [Symbol.asyncDispose]: remove };
}

/** The refs a clone of the remote would hold, as `git ls-remote` lists them (HEAD, heads, tags). */
export async function remoteRefs(url: string, options: { setting?: string } = {}): Promise<string> {
  const split = splitUrlCredentials(options.setting ?? 'the repo URL', url);
  try {
    return await git(['ls-remote', split.url], undefined, split.credential ? [split.credential] : []);
  } catch (error) {
    throw new HarnessError(`could not list the refs of ${displayUrl(url)}${options.setting ? ` (${options.setting})` : ''}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/** What a fresh clone of a remote listing `refs` holds, as `git for-each-ref` shows it in that clone. */
export function expectedCloneRefs(refs: string): { head?: string; refs: string[] } {
  let head: string | undefined;
  const expected: string[] = [];
  for (const line of refs.split('\n')) {
    const [commit, ref] = line.trim().split(/\s+/);
    if (!commit || !ref || ref.endsWith('^{}')) continue;
    if (ref === 'HEAD') head = commit;
    else if (ref.startsWith('refs/heads/')) expected.push(`${commit} refs/remotes/origin/${ref.slice('refs/heads/'.length)}`);
    else if (ref.startsWith('refs/tags/')) expected.push(`${commit} ${ref}`);
  }
  return { head, refs: expected.sort() };
}

/** Where runs share clones (sharedClone): beside the kept record, in ACCEPT_STATE_DIR. */
export function cloneCacheDir(stateDir: string): string {
  return join(stateDir, 'clones');
}

/** How many clones of one repo the cache keeps (the newest), and how long an older one may stay for a reader. */
const CACHED_CLONES_PER_REPO = 3;
const CACHED_CLONE_GRACE_MS = 3_600_000;

/**
 * A clone of `url` as its refs stand now, shared by every run that finds the same refs: the
 * remote's refs (one `git ls-remote`) key it, so a run against an unchanged repo clones nothing.
 * It is used only if its work tree is clean and its HEAD and refs are the remote's, the same a
 * fresh clone would give; otherwise it is cloned afresh. Read-only: `remove()` keeps it.
 */
export async function sharedClone(url: string, options: { cacheDir: string; recursive?: boolean; setting?: string }): Promise<Clone> {
  const refs = await remoteRefs(url, options);
  const expected = expectedCloneRefs(refs);
  const repoKey = createHash('sha256').update(displayUrl(url)).digest('hex').slice(0, 16);
  const refsKey = createHash('sha256')
    .update(`${options.recursive ? 'recursive\n' : ''}${refs}`)
    .digest('hex')
    .slice(0, 16);
  const dir = join(options.cacheDir, `${repoKey}-${refsKey}`);
  const kept = (commit: string): Clone => ({ dir, url: displayUrl(url), commit, remove: async () => undefined, [Symbol.asyncDispose]: async () => undefined });
  const cached = await cloneState(dir);
  if (cached?.clean && cached.head === expected.head && sameRefs(cached.refs, expected.refs)) {
    await utimes(dir, new Date(), new Date()).catch(() => undefined);
    return kept(cached.head!);
  }
  await mkdir(options.cacheDir, { recursive: true });
  const fresh = await cloneRepo(url, options);
  const state = await cloneState(fresh.dir);
  // The remote moved between the listing and the clone: this clone is this run's alone.
  if (!state || state.head !== expected.head || !sameRefs(state.refs, expected.refs)) return fresh;
  await rm(dir, { recursive: true, force: true });
  try {
    await rename(fresh.dir, dir);
  } catch {
    // Another run put the same clone in place first: theirs is as good, this one goes.
    await fresh.remove();
  }
  await pruneClones(options.cacheDir, repoKey, dir);
  return kept(state.head!);
}

function sameRefs(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((ref, i) => ref === b[i]);
}

/** A clone's HEAD, its refs as a fresh clone has them, and whether its work tree is as checked out. */
async function cloneState(dir: string): Promise<{ head?: string; refs: string[]; clean: boolean } | undefined> {
  if (!(await stat(join(dir, '.git')).catch(() => undefined))) return undefined;
  try {
    const [head, refs, status] = await Promise.all([
      git(['rev-parse', 'HEAD'], dir),
      git(['for-each-ref', '--format=%(objectname) %(refname)', 'refs/remotes/origin', 'refs/tags'], dir),
      git(['status', '--porcelain', '--untracked-files=all', '--ignore-submodules=none'], dir),
    ]);
    const listed = refs
      .split('\n')
      .filter((line) => line && !line.endsWith(' refs/remotes/origin/HEAD'))
      .sort();
    return { head, refs: listed, clean: status === '' };
  } catch {
    return undefined;
  }
}

/** Keeps the newest clones of one repo, and any another run may still read. */
async function pruneClones(cacheDir: string, repoKey: string, keep: string): Promise<void> {
  const entries = (await readdir(cacheDir).catch(() => [] as string[])).filter(
    (name) => name.startsWith(`${repoKey}-`) && /^[0-9a-f]{16}-[0-9a-f]{16}$/.test(name),
  );
  const dated = await Promise.all(
    entries.map(async (name) => ({ path: join(cacheDir, name), mtimeMs: (await stat(join(cacheDir, name)).catch(() => undefined))?.mtimeMs ?? 0 })),
  );
  const now = Date.now();
  const old = dated
    .sort((a, b) => b.mtimeMs - a.mtimeMs)
    .slice(CACHED_CLONES_PER_REPO)
    .filter((entry) => entry.path !== keep && now - entry.mtimeMs > CACHED_CLONE_GRACE_MS);
  await Promise.all(old.map((entry) => rm(entry.path, { recursive: true, force: true })));
}

/** The commits a run faces: the base repo's, and the instance commit it pins (or the instance repo's HEAD), with how each was read. */
export interface RunCommits {
  base?: string;
  instance?: string;
  how: string;
}

/**
 * The commits of a clone of the base repo: its HEAD, and the instance commit that base pins
 * (the gitlink at the profile's submodule path, or flake.lock), else the instance repo's HEAD now.
 */
export async function commitsOf(base: Pick<Clone, 'dir' | 'commit'>, of: { repo: string; submodule: string }, when: string): Promise<RunCommits> {
  const instanceRepo = of.repo;
  const gitlink = await git(['ls-tree', 'HEAD', '--', of.submodule], base.dir);
  const pinned = /^160000 commit ([0-9a-f]{40})\t/m.exec(gitlink)?.[1];
  if (pinned) return { base: base.commit, instance: pinned, how: `base: HEAD ${when}; instance: the ${of.submodule}/ submodule commit that base pins` };
  const lock = await readFile(join(base.dir, 'flake.lock'), 'utf8').catch(() => undefined);
  const locked = lock ? (JSON.parse(lock) as { nodes?: { instance?: { locked?: { rev?: string } } } }).nodes?.instance?.locked?.rev : undefined;
  if (locked) return { base: base.commit, instance: locked, how: `base: HEAD ${when}; instance: the flake input rev that base locks` };
  const instance = await remoteHead(instanceRepo, { setting: 'ACCEPT_INSTANCE_REPO' }).catch(() => undefined);
  return { base: base.commit, instance, how: `base and instance: HEAD of each repo ${when} (base pins no instance commit)` };
}
