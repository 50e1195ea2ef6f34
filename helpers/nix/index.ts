/**
 * Operator-side Nix: build the cc-ci toplevel from a flake or a clean clone, read a closure
 * (locally or on the host under test) and compare two closures path by path and NAR hash by
 * NAR hash. Same store path is not enough for "byte-identical": a non-reproducible build gives
 * the same input-addressed path with different bytes, so the NAR hashes are compared too.
 */
import { createHash } from 'node:crypto';
import { access, realpath } from 'node:fs/promises';
import { HarnessError, errorMessage } from '../common/errors.ts';
import { exec, type CommandResult } from '../common/exec.ts';
import { redact } from '../common/redact.ts';
import { cloneRepo, operatorGitEnv, remoteHead } from '../git/index.ts';
import type { HostChannel } from '../common/host.ts';

/**
 * Settings for a Nix that can reach nothing (this lab: no substituter, no registry, root
 * without build users). Not the default: a real operator machine needs its substituters.
 */
export const OFFLINE_NIX_CONFIG = ['build-users-group =', 'sandbox = false', 'experimental-features = nix-command flakes', 'flake-registry =', 'substituters ='].join('\n');

/** Works whatever nix.conf says; `extra-` so it adds to, and never narrows, the host's list. */
const FEATURES = ['--extra-experimental-features', 'nix-command flakes'];

export interface NixOptions {
  /** Appended to the inherited NIX_CONFIG for this call (e.g. OFFLINE_NIX_CONFIG). */
  nixConfig?: string;
  timeoutMs?: number;
}

export const toplevelAttr = (configuration = 'cc-ci'): string => `nixosConfigurations.${configuration}.config.system.build.toplevel`;

function nixEnv(options: NixOptions): Record<string, string | undefined> | undefined {
  if (!options.nixConfig) return undefined;
  const inherited = process.env.NIX_CONFIG;
  return { ...process.env, NIX_CONFIG: inherited ? `${inherited}\n${options.nixConfig}` : options.nixConfig };
}

async function nix(args: string[], options: NixOptions = {}): Promise<CommandResult> {
  // Nix runs git for git inputs and submodules: it gets the operator's credentials too.
  return exec('nix', [...FEATURES, ...args], { env: { ...nixEnv(options), ...operatorGitEnv() }, timeoutMs: options.timeoutMs ?? 3_600_000 });
}

function tailLines(text: string, lines = 40): string {
  const all = text.trimEnd().split('\n');
  return (all.length > lines ? ['…', ...all.slice(-lines)] : all).join('\n') || '(empty)';
}

