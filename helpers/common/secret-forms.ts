/**
 * Every form a secret value may leak in, derived in one place for every probe and for redaction.
 *
 * A value leaks as itself, but also one line of it (a PEM body in a diff), one field of it (the
 * password of a JSON credential), and any of those encoded: `echo $TOKEN | base64` in a build
 * step, a token percent-encoded into a URL, a JSON-escaped value in a structured log line, hex in
 * a debug dump. `secretForms` lists them; `FormIndex` finds all of them in one pass.
 *
 * The length rule (docs/architecture.md, "Forms of a secret"): the whole value is searched from
 * MIN_VALUE_LENGTH characters, as a registered secret always was; a part of it (a line, a
 * field) only from MIN_PART_LENGTH, because parts are where ordinary text lives (`admin`,
 * `postgres`, `true`, a port) and would match by chance. An encoding carries exactly the
 * information of what it encodes, so it is searched whenever its source is; the one exception
 * is base64 of a value at an offset in a larger blob, which loses up to two bytes at each end
 * and is kept only while it still pins down as many bytes as its source needs.
 */
import { parse as parseYaml } from 'yaml';
import { MultiMatcher, type MultiMatchOptions } from './multi-match.ts';

/** The whole value: shorter ones are refused by the probes and not redacted (they would hit ordinary words). */
export const MIN_VALUE_LENGTH = 6;
/** A line or a field of a value: random text of 12 characters is 60+ bits; words and ports are shorter. */
export const MIN_PART_LENGTH = 12;
/** Wrapped base64 as `base64` (76, MIME) and `openssl base64` (64) print it. */
const WRAP_WIDTHS = [76, 64] as const;

export type Encoding =
  | 'verbatim'
  | 'base64'
  | 'base64 at offset 1'
  | 'base64 at offset 2'
  | 'base64url'
  | 'base64url at offset 1'
  | 'base64url at offset 2'
  | 'base64 wrapped at 76'
  | 'base64 wrapped at 64'
  | 'hex'
  | 'HEX'
  | 'url-encoded'
  | 'form-encoded'
  | 'json-escaped'
  | 'html-escaped';

/** A part of a value that is searched for on its own, in every encoding. */
export interface SecretPart {
  /** `whole value`, `line 3`, `field db.password`: never the value. */
  name: string;
  text: string;
  /** Where the part sits in the value as given (UTF-16 index), when it is a plain substring of it. */
  offset?: number;
}

export interface SecretForm {
  /** The secret's label, as the caller named it (a sops key, `#0`). */
  secret: string;
  part: string;
  encoding: Encoding;
  text: string;
  /** How it is made from the part (for a host that makes it itself). */
  recipe: Recipe;
  /** The part it encodes: its text and where it sits in the value. */
  source: SecretPart;
}

/** What a finding says: the secret, the part and the encoding, never the value. */
export function formName(form: Pick<SecretForm, 'part' | 'encoding'>): string {
  return form.encoding === 'verbatim' ? form.part : `${form.part}, ${form.encoding}`;
}

const BASE64_URL = (text: string) => text.replaceAll('+', '-').replaceAll('/', '_');

function distinctLeaves(node: unknown, path: string[], out: SecretPart[]): void {
  if (typeof node === 'string') out.push({ name: `field ${path.join('.') || '(root)'}`, text: node });
  else if (Array.isArray(node))
    node.forEach((item, index) => {
      distinctLeaves(item, [...path, String(index)], out);
    });
  else if (node && typeof node === 'object') for (const [key, value] of Object.entries(node)) distinctLeaves(value, [...path, key], out);
}

const DOTENV_LINE = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(.*?)\s*$/;

