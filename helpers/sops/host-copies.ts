/**
 * Where the decrypted sops values sit on a host, and whether each place is explained. The
 * values are never sent to the host, put in argv, or printed: the host makes every form of each
 * value (helpers/common/secret-forms.ts: whole, by line and field; base64, hex, percent-, JSON-
 * and HTML-escaped) from the copies sops-nix installed (checked against git by hash first), with
 * one awk process a value, and feeds them all to one `grep -F -f -` on stdin. The script carries only
 * where each part sits in the file and how to encode it. Only file paths, secret names and
 * form numbers come back, and hashes that prove the host made the forms this side expects.
 */
import { createHash } from 'node:crypto';
import { HostScanError, existingRoots, fileHashesOnHost } from '../common/host-scan.ts';
import { requireStarted, shellWord, type HostChannel } from '../common/host.ts';
import { byteForm, formName, secretForms, type ByteTable, type SecretForm } from '../common/secret-forms.ts';

const sha256 = (content: string) => createHash('sha256').update(content).digest('hex');

/** Where sops-nix installs the values; `/run/secrets` points at the newest generation. */
export const SOPS_INSTALLED_DIR = '/run/secrets';

/**
 * Where a secret-looking file may sit without being a finding, and why. The Docker entries are
 * Docker's own: swarm generates a node key and certificate when the node joins
 * (moby `swarm/certificates/`, under `/var/lib/docker/swarm`); no operator or sops value made them.
 */
export const EXPLAINED_SECRET_PLACES: readonly { pattern: RegExp; why: string }[] = [
  { pattern: /^\/var\/lib\/sops-nix\/key\.txt$/, why: 'the bootstrap age key (the one out-of-band secret)' },
  { pattern: /^\/run\/secrets\.d\/\d+\/[^/]+$/, why: 'decrypted from sops at activation (sops-nix)' },
  { pattern: /^\/run\/secrets\.d\/\d+\/rendered\/[^/]+$/, why: 'a sops-nix template, rendered from sops values at activation (sops.templates)' },
  {
    pattern: /^\/var\/lib\/ci-certs\/live\/(fullchain|privkey)\.pem$/,
    why: "the wildcard cert and key from git where the proxy reads them, as files or links (C2 checks they are git's)",
  },
  { pattern: /^\/etc\/ssh\/ssh_host_[a-z0-9]+_key$/, why: "the machine's own SSH host key, generated on first boot" },
  { pattern: /^\/var\/lib\/docker\/swarm\/certificates\/swarm-node\.key$/, why: "Docker swarm's own node key, generated when the node joined the swarm" },
  { pattern: /^\/var\/lib\/docker\/swarm\/certificates\/swarm-(node|root-ca)\.crt$/, why: "Docker swarm's own node and root CA certificates" },
];

/**
 * Where dockerd mounts a swarm secret into a container (moby `container.SecretMountPath`):
 * a copy it makes of a secret the stack declares, which on cc-ci is a sops value.
 */
const DOCKER_SECRET_MOUNT = /^\/var\/lib\/docker\/containers\/[0-9a-f]{64}\/mounts\/secrets\/[^/]+$/;

/** Bytes the host's sed tables encode: tab and printable ASCII. */
const PLAIN_BYTES = /^[\t\x20-\x7e]*$/;

/** A form the host can make itself, with where its part sits in the installed file (bytes). */
export interface HostForm {
  form: SecretForm;
  offset: number;
  length: number;
}

/**
 * The forms of a value that the host makes from its installed copy: those of parts that are a
 * plain substring of it (a JSON field with escapes is not), on one line (grep reads lines), and,
 * for the per-byte tables, of parts in printable ASCII.
 */
export function hostForms(name: string, value: string): HostForm[] {
  return secretForms(name, value).flatMap((form): HostForm[] => {
    const { source, recipe, text } = form;
    if (source.offset === undefined || /[\r\n]/.test(text) || recipe.kind === 'json-ascii') return [];
    if (recipe.kind === 'bytes' && !PLAIN_BYTES.test(source.text)) return [];
    return [{ form, offset: Buffer.byteLength(value.slice(0, source.offset)), length: Buffer.byteLength(source.text) }];
  });
}

