/** Operator-side git: clones of the base and instance repos, read as a person would. */
import { rm } from 'node:fs/promises';
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
export async function remoteHead(url: string, options: { setting?: string } = {}): Promise<string> {
  const split = splitUrlCredentials(options.setting ?? 'the repo URL', url);
  let out: string;
  try {
    out = await git(['ls-remote', split.url, 'HEAD'], undefined, split.credential ? [split.credential] : []);
  } catch (error) {
    throw new HarnessError(`could not read HEAD of ${displayUrl(url)}${options.setting ? ` (${options.setting})` : ''}: ${(error as Error).message}`, { cause: error });
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
    throw new HarnessError(`could not clone ${displayUrl(url)}${options.setting ? ` (${options.setting})` : ''}: ${(error as Error).message}`, { cause: error });
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
