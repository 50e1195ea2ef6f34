/**
 * Closures, read locally or on the host under test, and compared path by path and NAR hash by
 * NAR hash. Same store path is not enough for "byte-identical": a non-reproducible build gives
 * the same input-addressed path with different bytes, so the NAR hashes are compared too.
 */
import { createHash } from 'node:crypto';
import { realpath } from 'node:fs/promises';
import { HarnessError, errorMessage } from '../common/errors.ts';
import type { CommandResult } from '../common/exec.ts';
import type { HostChannel } from '../common/host.ts';
import { redact } from '../common/redact.ts';
import { FEATURES, nix, shellQuote, tailLines, type NixOptions } from './command.ts';
import { currentSystem } from './toplevel.ts';

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
  if (result.exitCode !== 0)
    throw new HarnessError(`nix path-info -r ${root} on ${host.name} failed (exit ${result.exitCode}):\n${redact(tailLines(result.stderr, 20))}`);
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

/** One SHA-256 over the sorted "path narHash" lines: a closure's fingerprint for the records. */
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
 * a supplementary attachment: whatever it says, the verdict comes from compareClosures.
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

/** Plain text for a report attachment. */
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
  else if (tool)
    lines.push(`nix store diff-closures${tool.where ? ` (${tool.where})` : ''}:`, tool.output.trim() ? tool.output : '  (no version or size changes)');
  return lines.join('\n');
}