/** What the host prints for its forms of one value: one a line, in order. */
export function hostFormsText(forms: readonly HostForm[]): string {
  return forms.map(({ form }) => `${form.text}\n`).join('');
}

export interface SecretFile {
  file: string;
  /** The sops keys whose values the file holds (empty for a file found some other way). */
  names: string[];
  /** The forms found, as `name: form` (`db_password: field password, base64`); never a value. */
  forms?: string[];
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
  return files
    .filter(({ why }) => !why)
    .map(({ file, names, forms }) =>
      names.length === 0 ? file : `${file} (${names.join(', ')})${forms && forms.length > 0 ? ` as ${forms.join('; ')}` : ''}`,
    );
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
  const formsOf = new Map<string, HostForm[]>();
  const candidates = Object.keys(values)
    .sort()
    .filter((name) => {
      const forms = hostForms(name, values[name]!);
      if (forms.length > 0) return formsOf.set(name, forms);
      notSearched.push({ name, why: `no part of 6 characters or more (a line or a field of 12) to search for` });
      return false;
    });
  // Two round trips to the host, side by side.
  const [hashes, { searched, absent }] = await Promise.all([
    fileHashesOnHost(
      host,
      candidates.map((name) => `${installed}/${name}`),
      'hash the installed sops values',
    ),
    existingRoots(host, options.roots, 'search for copies of sops values'),
  ]);
  const names = candidates.filter((name) => {
    if (hashes.get(`${installed}/${name}`) === sha256(values[name]!)) return true;
    notSearched.push({ name, why: `${installed}/${name} is absent or differs from the value in git, so the host has no copy to search with` });
    return false;
  });
  if (names.length === 0 || searched.length === 0) return { files: [], searched, absent, notSearched };

  const result = await host.exec(copiesScript(names, formsOf, installed, searched), {
    purpose: 'search for copies of sops values, in every form',
    timeoutMs: options.timeoutMs,
  });
  requireStarted(result, host);
  if (result.exitCode !== 0) throw new HostScanError(result, host.name, 'failed');
  const holders = new Map<string, string[]>();
  const formsFound = new Map<string, string[]>();
  let name: string | undefined;
  let files: string[] = [];
  const made = new Set<string>();
  for (const line of result.stdout.split('\n').filter(Boolean)) {
    const hashLine = /^~(\S+) ([0-9a-f]{64})$/.exec(line);
    if (hashLine && formsOf.has(hashLine[1]!)) {
      // The host's base64, od and sed must make exactly the forms made here, or a leak in one would go unseen.
      if (hashLine[2] !== sha256(hostFormsText(formsOf.get(hashLine[1]!)!))) {
        throw new HostScanError(result, host.name, `made other forms of ${hashLine[1]} than expected (its base64, od, tr or sed differ)`);
      }
      made.add(hashLine[1]!);
    } else if (line.startsWith('=')) {
      name = line.slice(1);
      files = [];
    } else if (name !== undefined && names.includes(name) && line.startsWith('/')) {
      holders.set(line, [...(holders.get(line) ?? []), name]);
      files.push(line);
    } else if (name !== undefined && /^\+\d+$/.test(line) && formsOf.get(name)?.[Number(line.slice(1)) - 1]) {
      const described = `${name}: ${formName(formsOf.get(name)![Number(line.slice(1)) - 1]!.form)}`;
      for (const file of files) formsFound.set(file, [...(formsFound.get(file) ?? []), described]);
    } else throw new HostScanError(result, host.name, `printed a line that is no secret name, file, form or hash: ${JSON.stringify(line.slice(0, 200))}`);
  }
  const unmade = names.filter((candidate) => !made.has(candidate));
  if (unmade.length > 0) throw new HostScanError(result, host.name, `did not say which forms it made of ${unmade.join(', ')}`);
  const found = [...holders.keys()].sort();
  const fileHashes = await fileHashesOnHost(host, found, 'hash the files holding sops values');
  const copies = found.map((file) => ({
    file,
    names: holders.get(file)!,
    forms: formsFound.get(file) ?? [],
    why: explainSecretFile(file, fileHashes.get(file), values),
  }));
  return { files: copies, searched, absent, notSearched };
}