/** A build that did not produce a path. Carries nix's stderr so a spec may judge it a FAIL. */
export class NixBuildError extends HarnessError {
  override readonly name = 'NixBuildError';
  readonly stderrTail: string;
  constructor(readonly installable: string, result: CommandResult) {
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
  /** The installable as built, for evidence. */
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
  // no longer in the store (collected) is built again.
  // A repo that cannot be asked is left to the clone, which says why in its own words.
  const head = await remoteHead(repoUrl).catch(() => undefined);
  const earlier = head ? builtByCommit.get(JSON.stringify([repoUrl, head, options.submodules, options.configuration ?? '', options.nixConfig ?? ''])) : undefined;
  if (earlier && (await pathExists(earlier.path))) return { ...earlier, reused: true };
  const clone = await cloneRepo(repoUrl, { recursive: options.submodules });
  try {
    const flakeRef = `git+file://${clone.dir}${options.submodules ? '?submodules=1' : ''}`;
    const attr = toplevelAttr(options.configuration);
    const builtAt = new Date().toISOString();
    const path = await buildToplevel({ ...options, flakeRef, attr });
    const build = { path, commit: clone.commit, installable: `${flakeRef}#${attr}`, builtAt };
    builtByCommit.set(JSON.stringify([repoUrl, clone.commit, options.submodules, options.configuration ?? '', options.nixConfig ?? '']), build);
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
  const result = await host.succeed('if [ -e /run/booted-system ] || [ -L /run/booted-system ]; then readlink -f /run/booted-system; fi', { purpose: 'read the booted system', strict: true });
  const path = result.stdout.trim();
  if (path === '') return undefined;
  if (!STORE_PATH.test(path)) throw new HarnessError(`/run/booted-system on ${host.name} does not resolve to a store path: ${JSON.stringify(path)}`);
  return path;
}

// --- closures ---------------------------------------------------------------------------

export interface ClosureEntry {
  path: string;
  /** Always SRI (`sha256-…base64`), whatever form the Nix that printed it used. */
  narHash: string;
  narSize: number;
  references: string[];
}

export interface Closure {
  root: string;
  /** Where it was read: `local` or the host's name. */
  where: string;
  /** Sorted by path. */
  entries: ClosureEntry[];
}

const NIX32 = '0123456789abcdfghijklmnpqrsvwxyz';
const HASH_BYTES: Record<string, number> = { md5: 16, sha1: 20, sha256: 32, sha512: 64 };

/** Nix's own base-32 (reversed, odd alphabet), as older Nix prints narHash. */
export function decodeNix32(text: string, bytes: number): Buffer {
  const out = Buffer.alloc(bytes);
  for (let n = 0; n < text.length; n++) {
    const digit = NIX32.indexOf(text[text.length - n - 1]!);
    if (digit < 0) throw new HarnessError(`not a Nix base-32 hash: ${text}`);
    const bit = n * 5;
    const i = bit >> 3;
    const j = bit & 7;
    out[i] = out[i]! | ((digit << j) & 0xff);
    const carry = digit >> (8 - j);
    if (i + 1 < bytes) out[i + 1] = out[i + 1]! | carry;
    else if (carry) throw new HarnessError(`Nix base-32 hash overflows ${bytes} bytes: ${text}`);
  }
  return out;
}

/** Accepts SRI, `algo:nix32`, `algo:hex`, `algo:base64` and {algorithm, hash} objects. */
export function normaliseHash(value: unknown): string {
  if (value && typeof value === 'object') {
    const { algorithm, hash, format } = value as { algorithm?: unknown; hash?: unknown; format?: unknown };
    if (typeof algorithm === 'string' && typeof hash === 'string') {
      return normaliseHash(format === 'base64' || format === undefined ? `${algorithm}-${hash}` : `${algorithm}:${hash}`);
    }
  }
  if (typeof value !== 'string') throw new HarnessError(`unrecognised hash: ${JSON.stringify(value)}`);
  const sri = /^(md5|sha1|sha256|sha512)-([A-Za-z0-9+/]+=*)$/.exec(value);
  if (sri) return value;
  const prefixed = /^(md5|sha1|sha256|sha512):([A-Za-z0-9+/=]+)$/.exec(value);
  if (!prefixed) throw new HarnessError(`unrecognised hash: ${JSON.stringify(value)}`);
  const algo = prefixed[1]!;
  const digits = prefixed[2]!;
  const bytes = HASH_BYTES[algo]!;
  let raw: Buffer;
  if (digits.length === bytes * 2 && /^[0-9a-f]+$/.test(digits)) raw = Buffer.from(digits, 'hex');
  else if (digits.length === Math.ceil((bytes * 8) / 5)) raw = decodeNix32(digits, bytes);
  else raw = Buffer.from(digits, 'base64');
  if (raw.length !== bytes) throw new HarnessError(`hash has the wrong length for ${algo}: ${JSON.stringify(value)}`);
  return `${algo}-${raw.toString('base64')}`;
}

function fullPath(pathOrBase: string, storeDir: string): string {
  return pathOrBase.startsWith('/') ? pathOrBase : `${storeDir}/${pathOrBase}`;
}

/**
 * `nix path-info --json` in any shape seen so far: an array of {path, …} (≤ 2.18, invalid
 * paths as {path, valid:false}) or an object keyed by path (≥ 2.19, invalid paths as null;
 * later versions may use base names with a storeDir field). Throws on invalid paths.
 */
export function parsePathInfo(json: string): ClosureEntry[] {
  let data: unknown;
  try {
    data = JSON.parse(json);
  } catch (error) {
    throw new HarnessError(`nix path-info did not print JSON: ${errorMessage(error)}: ${json.slice(0, 200)}`);
  }
  const records: Array<[string, unknown]> = [];
  if (Array.isArray(data)) {
    for (const item of data) records.push([String((item as { path?: unknown } | null)?.path ?? ''), item]);
  } else if (data && typeof data === 'object') {
    for (const [key, value] of Object.entries(data)) records.push([key, value]);
  } else {
    throw new HarnessError(`nix path-info printed neither an array nor an object: ${json.slice(0, 200)}`);
  }
  const entries: ClosureEntry[] = [];
  const invalid: string[] = [];
  for (const [key, value] of records) {
    const info = value as { storeDir?: unknown; narHash?: unknown; narSize?: unknown; references?: unknown; valid?: unknown } | null;
    const storeDir = typeof info?.storeDir === 'string' ? info.storeDir : '/nix/store';
    const path = fullPath(key, storeDir);
    if (!key) throw new HarnessError(`nix path-info entry without a path: ${JSON.stringify(value).slice(0, 200)}`);
    if (info === null || info.valid === false) {
      invalid.push(path);
      continue;
    }
    if (typeof info.narSize !== 'number') throw new HarnessError(`nix path-info entry for ${path} has no narSize`);
    entries.push({
      path,
      narHash: normaliseHash(info.narHash),
      narSize: info.narSize,
      references: Array.isArray(info.references) ? info.references.map((ref) => fullPath(String(ref), storeDir)).sort() : [],
    });
  }
  if (invalid.length > 0) throw new HarnessError(`not valid in the store: ${invalid.join(', ')}`);
  return entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

const shellQuote = (word: string): string => `'${word.replaceAll("'", `'\\''`)}'`;

/**
 * The closure of a store path with NAR hash and size per path: on this machine when given
 * a path, on the host when given a HostChannel (default: its /run/current-system).
 */
export async function closure(target: string | HostChannel, options: NixOptions & { path?: string } = {}): Promise<Closure> {
  if (typeof target === 'string') {
    // 2.8 reads a non-store path as a flake reference, so resolve links such as ./result first.
    const path = await realpath(target).catch(() => target);
    const result = await nix(['path-info', '--json', '--recursive', path], options);
    if (result.exitCode !== 0) throw new HarnessError(`nix path-info -r ${path} failed (exit ${result.exitCode}):\n${redact(tailLines(result.stderr, 20))}`);
    const entries = parsePathInfo(result.stdout);
    return { root: resolveRoot(path, entries), where: 'local', entries };
  }
  const host = target;
  const root = options.path ?? (await currentSystem(host));
  const result = await host.exec(`nix ${FEATURES[0]} ${shellQuote(FEATURES[1]!)} path-info --json --recursive ${shellQuote(root)}`, {
    purpose: 'read the closure of the running system',
    timeoutMs: options.timeoutMs,
  });
  if (result.exitCode !== 0) throw new HarnessError(`nix path-info -r ${root} on ${host.name} failed (exit ${result.exitCode}):\n${redact(tailLines(result.stderr, 20))}`);
  const entries = parsePathInfo(result.stdout);
  return { root: resolveRoot(root, entries), where: host.name, entries };
}

/** The one entry nothing else in the closure refers to; falls back to the path asked for. */
function resolveRoot(asked: string, entries: ClosureEntry[]): string {
  if (entries.some((entry) => entry.path === asked)) return asked;
  const referenced = new Set(entries.flatMap((entry) => entry.references.filter((ref) => ref !== entry.path)));
  const roots = entries.filter((entry) => !referenced.has(entry.path));
  return roots.length === 1 ? roots[0]!.path : asked;
}

/** One SHA-256 over the sorted "path narHash" lines: a closure's fingerprint for evidence. */
export function closureHash(closure: Closure | ClosureEntry[]): string {
  const entries = Array.isArray(closure) ? closure : closure.entries;
  const lines = entries.map((entry) => `${entry.path} ${entry.narHash}\n`).sort();
  const hash = createHash('sha256');
  for (const line of lines) hash.update(line);
  return `sha256:${hash.digest('hex')}`;
}

export interface ClosureDiff {
  identical: boolean;
  rootA: string;
  rootB: string;
  sizeA: number;
  sizeB: number;
  hashA: string;
  hashB: string;
  onlyInA: string[];
  onlyInB: string[];
  narHashDiffers: Array<{ path: string; a: string; b: string }>;
}

/** The set difference by path, then NAR hash for the shared paths. Pure. */
export function compareClosures(a: Closure, b: Closure): ClosureDiff {
  const inB = new Map(b.entries.map((entry) => [entry.path, entry]));
  const inA = new Set(a.entries.map((entry) => entry.path));
  const onlyInA: string[] = [];
  const narHashDiffers: ClosureDiff['narHashDiffers'] = [];
  for (const entry of a.entries) {
    const other = inB.get(entry.path);
    if (!other) onlyInA.push(entry.path);
    else if (other.narHash !== entry.narHash) narHashDiffers.push({ path: entry.path, a: entry.narHash, b: other.narHash });
  }
  const onlyInB = b.entries.filter((entry) => !inA.has(entry.path)).map((entry) => entry.path);
  return {
    identical: a.root === b.root && onlyInA.length === 0 && onlyInB.length === 0 && narHashDiffers.length === 0,
    rootA: a.root,
    rootB: b.root,
    sizeA: a.entries.length,
    sizeB: b.entries.length,
    hashA: closureHash(a),
    hashB: closureHash(b),
    onlyInA: onlyInA.sort(),
    onlyInB: onlyInB.sort(),
    narHashDiffers,
  };
}

/**
 * `nix store diff-closures` where both paths are in this machine's store, else undefined.
 * Supplementary only: it reports version changes and size changes over 8 KiB, so it says
 * nothing about two closures that differ in bytes alone.
 */
export async function diffClosures(a: string, b: string, options: NixOptions = {}): Promise<string | undefined> {
  const result = await nix(['store', 'diff-closures', a, b], options);
  return result.exitCode === 0 ? result.stdout.trimEnd() : undefined;
}

/** What `nix store diff-closures` said, and where it ran; or why it could not say. */
export type DiffClosuresOutcome = { output: string; where: string } | { unavailable: string };

/** A Nix older than 2.4 (or one built without the command) names it as unknown. */
const NO_SUCH_COMMAND = /is not a recogni[sz]ed command|unrecogni[sz]ed (command|argument)|unknown command/i;

/** Why a diff-closures run gave nothing, from its result: a Nix without the command, or a failure. */
export function diffClosuresFailure(result: Pick<CommandResult, 'exitCode' | 'stderr'>, where: string): string {
  if (NO_SUCH_COMMAND.test(result.stderr)) return `the Nix ${where} has no \`nix store diff-closures\``;
  const last = result.stderr.trim().split('\n').at(-1) ?? '';
  return `\`nix store diff-closures\` ${where} exited ${result.exitCode}${last ? `: ${redact(last.slice(0, 300))}` : ''}`;
}

/** `nix store diff-closures a b` on the host, for two paths in its store. Never throws for the command's own failure. */
export async function diffClosuresOnHost(host: HostChannel, a: string, b: string, options: { timeoutMs?: number } = {}): Promise<DiffClosuresOutcome> {
  let result: CommandResult;
  try {
    result = await host.exec(`nix ${FEATURES[0]} ${shellQuote(FEATURES[1]!)} store diff-closures ${shellQuote(a)} ${shellQuote(b)}`, {
      purpose: 'show how two closures differ',
      timeoutMs: options.timeoutMs,
    });
  } catch (error) {
    // No nix on the host (127) or a dropped channel: the closure comparison stands without it.
    return { unavailable: `\`nix store diff-closures\` on ${host.name} could not run: ${redact(errorMessage(error).split('\n')[0]!.slice(0, 300))}` };
  }
  if (result.exitCode === 0) return { output: result.stdout.trimEnd(), where: `on ${host.name}` };
  return { unavailable: diffClosuresFailure(result, `on ${host.name}`) };
}

/**
 * diff-closures where both paths can be: this machine's store first, then the host's. Only
 * supplementary evidence: whatever it says, the verdict comes from compareClosures.
 */
export async function diffClosuresWherever(a: string, b: string, host: HostChannel, options: NixOptions = {}): Promise<DiffClosuresOutcome> {
  const local = await nix(['store', 'diff-closures', a, b], options).catch((error: unknown) => ({ exitCode: -1, stdout: '', stderr: errorMessage(error) }));
  if (local.exitCode === 0) return { output: local.stdout.trimEnd(), where: 'on this machine' };
  const remote = await diffClosuresOnHost(host, a, b, options);
  if ('output' in remote) return remote;
  return { unavailable: `${diffClosuresFailure(local, 'on this machine')}; ${remote.unavailable}` };
}

function listSome(title: string, lines: string[], max: number): string[] {
  if (lines.length === 0) return [];
  const shown = lines.slice(0, max).map((line) => `  ${line}`);
  if (lines.length > max) shown.push(`  … and ${lines.length - max} more`);
  return [`${title} (${lines.length}):`, ...shown];
}

/** Plain text for an evidence attachment. */
export function formatClosureDiff(
  diff: ClosureDiff,
  options: { labels?: [string, string]; diffClosures?: string | DiffClosuresOutcome; max?: number } = {},
): string {
  const [labelA, labelB] = options.labels ?? ['A', 'B'];
  const max = options.max ?? 50;
  const lines = [
    `${labelA}: ${diff.rootA} (${diff.sizeA} paths, closure ${diff.hashA})`,
    `${labelB}: ${diff.rootB} (${diff.sizeB} paths, closure ${diff.hashB})`,
    diff.identical
      ? 'identical: same root, same paths, same NAR hash for every path'
      : `different: ${diff.rootA === diff.rootB ? 'same root path' : 'root paths differ'}; ` +
        `${diff.onlyInA.length} only in ${labelA}, ${diff.onlyInB.length} only in ${labelB}, ${diff.narHashDiffers.length} with a different NAR hash`,
    ...listSome(`only in ${labelA}`, diff.onlyInA, max),
    ...listSome(`only in ${labelB}`, diff.onlyInB, max),
    ...listSome(
      'NAR hash differs',
      diff.narHashDiffers.map((row) => `${row.path}: ${labelA} ${row.a}, ${labelB} ${row.b}`),
      max,
    ),
  ];
  const tool = typeof options.diffClosures === 'string' ? { output: options.diffClosures, where: '' } : options.diffClosures;
  if (tool && 'unavailable' in tool) lines.push(`nix store diff-closures: not shown (${tool.unavailable})`);
  else if (tool) lines.push(`nix store diff-closures${tool.where ? ` (${tool.where})` : ''}:`, tool.output.trim() ? tool.output : '  (no version or size changes)');
  return lines.join('\n');
}
