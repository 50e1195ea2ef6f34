/**
 * Reading a host with commands whose non-zero exit can mean "nothing there" (grep's 1, a file
 * that is absent). Each tells that answer apart from a command that failed: a failure is an
 * ERROR naming the command and the host, never an empty result that a check would pass on.
 */
import { HarnessError } from './errors.ts';
import type { CommandResult } from './exec.ts';
import { requireStarted, shellWord, type HostChannel } from './host.ts';
import { redact } from './redact.ts';

/** A command on the host failed, so what it would have found is unknown. */
export class HostScanError extends HarnessError {
  override readonly name = 'HostScanError';
  constructor(
    readonly result: CommandResult,
    readonly host: string,
    why: string,
  ) {
    super(
      redact(
        `on ${host}: \`${result.command}\` ${why} (exit ${result.exitCode}), so what it looked for is unknown\n--- stderr ---\n${result.stderr.trimEnd().slice(-2000) || '(empty)'}`,
      ),
    );
  }
}

export interface FilesMatchingOptions {
  /** An extended regular expression (grep -E). */
  pattern: string;
  /** Files or directories, searched recursively; the ones that do not exist are skipped and listed in `absent`. */
  roots: string[];
  purpose?: string;
  timeoutMs?: number;
}

export interface FilesMatching {
  /** Files holding a match, sorted, each once. */
  files: string[];
  searched: string[];
  absent: string[];
}

/**
 * `grep -rlE` over the roots that exist. grep exits 0 with matches and 1 with none; anything
 * else (2: a file it could not read, 126/127: no grep) is a failure, not "nothing found".
 */
export async function filesMatchingOnHost(host: HostChannel, options: FilesMatchingOptions): Promise<FilesMatching> {
  const purpose = options.purpose ?? 'search files on the host';
  const { searched, absent } = await existingRoots(host, options.roots, purpose);
  if (searched.length === 0) return { files: [], searched, absent };

  const result = await host.exec(`grep -rlE -e ${shellWord(options.pattern)} -- ${searched.map(shellWord).join(' ')}`, {
    purpose,
    timeoutMs: options.timeoutMs,
  });
  requireStarted(result, host);
  if (result.exitCode === 1) return { files: [], searched, absent };
  // A file that vanished between grep listing and reading it (a runtime file, a rotated log) is
  // gone, not unreadable: its only complaint is "No such file or directory".
  if (result.exitCode !== 0 && !(result.exitCode === 2 && onlyVanished(result.stderr))) throw new HostScanError(result, host.name, 'failed');
  const files = [...new Set(result.stdout.split('\n').filter(Boolean))].sort();
  return { files, searched, absent };
}

/** Whether every complaint grep made is about a file that no longer exists. */
export function onlyVanished(stderr: string): boolean {
  const lines = stderr.split('\n').filter((line) => line.trim() !== '');
  return lines.length > 0 && lines.every((line) => /^grep: .+: No such file or directory$/.test(line));
}

/** Which of the roots exist on the host: `searched`, in the order given, and the rest, `absent`. */
export async function existingRoots(host: HostChannel, roots: readonly string[], purpose: string): Promise<Pick<FilesMatching, 'searched' | 'absent'>> {
  // In strict mode, so that a failing test or printf is an error, not a root left out.
  const existing = await host.exec(`for root in ${roots.map(shellWord).join(' ')}; do if [ -e "$root" ]; then printf '%s\\n' "$root"; fi; done`, {
    strict: true,
    purpose: `${purpose}: which roots exist`,
  });
  requireStarted(existing, host);
  if (existing.exitCode !== 0) throw new HostScanError(existing, host.name, 'could not tell which search roots exist');
  const lines = existing.stdout.split('\n');
  const searched = roots.filter((root) => lines.includes(root));
  return { searched, absent: roots.filter((root) => !searched.includes(root)) };
}

const SHA256_LINE = /^([0-9a-f]{64}) [ *](.+)$/;

/**
 * SHA-256 of each path that is a regular file on the host (symlinks followed), in one command.
 * A path that is absent (or not a regular file) maps to undefined; a sha256sum that fails on
 * one that is, is an error.
 */
export async function fileHashesOnHost(
  host: HostChannel,
  paths: readonly string[],
  purpose = 'hash files on the host',
): Promise<Map<string, string | undefined>> {
  const hashes = new Map<string, string | undefined>(paths.map((path) => [path, undefined]));
  if (paths.length === 0) return hashes;
  const result = await host.exec(`for f in ${paths.map(shellWord).join(' ')}; do if [ -f "$f" ]; then sha256sum -- "$f"; fi; done`, { strict: true, purpose });
  requireStarted(result, host);
  if (result.exitCode !== 0) throw new HostScanError(result, host.name, 'failed');
  for (const line of result.stdout.split('\n').filter(Boolean)) {
    const match = SHA256_LINE.exec(line);
    if (!match || !hashes.has(match[2]!))
      throw new HostScanError(result, host.name, `printed a line that is no hash of a path asked for: ${JSON.stringify(line.slice(0, 200))}`);
    hashes.set(match[2]!, match[1]!);
  }
  return hashes;
}