const TABLES: readonly ByteTable[] = ['url', 'form', 'json', 'json-slash', 'html'];
const TABLE_ARRAY: Record<ByteTable, string> = { url: 'TU', form: 'TF', json: 'TJ', 'json-slash': 'TS', html: 'TH' };

/** An awk string literal. */
function awkString(text: string): string {
  return `"${text.replace(/[\\"]/g, (char) => `\\${char}`).replaceAll('\t', '\\t')}"`;
}

/** The END block that prints the forms of one value, after formsLibrary has read its installed copy. */
function formsProgram(forms: readonly HostForm[]): string {
  return ['END {', ...forms.map((form) => `  ${formCall(form)}`), '}'].join('\n');
}

/** One form's call in the END block of formsProgram. */
function formCall({ form, offset, length }: HostForm): string {
  const part = `substr(c,${offset + 1},${length})`;
  const { recipe } = form;
  switch (recipe.kind) {
    case 'verbatim':
      return `print ${part}`;
    case 'base64':
      return `b(${part},${recipe.zeros},${recipe.from + 1},${recipe.to},${recipe.url ? 1 : 0})`;
    case 'hex':
      return `x(${part},${recipe.upper ? 1 : 0})`;
    case 'bytes':
      return `t(${part},"${TABLE_ARRAY[recipe.table]}")`;
    case 'json-ascii':
      throw new Error('json-ascii forms are made here only');
  }
}

/**
 * The awk functions and tables every value's program shares (in the script once). The installed
 * copy is read whole, in the C locale so that strings are bytes; each part is taken by byte
 * offset and length, then written as base64 (a character range of the encoding of some zero
 * bytes and the part, URL-safe or not), hex, or through a per-byte table. One process a value,
 * whatever the number of forms; POSIX awk only (gawk, mawk, busybox).
 */
function formsLibrary(): string {
  const tables = TABLES.flatMap((table) => {
    const entries: string[] = [];
    for (let byte = 1; byte < 256; byte++) {
      if (byte < 0x80 && byte !== 0x09 && (byte < 0x20 || byte === 0x7f)) continue;
      const form = byteForm(table, byte);
      if (form !== undefined) entries.push(`${TABLE_ARRAY[table]}[${byte}]=${awkString(form)}`);
    }
    return entries;
  });
  return [
    'BEGIN { RS = "\\001"; A = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"; for (i = 1; i < 256; i++) ORD[sprintf("%c", i)] = i;',
    ...tables.map((entry) => `  ${entry};`),
    '}',
    '{ c = c $0 }',
    // Base64 of z zero bytes and s, characters f to t; u: URL-safe.
    'function b(s, z, f, t, u,   n, i, v, out) {',
    '  n = 0; for (i = 0; i < z; i++) B[++n] = 0; for (i = 1; i <= length(s); i++) B[++n] = ORD[substr(s, i, 1)]',
    '  out = ""',
    '  for (i = 1; i <= n; i += 3) {',
    '    v = B[i] * 65536 + (i + 1 <= n ? B[i + 1] : 0) * 256 + (i + 2 <= n ? B[i + 2] : 0)',
    '    out = out substr(A, int(v / 262144) + 1, 1) substr(A, int(v / 4096) % 64 + 1, 1) (i + 1 <= n ? substr(A, int(v / 64) % 64 + 1, 1) : "=") (i + 2 <= n ? substr(A, v % 64 + 1, 1) : "=")',
    '  }',
    '  out = substr(out, f, t - f + 1)',
    '  if (u) { gsub(/\\+/, "-", out); gsub(/\\//, "_", out) }',
    '  print out',
    '}',
    'function x(s, up,   i, out) { out = ""; for (i = 1; i <= length(s); i++) out = out sprintf("%02x", ORD[substr(s, i, 1)]); if (up) out = toupper(out); print out }',
    'function t(s, name,   i, k, out) {',
    '  out = ""',
    '  for (i = 1; i <= length(s); i++) {',
    '    k = ORD[substr(s, i, 1)]',
    '    out = out (name == "TU" ? TU[k] : name == "TF" ? TF[k] : name == "TJ" ? TJ[k] : name == "TS" ? TS[k] : TH[k])',
    '  }',
    '  print out',
    '}',
  ].join('\n');
}

