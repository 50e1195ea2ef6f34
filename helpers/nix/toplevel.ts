/**
 * Operator-side builds of the cc-ci toplevel, from a flake or a fresh clone (D8's static half as
 * the reviewers ran it), and the systems a host runs (/run/current-system, /run/booted-system).
 */
import { access } from 'node:fs/promises';
import { HarnessError, errorMessage } from '../common/errors.ts';
import type { CommandResult } from '../common/exec.ts';
import type { HostChannel } from '../common/host.ts';
import { redact } from '../common/redact.ts';
import { cloneRepo, remoteHead } from '../git/index.ts';
import { nix, tailLines, type NixOptions } from './command.ts';

export const toplevelAttr = (configuration = 'cc-ci'): string => `nixosConfigurations.${configuration}.config.system.build.toplevel`;

/** A build that did not produce a path. Carries nix's stderr so a spec may judge it a FAIL. */
export class NixBuildError extends HarnessError {
  override readonly name = 'NixBuildError';
  readonly stderrTail: string;
  constructor(
    readonly installable: string,
    result: CommandResult,
  ) {
    const stderrTail = redact(tailLines(result.stderr));
    super(`nix build ${installable} failed (exit ${result.exitCode}):\n${stderrTail}`);
    this.stderrTail = stderrTail;
  }
}

export interface BuildToplevelOptions extends NixOptions {
  /** Flake reference without a fragment: a path, `git+file://…?submodules=1`, … */
  flakeRef: string;
  /** Attribute path inside the flake; defaults to the toplevel of `configuration`. */
  attr?: string;
  /** NixOS configuration name, used when `attr` is not given. Default `cc-ci`. */
  configuration?: string;
}

/** Builds on this machine (no result link) and returns the output store path. */
export async function buildToplevel(options: BuildToplevelOptions): Promise<string> {
  if (options.flakeRef.includes('#')) throw new HarnessError(`flakeRef must not carry a fragment; pass attr instead: ${options.flakeRef}`);
  const installable = `${options.flakeRef}#${options.attr ?? toplevelAttr(options.configuration)}`;
  // 2.8 has no --print-out-paths; --json is the one output format every version shares.
  const result = await nix(['build', '--no-link', '--json', installable], options);
  if (result.exitCode !== 0) throw new NixBuildError(installable, result);
  let built: unknown;
  try {
    built = JSON.parse(result.stdout);
  } catch (error) {
    throw new HarnessError(`nix build ${installable} printed no JSON: ${errorMessage(error)}; stdout: ${result.stdout.slice(0, 300)}`);
  }
  const first = Array.isArray(built) ? (built[0] as { outputs?: Record<string, unknown> } | undefined) : undefined;
  const outputs = first?.outputs ?? {};
  const out = outputs.out ?? Object.values(outputs)[0];
  if (typeof out !== 'string' || !out.startsWith('/')) {
    throw new HarnessError(`nix build ${installable} reported no output path: ${result.stdout.slice(0, 300)}`);
  }
  return out;
}

export interface CleanCloneBuild {
  path: string;
  /** HEAD of the clone that was built. */
  commit: string;
  /** The installable as built, for the records. */
  installable: string;
  /** When it was built (ISO). */
  builtAt: string;
  /** Set when this process had built this commit already, and its output is still in the store. */
  reused?: true;
}

/** This process's clean-clone builds, by repo, commit and options: a commit builds to one toplevel. */
const builtByCommit = new Map<string, CleanCloneBuild>();

/**
 * D8's static half as the reviewers ran it: a fresh clone (nothing from a working tree),
 * built as a git flake so only committed files count. The clone is removed afterwards; the
 * built path stays in the store, unrooted.
 */
export async function buildToplevelFromCleanClone(
  repoUrl: string,
  options: { submodules: boolean; configuration?: string } & NixOptions,
): Promise<CleanCloneBuild> {
  // A flake at one commit evaluates to one toplevel: a session's re-runs (accept watch) build a
  // commit once. The repo's HEAD is read first, so a new commit is built afresh, and a toplevel
  // no longer in the store (collected) is built again. Nothing built yet: nothing to ask for.
  // A repo that cannot be asked is left to the clone, which says why in its own words.
  const keyOf = (commit: string) => JSON.stringify([repoUrl, commit, options.submodules, options.configuration ?? '', options.nixConfig ?? '']);
  const head = builtByCommit.size > 0 ? await remoteHead(repoUrl).catch(() => undefined) : undefined;
  const earlier = head ? builtByCommit.get(keyOf(head)) : undefined;
  if (earlier && (await pathExists(earlier.path))) return { ...earlier, reused: true };
  const clone = await cloneRepo(repoUrl, { recursive: options.submodules });
  try {
    const flakeRef = `git+file://${clone.dir}${options.submodules ? '?submodules=1' : ''}`;
    const attr = toplevelAttr(options.configuration);
    const builtAt = new Date().toISOString();
    const path = await buildToplevel({ ...options, flakeRef, attr });
    const build = { path, commit: clone.commit, installable: `${flakeRef}#${attr}`, builtAt };
    builtByCommit.set(keyOf(clone.commit), build);
    return build;
  } finally {
    await clone.remove();
  }
}

async function pathExists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

const STORE_PATH = /^\/nix\/store\/[0-9a-df-np-sv-z]{32}-[^/\s]+$/;

/** The store path /run/current-system points to on the host. */
export async function currentSystem(host: HostChannel): Promise<string> {
  const result = await host.succeed('readlink -f /run/current-system', { purpose: 'read the running system' });
  const path = result.stdout.trim();
  if (!STORE_PATH.test(path)) throw new HarnessError(`/run/current-system on ${host.name} does not resolve to a store path: ${JSON.stringify(path)}`);
  return path;
}

/**
 * The store path /run/booted-system points to, or undefined where the host has none: NixOS's
 * stage 2 makes it at boot, so a container started without it (the lab) has no such link.
 */
export async function bootedSystem(host: HostChannel): Promise<string | undefined> {
  const result = await host.succeed('if [ -e /run/booted-system ] || [ -L /run/booted-system ]; then readlink -f /run/booted-system; fi', {
    purpose: 'read the booted system',
    strict: true,
  });
  const path = result.stdout.trim();
  if (path === '') return undefined;
  if (!STORE_PATH.test(path)) throw new HarnessError(`/run/booted-system on ${host.name} does not resolve to a store path: ${JSON.stringify(path)}`);
  return path;
}
