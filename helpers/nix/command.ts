/**
 * How the harness runs Nix, on this machine and on a host: the features every call turns on
 * whatever nix.conf says, the extra config a call may add (OFFLINE_NIX_CONFIG for the lab), and
 * the operator's git credentials for the git inputs Nix fetches.
 */
import { exec, type CommandResult } from '../common/exec.ts';
import { operatorGitEnv } from '../git/index.ts';

/**
 * Settings for a Nix that can reach nothing (this lab: no substituter, no registry, root
 * without build users). Not the default: a real operator machine needs its substituters.
 */
export const OFFLINE_NIX_CONFIG = [
  'build-users-group =',
  'sandbox = false',
  'experimental-features = nix-command flakes',
  'flake-registry =',
  'substituters =',
].join('\n');

/** Works whatever nix.conf says; `extra-` so it adds to, and never narrows, the host's list. */
export const FEATURES = ['--extra-experimental-features', 'nix-command flakes'];

export interface NixOptions {
  /** Appended to the inherited NIX_CONFIG for this call (e.g. OFFLINE_NIX_CONFIG). */
  nixConfig?: string;
  timeoutMs?: number;
}

function nixEnv(options: NixOptions): Record<string, string | undefined> | undefined {
  if (!options.nixConfig) return undefined;
  const inherited = process.env.NIX_CONFIG;
  return { ...process.env, NIX_CONFIG: inherited ? `${inherited}\n${options.nixConfig}` : options.nixConfig };
}

/** Runs nix on this machine with FEATURES, the call's extra config and the operator's git credentials. */
export async function nix(args: string[], options: NixOptions = {}): Promise<CommandResult> {
  // Nix runs git for git inputs and submodules: it gets the operator's credentials too.
  return exec('nix', [...FEATURES, ...args], { env: { ...nixEnv(options), ...operatorGitEnv() }, timeoutMs: options.timeoutMs ?? 3_600_000 });
}

/** The last lines of a command's output, for an error message. */
export function tailLines(text: string, lines = 40): string {
  const all = text.trimEnd().split('\n');
  return (all.length > lines ? ['…', ...all.slice(-lines)] : all).join('\n') || '(empty)';
}

/** One word for a host's shell, single-quoted. */
export const shellQuote = (word: string): string => `'${word.replaceAll("'", `'\\''`)}'`;