/**
 * Every form of every value, made on the host from the installed copies; one pass over the roots
 * with all of them; then, over the files found, which values and which of their forms each holds.
 * Forms go from shell variables to grep's stdin through printf (a builtin): no value reaches any
 * program's argv, and the script holds only offsets, lengths and encodings.
 */
/** Prints +k for each form k (a line of the first input) that some line of the other inputs holds. */
const FORMS_HELD =
  'NR == FNR { form[++n] = $0; next } { for (k = 1; k <= n; k++) if (!(k in held) && index($0, form[k])) held[k] = 1 } END { for (k = 1; k <= n; k++) if (k in held) print "+" k }';

function copiesScript(names: string[], formsOf: ReadonlyMap<string, HostForm[]>, installed: string, roots: string[]): string {
  const lines = [
    'set -f',
    "IFS='\n'",
    `lib=${shellWord(formsLibrary())}`,
    // grep exits 2 when a file it listed is gone by the time it reads it (a runtime file, a rotated
    // log): that file is gone, not unreadable, so only that complaint is forgiven; any other is a failure.
    'err=$(mktemp) || exit 3',
    'trap \'rm -f "$err"\' EXIT',
    'g() { grep "$@" 2>"$err"; rc=$?; if [ "$rc" -eq 2 ] && [ -s "$err" ] && ! grep -qv \': No such file or directory$\' "$err"; then rc=0; fi; if [ "$rc" -gt 1 ]; then cat "$err" >&2; fi; return "$rc"; }',
  ];
  names.forEach((name, index) => {
    lines.push(`forms_${index}() { LC_ALL=C awk "$lib"${shellWord(`\n${formsProgram(formsOf.get(name)!)}`)} ${shellWord(`${installed}/${name}`)}; }`);
    lines.push(`f_${index}=$(forms_${index}) || { printf 'could not make the forms of %s\\n' ${shellWord(name)} >&2; exit 3; }`);
    lines.push(`printf '~%s %s\\n' ${shellWord(name)} "$(printf '%s\\n' "$f_${index}" | sha256sum | cut -c 1-64)"`);
  });
  lines.push(
    `found=$(printf '%s\\n' ${names.map((_, index) => `"$f_${index}"`).join(' ')} | g -rlF -f - -- ${roots.map(shellWord).join(' ')}); rc=$?`,
    '[ "$rc" -le 1 ] || exit "$rc"',
    '[ -n "$found" ] || exit 0',
  );
  names.forEach((name, index) => {
    lines.push(
      `files=$(printf '%s\\n' "$f_${index}" | g -lF -f - -- $found); rc=$?`,
      '[ "$rc" -le 1 ] || exit "$rc"',
      'if [ -n "$files" ]; then',
      `  printf '=%s\\n' ${shellWord(name)}`,
      `  printf '%s\\n' "$files"`,
      // Which of its forms these files hold, in one pass (a grep per form was most of the scan):
      // the forms come on stdin, and only their numbers are printed.
      // A file gone since it was listed is gone, as for the greps above.
      '  set --; for f in $files; do if [ -e "$f" ]; then set -- "$@" "$f"; fi; done',
      `  if [ "$#" -gt 0 ]; then printf '%s\\n' "$f_${index}" | LC_ALL=C awk ${shellWord(FORMS_HELD)} - "$@" || exit 3; fi`,
      'fi',
    );
  });
  return lines.join('\n');
}