/** The string fields of a structured value (dotenv, JSON, YAML); none for plain text. */
export function structuredFields(value: string): SecretPart[] {
  const lines = value.split(/\r?\n/).filter((line) => line.trim() !== '' && !line.trim().startsWith('#'));
  if (lines.length > 0 && lines.every((line) => DOTENV_LINE.test(line))) {
    return lines.map((line) => {
      const [, key, raw] = DOTENV_LINE.exec(line)!;
      const quoted = /^(['"])(.*)\1$/.exec(raw!);
      return { name: `field ${key}`, text: quoted ? quoted[2]! : raw! };
    });
  }
  // Only a mapping or a sequence has fields: plain tokens skip the parser.
  if (!/^\s*[[{]|:\s|^\s*-\s/m.test(value)) return [];
  let parsed: unknown;
  try {
    parsed = parseYaml(value); // YAML is a superset of JSON
  } catch {
    return [];
  }
  if (!parsed || typeof parsed !== 'object') return [];
  const out: SecretPart[] = [];
  distinctLeaves(parsed, [], out);
  return out;
}

/** The parts of a value searched on their own: the whole, each long line, each long field. */
export function secretParts(value: string): SecretPart[] {
  const normalised = value.replace(/\r\n/g, '\n');
  const whole = normalised.trim();
  const parts: SecretPart[] = [];
  const seen = new Set<string>();
  const add = (part: SecretPart, minimum: number) => {
    if (part.text.length < minimum || seen.has(part.text)) return;
    seen.add(part.text);
    const offset = value.indexOf(part.text);
    parts.push(offset >= 0 ? { ...part, offset } : { name: part.name, text: part.text });
  };
  add({ name: 'whole value', text: whole }, MIN_VALUE_LENGTH);
  // As read from a file, with its newline: redaction then leaves no stray line end behind.
  if (value !== whole) add({ name: 'whole value', text: value }, MIN_VALUE_LENGTH);
  if (whole.includes('\n')) {
    whole.split('\n').forEach((line, index) => {
      const trimmed = line.trim();
      // PEM armour is the same in every key: it names no secret.
      if (!trimmed.startsWith('-----')) add({ name: `line ${index + 1}`, text: trimmed }, MIN_PART_LENGTH);
    });
  }
  for (const field of structuredFields(whole)) add({ ...field, text: field.text.trim() }, MIN_PART_LENGTH);
  return parts;
}

/** A per-byte encoding: each byte of the source written as a fixed string (or kept, where undefined). */
export type ByteTable = 'url' | 'form' | 'json' | 'json-slash' | 'html';

/**
 * How a form is made from its part's bytes, so that a host with only POSIX awk can make
 * the same form (helpers/sops/host-copies.ts) and must agree with this file byte for byte.
 */
export type Recipe =
  | { kind: 'verbatim' }
  /** Characters [from, to) of the padded standard base64 of `zeros` zero bytes and the part; `url` maps + / to - _. */
  | { kind: 'base64'; zeros: 0 | 1 | 2; from: number; to: number; url: boolean }
  | { kind: 'hex'; upper: boolean }
  | { kind: 'bytes'; table: ByteTable }
  /** Python's json.dumps: non-ASCII characters as \\uXXXX (per UTF-16 unit, so made here only). */
  | { kind: 'json-ascii' };

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** What `table` writes for one byte; undefined keeps the byte as it is (non-ASCII text in JSON and HTML). */
export function byteForm(table: ByteTable, byte: number): string | undefined {
  const hex = byte.toString(16).toUpperCase().padStart(2, '0');
  if (byte >= 0x80) return table === 'url' || table === 'form' ? `%${hex}` : undefined;
  const char = String.fromCharCode(byte);
  switch (table) {
    case 'url':
      return encodeURIComponent(char);
    case 'form':
      // application/x-www-form-urlencoded, as an HTML form and URLSearchParams write it: space as +.
      return new URLSearchParams([['', char]]).toString().slice(1);
    case 'json':
      return JSON.stringify(char).slice(1, -1);
    case 'json-slash':
      // PHP's json_encode escapes slashes.
      return char === '/' ? '\\/' : JSON.stringify(char).slice(1, -1);
    case 'html':
      return HTML_ESCAPES[char] ?? char;
  }
}

/**
 * The base64 of a part that starts `zeros` bytes (mod 3) into a larger encoded blob: the
 * characters whose six bits lie wholly inside the part, which the part alone decides.
 */
export function base64Core(length: number, zeros: 0 | 1 | 2, url: boolean): Extract<Recipe, { kind: 'base64' }> {
  return { kind: 'base64', zeros, from: Math.ceil((8 * zeros) / 6), to: Math.floor((8 * (zeros + length)) / 6), url };
}

/** The form a recipe makes of a part. */
export function applyRecipe(recipe: Recipe, text: string): string {
  const bytes = Buffer.from(text, 'utf8');
  switch (recipe.kind) {
    case 'verbatim':
      return text;
    case 'base64': {
      const encoded = Buffer.concat([Buffer.alloc(recipe.zeros), bytes])
        .toString('base64')
        .slice(recipe.from, recipe.to);
      return recipe.url ? BASE64_URL(encoded) : encoded;
    }
    case 'hex':
      return recipe.upper ? bytes.toString('hex').toUpperCase() : bytes.toString('hex');
    case 'bytes':
      return Buffer.concat(
        [...bytes].map((byte) => Buffer.from(byteForm(recipe.table, byte) ?? String.fromCharCode(byte), byte >= 0x80 ? 'latin1' : 'utf8')),
      ).toString('utf8');
    case 'json-ascii':
      return JSON.stringify(text)
        .slice(1, -1)
        .replace(/[^\x00-\x7f]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
  }
}

export interface Encoded {
  encoding: Encoding;
  recipe: Recipe;
  text: string;
}

/** Every encoding of one part, each text once (the first encoding that gives it names it). */
export function encodings(text: string, minimumBytes = MIN_VALUE_LENGTH): Encoded[] {
  const bytes = Buffer.from(text, 'utf8');
  const recipes: Array<{ encoding: Encoding; recipe: Recipe }> = [];
  const add = (encoding: Encoding, recipe: Recipe) => recipes.push({ encoding, recipe });
  add('verbatim', { kind: 'verbatim' });
  const standardLength = 4 * Math.ceil(bytes.length / 3);
  const unpadded = Math.ceil((bytes.length * 8) / 6);
  // The whole padded encoding first, so redaction takes the padding too; the cores match it embedded.
  add('base64', { kind: 'base64', zeros: 0, from: 0, to: standardLength, url: false });
  ([0, 1, 2] as const).forEach((zeros) => {
    const core = base64Core(bytes.length, zeros, false);
    // Six bits a character: keep the core while it pins down as many bytes as the source needs.
    if ((core.to - core.from) * 6 < minimumBytes * 8) return;
    add(zeros === 0 ? 'base64' : `base64 at offset ${zeros}`, core);
    add(zeros === 0 ? 'base64url' : `base64url at offset ${zeros}`, { ...core, url: true });
  });
  add('base64url', { kind: 'base64', zeros: 0, from: 0, to: unpadded, url: true });
  for (const width of WRAP_WIDTHS) {
    if (standardLength <= width) continue;
    for (let at = 0; at < standardLength; at += width) {
      const to = Math.min(at + width, standardLength);
      if ((Math.min(to, unpadded) - at) * 6 >= minimumBytes * 8) add(`base64 wrapped at ${width}`, { kind: 'base64', zeros: 0, from: at, to, url: false });
    }
  }
  add('hex', { kind: 'hex', upper: false });
  add('HEX', { kind: 'hex', upper: true });
  add('url-encoded', { kind: 'bytes', table: 'url' });
  add('form-encoded', { kind: 'bytes', table: 'form' });
  add('json-escaped', { kind: 'bytes', table: 'json' });
  // Other JSON writers: PHP escapes slashes, Python's json.dumps non-ASCII characters.
  add('json-escaped', { kind: 'bytes', table: 'json-slash' });
  add('json-escaped', { kind: 'json-ascii' });
  // A dashboard prints text HTML-escaped.
  add('html-escaped', { kind: 'bytes', table: 'html' });
  const seen = new Set<string>();
  const out: Encoded[] = [];
  for (const { encoding, recipe } of recipes) {
    const form = applyRecipe(recipe, text);
    if (form.length === 0 || seen.has(form)) continue;
    seen.add(form);
    out.push({ encoding, recipe, text: form });
  }
  return out;
}

/** Every form of one secret, each text once. */
export function secretForms(secret: string, value: string): SecretForm[] {
  const forms: SecretForm[] = [];
  const seen = new Set<string>();
  for (const part of secretParts(value)) {
    const minimum = part.name === 'whole value' ? MIN_VALUE_LENGTH : MIN_PART_LENGTH;
    for (const { encoding, text, recipe } of encodings(part.text, minimum)) {
      if (seen.has(text)) continue;
      seen.add(text);
      forms.push({ secret, part: part.name, encoding, text, recipe, source: part });
    }
  }
  return forms;
}

export interface FormHit {
  /** The index of the secret, in the order given. */
  secret: number;
  form: SecretForm;
  count: number;
}

/**
 * The forms of many secrets, searched together in one pass (Aho-Corasick over bytes). A text
 * that is a form of two secrets counts for both.
 */
export class FormIndex {
  readonly forms: SecretForm[];
  readonly secretOf: Int32Array;
  readonly secretCount: number;
  private readonly matcher: MultiMatcher;

  constructor(secrets: ReadonlyArray<{ label: string; value: string }>, options: MultiMatchOptions & { verbatimOnly?: boolean } = {}) {
    const forms: SecretForm[] = [];
    const secretOf: number[] = [];
    secrets.forEach(({ label, value }, index) => {
      const all = secretForms(label, value);
      for (const form of options.verbatimOnly
        ? all.filter(({ encoding, part }) => encoding === 'verbatim' && (part === 'whole value' || part.startsWith('line ')))
        : all) {
        forms.push(form);
        secretOf.push(index);
      }
    });
    this.forms = forms;
    this.secretOf = Int32Array.from(secretOf);
    this.secretCount = secrets.length;
    this.matcher = new MultiMatcher(
      forms.map(({ text }) => Buffer.from(text, 'utf8')),
      options,
    );
  }

  /** Per secret with a hit, the most frequent form's count (one leak found in several forms counts once) and the forms found. */
  search(content: Uint8Array): Map<number, { count: number; forms: SecretForm[] }> | undefined {
    const counts = this.matcher.counts(content);
    if (!counts) return undefined;
    const bySecret = new Map<number, { count: number; forms: SecretForm[] }>();
    counts.forEach((count, index) => {
      if (count === 0) return;
      const secret = this.secretOf[index]!;
      const entry = bySecret.get(secret) ?? { count: 0, forms: [] };
      entry.count = Math.max(entry.count, count);
      entry.forms.push(this.forms[index]!);
      bySecret.set(secret, entry);
    });
    return bySecret;
  }

  /** Character ranges of every form found in `text`, merged where they overlap. */
  ranges(text: string): Array<[number, number]> {
    const bytes = Buffer.from(text, 'utf8');
    const found = this.matcher.ranges(bytes);
    if (found.length === 0) return [];
    found.sort((a, b) => a.start - b.start || b.end - a.end);
    const merged: Array<[number, number]> = [];
    for (const { start, end } of found) {
      const last = merged.at(-1);
      if (last && start <= last[1]) last[1] = Math.max(last[1], end);
      else merged.push([start, end]);
    }
    // Byte offsets to string offsets: a valid UTF-8 pattern starts and ends on character boundaries.
    if (bytes.length === text.length) return merged;
    return merged.map(([start, end]) => [bytes.toString('utf8', 0, start).length, bytes.toString('utf8', 0, end).length]);
  }
}

/**
 * Which secrets each text holds, in which forms: one line per secret and place, naming the
 * secret, the place and the forms (`webhook_hmac in the log of build #3 (as line 2, base64)`),
 * never the value.
 */
export function secretsInTexts(secrets: Readonly<Record<string, string>>, texts: ReadonlyArray<{ where: string; text: string }>): string[] {
  const labels = Object.keys(secrets);
  const index = new FormIndex(labels.map((label) => ({ label, value: secrets[label]! })));
  const found: string[] = [];
  for (const { where, text } of texts) {
    const hits = index.search(Buffer.from(text, 'utf8'));
    for (const [secret, { forms }] of hits ?? []) {
      found.push(`${labels[secret]} in the ${where} (as ${[...new Set(forms.map(formName))].join('; ')})`);
    }
  }
  return found;
}
