/**
 * Where the decrypted sops values sit on a host, and whether each place is explained. The
 * values are never sent to the host, put in argv, or printed: the host reads the lines to look
 * for from the copies sops-nix installed (checked against git by hash first) and feeds them to
 * `grep -F -f -` on stdin. Only file paths and secret names come back.
 */
import { createHash } from 'node:crypto';
import { HostScanError, existingRoots, fileHashesOnHost } from '../common/host-scan.ts';
import { requireStarted, shellWord, type HostChannel } from '../common/host.ts';

const sha256 = (content: string) => createHash('sha256').update(content).digest('hex');

/** Where sops-nix installs the values; `/run/secrets` points at the newest generation. */
export const SOPS_INSTALLED_DIR = '/run/secrets';

/** Shorter lines match too much by chance to tell a copy from a coincidence. */
export const MIN_SEARCH_LINE = 16;

/**
 * Where a secret-looking file may sit without being a finding, and why. The Docker entries are
 * Docker's own: swarm generates a node key and certificate when the node joins
 * (moby `swarm/certificates/`, under `/var/lib/docker/swarm`); no operator or sops value made them.
 */
export const EXPLAINED_SECRET_PLACES: readonly { pattern: RegExp; why: string }[] = [
  { pattern: /^\/var\/lib\/sops-nix\/key\.txt$/, why: 'the bootstrap age key (the one out-of-band secret)' },
  { pattern: /^\/run\/secrets\.d\/\d+\/[^/]+$/, why: 'decrypted from sops at activation (sops-nix)' },
  { pattern: /^\/etc\/ssh\/ssh_host_[a-z0-9]+_key$/, why: "the machine's own SSH host key, generated on first boot" },
  { pattern: /^\/var\/lib\/docker\/swarm\/certificates\/swarm-node\.key$/, why: "Docker swarm's own node key, generated when the node joined the swarm" },
  { pattern: /^\/var\/lib\/docker\/swarm\/certificates\/swarm-(node|root-ca)\.crt$/, why: "Docker swarm's own node and root CA certificates" },
];

/**
 * Where dockerd mounts a swarm secret into a container (moby `container.SecretMountPath`):
 * a copy it makes of a secret the stack declares, which on cc-ci is a sops value.
 */
const DOCKER_SECRET_MOUNT = /^\/var\/lib\/docker\/containers\/[0-9a-f]{64}\/mounts\/secrets\/[^/]+$/;

/** The lines of a value the host searches for: long enough, and no PEM armour shared by every key. */
export function searchLines(value: string): string[] {
  return value.split(/\r?\n/).filter((line) => line.length >= MIN_SEARCH_LINE && !line.startsWith('-----'));
}

export interface SecretFile {
  file: string;
  /** The sops keys whose values the file holds (empty for a file found some other way). */
  names: string[];
  /** Why it may be there; undefined when nothing explains it. */
  why?: string;
}

/**
 * Why a secret-looking file is where it is: a place in EXPLAINED_SECRET_PLACES, or a Docker
 * secret mount whose whole content is one sops value (`hash` is the file's SHA-256).
 */
export function explainSecretFile(file: string, hash: string | undefined, values: Readonly<Record<string, string>>): string | undefined {
  const place = EXPLAINED_SECRET_PLACES.find(({ pattern }) => pattern.test(file));
  if (place) return place.why;
  if (!DOCKER_SECRET_MOUNT.test(file) || hash === undefined) return undefined;
  const copied = Object.keys(values).find((name) => sha256(values[name]!) === hash);
  return copied === undefined ? undefined : `a Docker secret mounted into a container: dockerd's copy of sops value ${copied}`;
}

/** The files nothing explains, each as "path (secret names)": what a FAIL names, never a value. */
export function unexplained(files: readonly SecretFile[]): string[] {
  return files.filter(({ why }) => !why).map(({ file, names }) => (names.length > 0 ? `${file} (${names.join(', ')})` : file));
}

export interface SopsCopies {
  /** Every file outside the installed directory holding a searched value, sorted. */
  files: SecretFile[];
  searched: string[];
  absent: string[];
  /** Values not searched for, with why (never the value). */
  notSearched: { name: string; why: string }[];
}

export interface SopsCopiesOptions {
  /** Directories searched recursively (symlinks inside them are not followed). */
  roots: string[];
  installedDir?: string;
  timeoutMs?: number;
}

/**
 * Searches the roots for every decrypted value in `values` (sops key → value). A value is
 * searched for only when its installed copy equals it; otherwise it is listed in notSearched
 * (C3's /run/secrets check fails on that copy). A grep that fails is a HostScanError.
 */
export async function findSopsCopiesOnHost(host: HostChannel, values: Readonly<Record<string, string>>, options: SopsCopiesOptions): Promise<SopsCopies> {
  const installed = options.installedDir ?? SOPS_INSTALLED_DIR;
  const notSearched: SopsCopies['notSearched'] = [];
  const candidates = Object.keys(values).sort().filter((name) => {
    if (searchLines(values[name]!).length > 0) return true;
    notSearched.push({ name, why: `no line of ${MIN_SEARCH_LINE} characters or more to search for` });
    return false;
  });
  const hashes = await fileHashesOnHost(host, candidates.map((name) => `${installed}/${name}`), 'hash the installed sops values');
  const names = candidates.filter((name) => {
    if (hashes.get(`${installed}/${name}`) === sha256(values[name]!)) return true;
    notSearched.push({ name, why: `${installed}/${name} is absent or differs from the value in git, so the host has no copy to search with` });
    return false;
  });
  const { searched, absent } = await existingRoots(host, options.roots, 'search for copies of sops values');
  if (names.length === 0 || searched.length === 0) return { files: [], searched, absent, notSearched };

  const result = await host.exec(copiesScript(names, installed, searched), { purpose: 'search for copies of sops values', timeoutMs: options.timeoutMs });
  requireStarted(result, host);
  if (result.exitCode !== 0) throw new HostScanError(result, host.name, 'failed');
  const holders = new Map<string, string[]>();
  let name: string | undefined;
  for (const line of result.stdout.split('\n').filter(Boolean)) {
    if (line.startsWith('=')) name = line.slice(1);
    else if (name !== undefined && names.includes(name) && line.startsWith('/')) holders.set(line, [...(holders.get(line) ?? []), name]);
    else throw new HostScanError(result, host.name, `printed a line that is no secret name or file: ${JSON.stringify(line.slice(0, 200))}`);
  }
  const found = [...holders.keys()].sort();
  const fileHashes = await fileHashesOnHost(host, found, 'hash the files holding sops values');
  const files = found.map((file) => ({ file, names: holders.get(file)!, why: explainSecretFile(file, fileHashes.get(file), values) }));
  return { files, searched, absent, notSearched };
}

/**
 * One pass over the roots with every value's lines, then, over the files it found, one grep per
 * value to name which values each holds. Lines go from the installed copies to grep's stdin
 * through shell variables and printf (a builtin): no value reaches any program's argv.
 */
function copiesScript(names: string[], installed: string, roots: string[]): string {
  const files = names.map((name) => shellWord(`${installed}/${name}`)).join(' ');
  return [
    'set -f',
    // The searchable lines of one installed copy; TypeScript checked that each has one.
    `lines() { p=$(grep -E -e '.{${MIN_SEARCH_LINE}}' -- "$1") && printf '%s\\n' "$p" | grep -v -e '^-----'; }`,
    `all=$(for f in ${files}; do lines "$f" || { printf 'could not read the lines to search for from %s\\n' "$f" >&2; exit 3; }; done) || exit 3`,
    `found=$(printf '%s\\n' "$all" | grep -rlF -f - -- ${roots.map(shellWord).join(' ')}); rc=$?`,
    '[ "$rc" -le 1 ] || exit "$rc"',
    '[ -n "$found" ] || exit 0',
    "IFS='\n'",
    `for name in ${names.map(shellWord).join(' ')}; do`,
    `  p=$(lines ${shellWord(installed)}/"$name") || exit 3`,
    `  printf '=%s\\n' "$name"`,
    '  printf \'%s\\n\' "$p" | grep -lF -f - -- $found; rc=$?',
    '  [ "$rc" -le 1 ] || exit "$rc"',
    'done',
  ].join('\n');
}
