/**
 * Our own sops codec (age key groups only), because no sops binary exists on these machines.
 * It reads and writes the sops 3.x file format: values AES-256-GCM encrypted under a data key,
 * the data key age-encrypted per recipient, and a MAC over every plaintext leaf.
 *
 * The MAC hashes leaves as sops's Go code sees them, so typing follows Go's yaml.v3 (for YAML)
 * and encoding/json (for JSON, where every number is a float64), not JavaScript's parsers.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes, type Hash } from 'node:crypto';
import { Decrypter, Encrypter, armor, identityToRecipient } from 'age-encryption';
import {
  Document,
  Pair,
  Scalar,
  YAMLMap,
  YAMLSeq,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  parseAllDocuments,
  type Document as YamlDocument,
} from 'yaml';
import { HarnessError } from '../common/errors.ts';
import { redact, registerSecret } from '../common/redact.ts';

export type SopsErrorKind =
  | 'no-matching-key'
  | 'tampered-value'
  | 'mac-mismatch'
  | 'unsupported-key-type'
  | 'unsupported-feature'
  | 'malformed';

export class SopsError extends HarnessError {
  override readonly name = 'SopsError';
  constructor(
    readonly kind: SopsErrorKind,
    readonly source: string,
    message: string,
  ) {
    // Redacted as a last line of defence; messages are built to hold no plaintext anyway.
    super(redact(message));
  }
}

export interface SopsAgeEntry {
  recipient: string;
  enc: string;
}

export interface SopsMetadata {
  age: SopsAgeEntry[];
  lastmodified: string;
  mac: string;
  version: string;
  unencrypted_suffix?: string;
  encrypted_suffix?: string;
  unencrypted_regex?: string;
  encrypted_regex?: string;
  unencrypted_comment_regex?: string;
  encrypted_comment_regex?: string;
  mac_only_encrypted?: boolean;
  /** The sops block as written, for what is not modelled above (pgp, kms, key_groups, …). */
  raw: Record<string, unknown>;
}

export interface SopsDocument {
  /** The decrypted tree without the sops block; an array of trees for a multi-document YAML file. */
  data: unknown;
  metadata: SopsMetadata;
  recipients: string[];
  lastModified: string;
}

export interface DecryptOptions {
  identities: string[];
  format?: 'yaml' | 'json';
  /** Names the file in error messages. */
  source?: string;
}

export interface EncryptOptions {
  recipients: string[];
  format?: 'yaml' | 'json';
  /** Default `_unencrypted`, like sops. Only one of the four rules may be given. */
  unencryptedSuffix?: string;
  encryptedSuffix?: string;
  unencryptedRegex?: string;
  encryptedRegex?: string;
  now?: Date;
}

/** The sops release whose file layout encryptSops writes. */
export const SOPS_FORMAT_VERSION = '3.9.4';

// ---------------------------------------------------------------------------------------------
// The tree as sops's Go code holds it: ordered maps, and leaves typed the way Go typed them.

type Leaf =
  | { t: 'str'; v: string; raw?: Buffer }
  | { t: 'int'; v: bigint }
  | { t: 'float'; v: number }
  | { t: 'bool'; v: boolean }
  // `text` is what the file says, `canon` is Go's time.MarshalText, which the MAC hashes.
  | { t: 'time'; text: string; canon: string }
  | { t: 'bytes'; v: Buffer };

type TreeNode =
  | { kind: 'map'; entries: Array<[string, TreeNode]> }
  | { kind: 'list'; items: TreeNode[] }
  | { kind: 'leaf'; leaf: Leaf }
  | { kind: 'null' };

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

/** strconv.FormatFloat(f, 'f', -1, 64): shortest round-trip digits, never an exponent. */
export function goFormatFloat(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Infinity) return '+Inf';
  if (n === -Infinity) return '-Inf';
  if (Object.is(n, -0)) return '-0';
  const text = n.toString();
  const match = /^(-?)(\d+)(?:\.(\d+))?e([+-]\d+)$/.exec(text);
  if (!match) return text;
  const [, sign = '', whole = '', fraction = '', exponent = '0'] = match;
  const digits = whole + fraction;
  const point = whole.length + Number(exponent);
  if (point <= 0) return `${sign}0.${'0'.repeat(-point)}${digits}`;
  if (point >= digits.length) return sign + digits + '0'.repeat(point - digits.length);
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
}

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/**
 * yaml.v3's parseTimestamp (its four accepted layouts), returning Go's RFC3339Nano rendering,
 * or undefined when Go would not take the text as a timestamp.
 */
function goTimestamp(text: string): string | undefined {
  const match =
    /^(\d{4})-(\d{1,2})-(\d{1,2})(?:([Tt ])(\d{1,2}):(\d{1,2}):(\d{1,2})(?:[.,](\d+))?(Z|[+-]\d{2}:\d{2})?)?$/.exec(text);
  if (!match) return undefined;
  const [, y, mo, d, sep, h, mi, s, frac, zone] = match;
  if (sep === undefined) {
    if (frac !== undefined || zone !== undefined) return undefined;
  } else if (sep === ' ' ? zone !== undefined : zone === undefined) {
    return undefined;
  }
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h ?? 0);
  const minute = Number(mi ?? 0);
  const second = Number(s ?? 0);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  const pad = (value: number, width = 2) => String(value).padStart(width, '0');
  const nanos = (frac ?? '').slice(0, 9).replace(/0+$/, '');
  let offset = 'Z';
  if (zone && zone !== 'Z' && !/^[+-]00:00$/.test(zone)) offset = zone;
  return `${pad(year, 4)}-${pad(month)}-${pad(day)}T${pad(hour)}:${pad(minute)}:${pad(second)}${nanos ? `.${nanos}` : ''}${offset}`;
}

/** strconv.ParseInt(s, 0, 64) and ParseUint(s, 0, 64), as one: undefined when both fail. */
function goParseIntBase0(text: string): bigint | undefined {
  const match = /^([+-]?)(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)$/.exec(text);
  if (!match) return undefined;
  const [, sign, body = ''] = match;
  const digits = /^0[0-7]+$/.test(body) ? `0o${body.slice(1)}` : body;
  const magnitude = BigInt(digits.replace(/^0[XOB]/, (p) => p.toLowerCase()));
  const value = sign === '-' ? -magnitude : magnitude;
  if (value >= INT64_MIN && value <= INT64_MAX) return value;
  // ParseUint takes no sign at all.
  if (sign === '' && value <= UINT64_MAX) return value;
  return undefined;
}

const YAML_STYLE_FLOAT = /^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$/;

/** What yaml.v3 decodes an untagged plain scalar to (resolve.go), as a leaf or null. */
function resolvePlain(text: string): Leaf | null {
  switch (text) {
    case 'true':
    case 'True':
    case 'TRUE':
      return { t: 'bool', v: true };
    case 'false':
    case 'False':
    case 'FALSE':
      return { t: 'bool', v: false };
    case '':
    case '~':
    case 'null':
    case 'Null':
    case 'NULL':
      return null;
    case '.nan':
    case '.NaN':
    case '.NAN':
      return { t: 'float', v: NaN };
    case '.inf':
    case '.Inf':
    case '.INF':
    case '+.inf':
    case '+.Inf':
    case '+.INF':
      return { t: 'float', v: Infinity };
    case '-.inf':
    case '-.Inf':
    case '-.INF':
      return { t: 'float', v: -Infinity };
  }
  const first = text[0] ?? '';
  if (first === '.') {
    if (/^\.[0-9]+([eE][-+]?[0-9]+)?$/.test(text)) return { t: 'float', v: Number(text) };
    return { t: 'str', v: text };
  }
  if (!/[-+0-9]/.test(first)) return { t: 'str', v: text };
  const canon = goTimestamp(text);
  if (canon !== undefined) return { t: 'time', text, canon };
  const plain = text.replaceAll('_', '');
  const int = goParseIntBase0(plain);
  if (int !== undefined) return { t: 'int', v: int };
  if (YAML_STYLE_FLOAT.test(plain)) {
    const value = Number(plain);
    if (Number.isFinite(value)) return { t: 'float', v: value };
  }
  return { t: 'str', v: text };
}

/** A leaf forced by an explicit tag (`!!int 5`), as yaml.v3's resolve(tag, value) does. */
function resolveTagged(tag: string, text: string, where: () => string): Leaf | null {
  const short = tag.replace(/^tag:yaml\.org,2002:/, '!!');
  if (short === '!!str') return { t: 'str', v: text };
  if (short === '!!binary') {
    if (!/^[A-Za-z0-9+/\s]*={0,2}\s*$/.test(text)) throw new Error(`${where()}: !!binary value is not base64`);
    return { t: 'str', v: Buffer.from(text.replace(/\s+/g, ''), 'base64').toString('utf8') };
  }
  if (!['!!bool', '!!int', '!!float', '!!null', '!!timestamp'].includes(short)) return { t: 'str', v: text };
  let resolved = resolvePlain(text);
  if (short === '!!timestamp' && resolved?.t !== 'time') {
    const canon = goTimestamp(text);
    if (canon !== undefined) resolved = { t: 'time', text, canon };
  }
  const got = resolved === null ? '!!null' : { str: '!!str', int: '!!int', float: '!!float', bool: '!!bool', time: '!!timestamp', bytes: '!!binary' }[resolved.t];
  if (got === short) return resolved;
  if (short === '!!float' && resolved?.t === 'int') return { t: 'float', v: Number(resolved.v) };
  throw new Error(`${where()}: cannot decode ${got} as ${short}`);
}

// ---------------------------------------------------------------------------------------------
// Reading files into trees.

function yamlToTrees(text: string, source: string): TreeNode[] {
  const docs = parseAllDocuments(text, { schema: 'failsafe', uniqueKeys: true, prettyErrors: false });
  if (!Array.isArray(docs)) throw new SopsError('malformed', source, `${source} is not YAML`);
  const trees: TreeNode[] = [];
  for (const doc of docs) {
    const error = doc.errors[0];
    if (error) throw new SopsError('malformed', source, `${source} is not valid YAML: ${error.message.split('\n')[0]}`);
    // Aliases are expanded like yaml.v3 does, with a cap against alias bombs.
    let aliases = 0;
    const convert = (node: unknown, where: string): TreeNode => {
      if (isAlias(node)) {
        if (++aliases > 10_000) throw new SopsError('malformed', source, `${source} expands too many YAML aliases`);
        return convert(node.resolve(doc as YamlDocument.Parsed), where);
      }
      if (isMap(node)) {
        const entries: Array<[string, TreeNode]> = [];
        for (const pair of node.items) {
          const key = convert(pair.key, `${where} (a key)`);
          if (key.kind !== 'leaf' || key.leaf.t !== 'str') {
            throw new SopsError('malformed', source, `${source}: ${where || 'the top level'} has a non-string key; sops supports string keys only`);
          }
          entries.push([key.leaf.v, convert(pair.value, where ? `${where}.${key.leaf.v}` : key.leaf.v)]);
        }
        return { kind: 'map', entries };
      }
      if (isSeq(node)) return { kind: 'list', items: node.items.map((item, i) => convert(item, `${where}[${i}]`)) };
      if (node === null || node === undefined) return { kind: 'null' };
      if (!isScalar(node)) throw new SopsError('malformed', source, `${source}: unexpected YAML node at ${where}`);
      const raw = typeof node.source === 'string' ? node.source : String(node.value);
      const explicit = node.tag !== undefined && node.tag !== '!';
      let leaf: Leaf | null;
      try {
        if (explicit) leaf = resolveTagged(node.tag!, raw, () => `${source}: ${where}`);
        else if (node.type === 'PLAIN') leaf = resolvePlain(raw);
        else leaf = { t: 'str', v: String(node.value) };
      } catch (error) {
        throw new SopsError('malformed', source, error instanceof Error ? error.message : String(error));
      }
      return leaf === null ? { kind: 'null' } : { kind: 'leaf', leaf };
    };
    if (doc.contents === null) continue;
    const tree = convert(doc.contents, '');
    if (tree.kind === 'null') continue;
    if (tree.kind !== 'map') throw new SopsError('malformed', source, `${source}: a sops YAML document must be a mapping at the top`);
    trees.push(tree);
  }
  return trees;
}

/** JSON in document order (JSON.parse would move integer-like keys first), numbers as float64. */
function jsonToTree(text: string, source: string): TreeNode {
  let at = 0;
  const fail = (what: string): never => {
    throw new SopsError('malformed', source, `${source} is not valid JSON: ${what} at offset ${at}`);
  };
  const skip = () => {
    while (at < text.length && ' \t\n\r'.includes(text[at]!)) at++;
  };
  const token = (pattern: RegExp): string | undefined => {
    pattern.lastIndex = at;
    const match = pattern.exec(text);
    if (!match) return undefined;
    at += match[0].length;
    return match[0];
  };
  const STRING = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;
  const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
  const string = (): string => JSON.parse(token(STRING) ?? fail('expected a string')) as string;
  const value = (depth: number): TreeNode => {
    if (depth > 1000) fail('nested too deeply');
    skip();
    const c = text[at];
    if (c === '{' || c === '[') {
      at++;
      const close = c === '{' ? '}' : ']';
      const entries: Array<[string, TreeNode]> = [];
      const items: TreeNode[] = [];
      skip();
      if (text[at] === close) {
        at++;
      } else {
        for (;;) {
          skip();
          if (c === '{') {
            const key = string();
            skip();
            if (text[at++] !== ':') fail("expected ':'");
            entries.push([key, value(depth + 1)]);
          } else {
            items.push(value(depth + 1));
          }
          skip();
          const next = text[at++];
          if (next === close) break;
          if (next !== ',') fail(`expected ',' or '${close}'`);
        }
      }
      return c === '{' ? { kind: 'map', entries } : { kind: 'list', items };
    }
    if (c === '"') return { kind: 'leaf', leaf: { t: 'str', v: string() } };
    if (token(/true/y)) return { kind: 'leaf', leaf: { t: 'bool', v: true } };
    if (token(/false/y)) return { kind: 'leaf', leaf: { t: 'bool', v: false } };
    if (token(/null/y)) return { kind: 'null' };
    const number = token(NUMBER);
    if (number === undefined) return fail('unexpected character');
    return { kind: 'leaf', leaf: { t: 'float', v: Number(number) } };
  };
  const tree = value(0);
  skip();
  if (at !== text.length) fail('trailing text');
  if (tree.kind !== 'map') fail('a sops JSON file must be an object at the top');
  return tree;
}

function detectFormat(text: string): 'yaml' | 'json' {
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) return 'json';
  } catch {
    // Not JSON, so YAML.
  }
  return 'yaml';
}

/** The tree as plain JavaScript: objects, arrays, strings, numbers (bigint past 2^53), booleans, null. */
function toPlain(node: TreeNode): unknown {
  switch (node.kind) {
    case 'null':
      return null;
    case 'list':
      return node.items.map(toPlain);
    case 'map':
      // fromEntries defines own properties, so a key named __proto__ stays data.
      return Object.fromEntries(node.entries.map(([key, value]) => [key, toPlain(value)]));
    case 'leaf': {
      const leaf = node.leaf;
      switch (leaf.t) {
        case 'int':
          return leaf.v >= BigInt(Number.MIN_SAFE_INTEGER) && leaf.v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(leaf.v) : leaf.v;
        case 'time':
          return leaf.text;
        default:
          return leaf.v;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Which leaves sops encrypts (sops.go shouldBeEncrypted) and how a leaf is hashed (ToBytes).

type Rule =
  | { kind: 'unencrypted_suffix' | 'encrypted_suffix'; value: string }
  | { kind: 'unencrypted_regex' | 'encrypted_regex'; value: string; regex: RegExp };

/** Go RE2 patterns as JS: a leading (?flags) group becomes JS flags; the rest is close enough. */
function goRegex(pattern: string, field: string, source: string): RegExp {
  let body = pattern;
  let flags = '';
  const inline = /^\(\?([imsU]+)\)/.exec(body);
  if (inline) {
    if (inline[1]!.includes('U')) throw new SopsError('unsupported-feature', source, `${source}: sops.${field} uses the (?U) flag, which this codec does not support`);
    flags = inline[1]!;
    body = body.slice(inline[0].length);
  }
  try {
    return new RegExp(body, flags);
  } catch {
    throw new SopsError('malformed', source, `${source}: sops.${field} is not a regular expression this codec can use`);
  }
}

function shouldEncrypt(path: string[], rule: Rule): boolean {
  switch (rule.kind) {
    case 'unencrypted_suffix':
      return !path.some((key) => key.endsWith(rule.value));
    case 'encrypted_suffix':
      return path.some((key) => key.endsWith(rule.value));
    case 'unencrypted_regex':
      return !path.some((key) => rule.regex.test(key));
    case 'encrypted_regex':
      return path.some((key) => rule.regex.test(key));
  }
}

function leafBytes(leaf: Leaf): Buffer {
  switch (leaf.t) {
    case 'str':
      return leaf.raw ?? Buffer.from(leaf.v, 'utf8');
    case 'int':
      return Buffer.from(leaf.v.toString());
    case 'float':
      return Buffer.from(goFormatFloat(leaf.v));
    case 'bool':
      return Buffer.from(leaf.v ? 'True' : 'False');
    case 'time':
      return Buffer.from(leaf.canon);
    case 'bytes':
      return leaf.v;
  }
}

const MAC_ONLY_ENCRYPTED_INIT = Buffer.from('8a3fd2ad54ce66527b1034f3d147be0b0b975b3bf44f72c6fdadec8176f27d69', 'hex');

/** The additional data sops binds a value to: its key path, ':'-joined, with a trailing ':'. */
function additionalData(path: string[]): string {
  return `${path.join(':')}:`;
}

// ---------------------------------------------------------------------------------------------
// Values: ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]

const ENC_VALUE = /^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]/;

function strictBase64(text: string): Buffer | undefined {
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return undefined;
  return Buffer.from(text, 'base64');
}

function encryptValue(leaf: Leaf, key: Buffer, ad: string): string {
  const iv = randomBytes(32);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(ad, 'utf8'));
  const data = Buffer.concat([cipher.update(leafBytes(leaf)), cipher.final()]);
  const type = leaf.t === 'bytes' ? 'bytes' : leaf.t;
  return `ENC[AES256_GCM,data:${data.toString('base64')},iv:${iv.toString('base64')},tag:${cipher.getAuthTag().toString('base64')},type:${type}]`;
}

type Where = { source: string; display: string };

function decryptValue(text: string, key: Buffer, ad: string, where: Where): Leaf {
  const { source, display } = where;
  const match = ENC_VALUE.exec(text);
  const parts = match ? [strictBase64(match[1]!), strictBase64(match[2]!), strictBase64(match[3]!)] : [];
  const [data, iv, tag] = parts;
  if (!match || !data || !iv || !tag) {
    throw new SopsError('tampered-value', source, `${source}: the value at ${display} is not a sops-encrypted value, where one is expected`);
  }
  let plain: Buffer;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, iv);
    decipher.setAAD(Buffer.from(ad, 'utf8'));
    decipher.setAuthTag(tag);
    plain = Buffer.concat([decipher.update(data), decipher.final()]);
  } catch {
    throw new SopsError(
      'tampered-value',
      source,
      `${source}: the value at ${display} fails AES-GCM authentication: it was modified, or moved from another key`,
    );
  }
  const text8 = plain.toString('utf8');
  registerSecret(text8);
  const bad = (what: string): never => {
    throw new SopsError('malformed', source, `${source}: the value at ${display} is typed ${match[4]} but its plaintext is not ${what}`);
  };
  switch (match[4]) {
    case 'str':
    case 'comment':
      return { t: 'str', v: text8, raw: plain };
    case 'int': {
      if (!/^[+-]?\d+$/.test(text8)) return bad('an integer');
      const v = BigInt(text8);
      return v >= INT64_MIN && v <= INT64_MAX ? { t: 'int', v } : bad('a 64-bit integer');
    }
    case 'float': {
      if (/^[+-]?(inf|infinity)$/i.test(text8)) return { t: 'float', v: text8.startsWith('-') ? -Infinity : Infinity };
      if (/^nan$/i.test(text8)) return { t: 'float', v: NaN };
      const v = Number(text8);
      return /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text8) && Number.isFinite(v) ? { t: 'float', v } : bad('a float');
    }
    case 'bool': {
      if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(text8)) return { t: 'bool', v: true };
      if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(text8)) return { t: 'bool', v: false };
      return bad('a boolean');
    }
    case 'time':
      return { t: 'time', text: text8, canon: text8 };
    case 'bytes':
      return { t: 'bytes', v: plain };
    default:
      throw new SopsError('malformed', source, `${source}: the value at ${display} has an unknown sops type ${JSON.stringify(match[4])}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Metadata.

const KEY_TYPES: Array<[string, string[]]> = [
  ['pgp', ['fp']],
  ['kms', ['arn']],
  ['gcp_kms', ['resource_id']],
  ['azure_kv', ['vault_url', 'name']],
  ['hc_vault', ['vault_address', 'engine_path', 'key_name']],
  ['hckms', ['key_id']],
];

function asRecord(value: unknown): Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

function asList(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

function optionalString(raw: Record<string, unknown>, field: string): string | undefined {
  const value = raw[field];
  return value === undefined || value === null || value === '' ? undefined : String(value);
}

interface ParsedMetadata {
  metadata: SopsMetadata;
  rule: Rule;
  lastModifiedAd: string;
  /** Descriptions of key slots this codec cannot use, e.g. "pgp 7FB8…". */
  otherKeys: string[];
}

/** time.Parse(RFC3339) then Format(RFC3339): the MAC's additional data. */
function normalizeLastModified(text: string, source: string): string {
  const match = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.\d+)?(Z|[+-]\d{2}:\d{2})$/.exec(text);
  if (!match) throw new SopsError('malformed', source, `${source}: sops.lastmodified ${JSON.stringify(text)} is not an RFC 3339 time`);
  const zone = match[2] === 'Z' || /^[+-]00:00$/.test(match[2]!) ? 'Z' : match[2]!;
  return `${match[1]}${zone}`;
}

function parseMetadata(node: TreeNode, source: string): ParsedMetadata {
  const raw = asRecord(toPlain(node));
  let groupSource = raw;
  if (raw.key_groups !== undefined && raw.key_groups !== null) {
    const groups = asList(raw.key_groups);
    if (groups.length > 1) {
      throw new SopsError('unsupported-feature', source, `${source} splits its data key over ${groups.length} key groups (Shamir); this codec supports a single key group`);
    }
    groupSource = asRecord(groups[0]);
  }
  const age: SopsAgeEntry[] = asList(groupSource.age).map((entry) => {
    const record = asRecord(entry);
    return { recipient: String(record.recipient ?? ''), enc: String(record.enc ?? '') };
  });
  const otherKeys: string[] = [];
  for (const [type, fields] of KEY_TYPES) {
    const entries = asList(groupSource[type]);
    if (entries.length === 0) continue;
    const names = entries.map((entry) => fields.map((field) => String(asRecord(entry)[field] ?? '?')).join('/'));
    otherKeys.push(`${type} (${names.join(', ')})`);
  }
  const lastmodified = raw.lastmodified === undefined || raw.lastmodified === null ? '' : String(raw.lastmodified);
  if (!lastmodified) throw new SopsError('malformed', source, `${source}: sops.lastmodified is missing`);
  const metadata: SopsMetadata = {
    age,
    lastmodified,
    mac: raw.mac === undefined || raw.mac === null ? '' : String(raw.mac),
    version: raw.version === undefined || raw.version === null ? '' : String(raw.version),
    raw,
  };
  for (const field of ['unencrypted_suffix', 'encrypted_suffix', 'unencrypted_regex', 'encrypted_regex', 'unencrypted_comment_regex', 'encrypted_comment_regex'] as const) {
    const value = optionalString(raw, field);
    if (value !== undefined) metadata[field] = value;
  }
  if (raw.mac_only_encrypted === true) metadata.mac_only_encrypted = true;
  const rules = (['unencrypted_suffix', 'encrypted_suffix', 'unencrypted_regex', 'encrypted_regex', 'unencrypted_comment_regex', 'encrypted_comment_regex'] as const).filter(
    (field) => metadata[field] !== undefined,
  );
  if (rules.length > 1) {
    throw new SopsError('malformed', source, `${source} sets ${rules.join(' and ')}; sops allows only one of them`);
  }
  const field = rules[0] ?? 'unencrypted_suffix';
  const value = metadata[field] ?? '_unencrypted';
  let rule: Rule;
  if (field === 'unencrypted_comment_regex' || field === 'encrypted_comment_regex') {
    throw new SopsError('unsupported-feature', source, `${source} uses sops.${field}, which this codec does not support (comments are not tracked)`);
  } else if (field === 'unencrypted_regex' || field === 'encrypted_regex') {
    rule = { kind: field, value, regex: goRegex(value, field, source) };
  } else {
    rule = { kind: field, value };
  }
  return { metadata, rule, lastModifiedAd: normalizeLastModified(lastmodified, source), otherKeys };
}

// ---------------------------------------------------------------------------------------------
// Public API.

/** Reads an age identity file: `#` comments, blank lines and `AGE-SECRET-KEY-1…` lines. */
export function parseAgeIdentities(text: string, source: string): string[] {
  const identities: string[] = [];
  text.split(/\r?\n/).forEach((line, index) => {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    if (/^AGE-SECRET-KEY-1[0-9A-Z]+$/.test(trimmed)) {
      registerSecret(trimmed);
      identities.push(trimmed);
      return;
    }
    // The line is not quoted: it might be a mangled key.
    throw new SopsError('malformed', source, `${source}: line ${index + 1} is neither a comment nor an age X25519 identity (AGE-SECRET-KEY-1…)`);
  });
  if (identities.length === 0) {
    throw new SopsError('malformed', source, `${source} holds no age identity (no AGE-SECRET-KEY-1… line)`);
  }
  return identities;
}

/** The age recipients (age1…, public) of identities: what a sops file lists for the keys that open it. */
export async function recipientsOf(identities: string[]): Promise<string[]> {
  return Promise.all(identities.map((identity) => identityToRecipient(identity)));
}

async function unwrapDataKey(parsed: ParsedMetadata, identities: string[], source: string): Promise<Buffer> {
  const { age } = parsed.metadata;
  if (age.length === 0) {
    if (parsed.otherKeys.length > 0) {
      throw new SopsError(
        'unsupported-key-type',
        source,
        `${source} has no age recipient; its data key is encrypted only for ${parsed.otherKeys.join('; ')}, which this codec cannot use (age only)`,
      );
    }
    throw new SopsError('malformed', source, `${source}: the sops block lists no key that holds the data key`);
  }
  const decrypter = new Decrypter();
  identities.forEach((identity, index) => {
    registerSecret(identity);
    try {
      decrypter.addIdentity(identity);
    } catch {
      // The library's message may quote the key, so it is not passed on.
      throw new SopsError('malformed', source, `age identity #${index + 1} (for ${source}) is not a valid age identity`);
    }
  });
  const problems: string[] = [];
  for (const entry of age) {
    let file: Uint8Array;
    try {
      file = armor.decode(entry.enc);
    } catch {
      problems.push(`${entry.recipient}: enc is not an armored age file`);
      continue;
    }
    try {
      const key = Buffer.from(await decrypter.decrypt(file));
      if (key.length !== 32) {
        throw new SopsError('malformed', source, `${source}: the data key for ${entry.recipient} is ${key.length} bytes, not 32`);
      }
      return key;
    } catch (error) {
      if (error instanceof SopsError) throw error;
      const message = error instanceof Error ? error.message : String(error);
      if (!/no identity matched/.test(message)) problems.push(`${entry.recipient}: ${redact(message)}`);
    }
  }
  const recipients = age.map((entry) => entry.recipient).join(',');
  throw new SopsError(
    'no-matching-key',
    source,
    `none of the ${identities.length} age identities opens any of the ${age.length} recipients ${recipients} in ${source}` +
      (problems.length ? ` (also: ${problems.join('; ')})` : ''),
  );
}

function decryptTree(node: TreeNode, path: string[], display: string, state: { key: Buffer; rule: Rule; hash: Hash; macOnlyEncrypted: boolean; source: string }): TreeNode {
  switch (node.kind) {
    case 'null':
      return node;
    case 'map':
      return {
        kind: 'map',
        entries: node.entries.map(([key, value]) => [key, decryptTree(value, [...path, key], display ? `${display}.${key}` : key, state)]),
      };
    case 'list':
      // List items are bound to the list's own path: sops does not add an index.
      return { kind: 'list', items: node.items.map((item, i) => decryptTree(item, path, `${display}[${i}]`, state)) };
    case 'leaf': {
      const encrypted = shouldEncrypt(path, state.rule);
      let leaf = node.leaf;
      if (encrypted) {
        if (leaf.t !== 'str') {
          throw new SopsError('tampered-value', state.source, `${state.source}: the value at ${display} is a plain ${leaf.t}, where a sops-encrypted value is expected`);
        }
        // sops leaves empty strings empty rather than encrypting them.
        if (leaf.v !== '') leaf = decryptValue(leaf.v, state.key, additionalData(path), { source: state.source, display });
      }
      if (!state.macOnlyEncrypted || encrypted) state.hash.update(leafBytes(leaf));
      return { kind: 'leaf', leaf };
    }
  }
}

/** Decrypts a sops file (age only), verifying every value's tag and the file's MAC. */
export async function decryptSops(text: string, options: DecryptOptions): Promise<SopsDocument> {
  const source = options.source ?? 'the sops document';
  const format = options.format ?? detectFormat(text);
  const trees = format === 'json' ? [jsonToTree(text, source)] : yamlToTrees(text, source);
  if (trees.length === 0) throw new SopsError('malformed', source, `${source} is empty`);
  // Like sops: the metadata comes from the first document, and every document loses its sops key.
  const firstMap = trees[0]!;
  const sopsNode = firstMap.kind === 'map' ? firstMap.entries.find(([key]) => key === 'sops')?.[1] : undefined;
  if (!sopsNode || sopsNode.kind !== 'map') {
    throw new SopsError('malformed', source, `${source} has no sops metadata (no top-level "sops" mapping): it is not a sops-encrypted file`);
  }
  const parsed = parseMetadata(sopsNode, source);
  const key = await unwrapDataKey(parsed, options.identities, source);

  const hash = createHash('sha512');
  const macOnlyEncrypted = parsed.metadata.mac_only_encrypted === true;
  if (macOnlyEncrypted) hash.update(MAC_ONLY_ENCRYPTED_INIT);
  const state = { key, rule: parsed.rule, hash, macOnlyEncrypted, source };
  const decrypted = trees.map((tree) => {
    const entries = tree.kind === 'map' ? tree.entries.filter(([k]) => k !== 'sops') : [];
    return decryptTree({ kind: 'map', entries }, [], '', state);
  });
  const computed = hash.digest('hex').toUpperCase();

  if (parsed.metadata.mac === '') {
    throw new SopsError('mac-mismatch', source, `MAC mismatch in ${source}: the file has no MAC`);
  }
  let fileMac: Leaf;
  try {
    fileMac = decryptValue(parsed.metadata.mac, key, parsed.lastModifiedAd, { source, display: 'sops.mac' });
  } catch {
    throw new SopsError(
      'mac-mismatch',
      source,
      `MAC mismatch in ${source}: sops.mac does not decrypt under sops.lastmodified, so one of them was modified after the file was encrypted`,
    );
  }
  if (fileMac.t !== 'str' || fileMac.v !== computed) {
    throw new SopsError('mac-mismatch', source, `MAC mismatch in ${source}: the file was modified after it was encrypted`);
  }
  const data = decrypted.map(toPlain);
  return {
    data: data.length === 1 ? data[0] : data,
    metadata: parsed.metadata,
    recipients: parsed.metadata.age.map((entry) => entry.recipient),
    lastModified: parsed.metadata.lastmodified,
  };
}

/** Plain JavaScript to a tree, typed the way sops types what it reads. */
function fromJs(value: unknown, display: string): TreeNode {
  if (value === null) return { kind: 'null' };
  if (typeof value === 'string') return { kind: 'leaf', leaf: { t: 'str', v: value } };
  if (typeof value === 'boolean') return { kind: 'leaf', leaf: { t: 'bool', v: value } };
  if (typeof value === 'bigint') {
    if (value < INT64_MIN || value > INT64_MAX) throw new HarnessError(`encryptSops: ${display} does not fit a 64-bit integer`);
    return { kind: 'leaf', leaf: { t: 'int', v: value } };
  }
  if (typeof value === 'number') {
    if (Number.isSafeInteger(value)) return { kind: 'leaf', leaf: { t: 'int', v: BigInt(value) } };
    return { kind: 'leaf', leaf: { t: 'float', v: value } };
  }
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) throw new HarnessError(`encryptSops: ${display} is an invalid Date`);
    // A string, not type:time: sops before 3.10 cannot read timestamps at all.
    return { kind: 'leaf', leaf: { t: 'str', v: value.toISOString().replace(/\.?0*Z$/, 'Z') } };
  }
  if (Array.isArray(value)) return { kind: 'list', items: value.map((item, i) => fromJs(item, `${display}[${i}]`)) };
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const entries: Array<[string, TreeNode]> = [];
    for (const [key, item] of Object.entries(value)) {
      if (item === undefined) continue;
      entries.push([key, fromJs(item, display ? `${display}.${key}` : key)]);
    }
    return { kind: 'map', entries };
  }
  // The value itself is never named: it may be a secret.
  const kind = typeof value === 'object' ? ((value as object).constructor?.name ?? 'object') : typeof value;
  throw new HarnessError(`encryptSops: ${display || 'the tree'} holds a ${kind}, which sops cannot store (use strings, numbers, booleans, null, Dates, arrays, plain objects)`);
}

function encryptTree(node: TreeNode, path: string[], state: { key: Buffer; rule: Rule; hash: Hash }): TreeNode {
  switch (node.kind) {
    case 'null':
      return node;
    case 'map':
      return { kind: 'map', entries: node.entries.map(([key, value]) => [key, encryptTree(value, [...path, key], state)]) };
    case 'list':
      return { kind: 'list', items: node.items.map((item) => encryptTree(item, path, state)) };
    case 'leaf': {
      const leaf = node.leaf;
      state.hash.update(leafBytes(leaf));
      if (!shouldEncrypt(path, state.rule) || (leaf.t === 'str' && leaf.v === '')) return node;
      if (leaf.t === 'str') registerSecret(leaf.v);
      return { kind: 'leaf', leaf: { t: 'str', v: encryptValue(leaf, state.key, additionalData(path)) } };
    }
  }
}

const X25519_RECIPIENT = /^age1[02-9ac-hj-np-z]{58}$/;

/** Encrypts a tree into a sops file (sops 3.9 layout, age recipients only). */
export async function encryptSops(tree: Record<string, unknown>, options: EncryptOptions): Promise<string> {
  const format = options.format ?? 'yaml';
  if (options.recipients.length === 0) throw new HarnessError('encryptSops: at least one age recipient is needed');
  for (const recipient of options.recipients) {
    if (!X25519_RECIPIENT.test(recipient)) throw new HarnessError(`encryptSops: ${JSON.stringify(recipient)} is not an age X25519 recipient (age1…)`);
  }
  if (Object.hasOwn(tree, 'sops')) throw new HarnessError('encryptSops: the top-level key "sops" is reserved for sops metadata');
  const given = (
    [
      ['unencrypted_suffix', options.unencryptedSuffix],
      ['encrypted_suffix', options.encryptedSuffix],
      ['unencrypted_regex', options.unencryptedRegex],
      ['encrypted_regex', options.encryptedRegex],
    ] as const
  ).filter(([, value]) => value !== undefined && value !== '');
  if (given.length > 1) throw new HarnessError(`encryptSops: give only one of ${given.map(([field]) => field).join(', ')}`);
  const [field, value] = given[0] ?? (['unencrypted_suffix', '_unencrypted'] as const);
  const rule: Rule =
    field === 'unencrypted_regex' || field === 'encrypted_regex'
      ? { kind: field, value: value!, regex: goRegex(value!, field, 'encryptSops') }
      : { kind: field, value: value! };

  const key = randomBytes(32);
  const hash = createHash('sha512');
  const body = encryptTree(fromJs(tree, ''), [], { key, rule, hash });
  const lastmodified = (options.now ?? new Date()).toISOString().replace(/\.\d+Z$/, 'Z');
  const mac = encryptValue({ t: 'str', v: hash.digest('hex').toUpperCase() }, key, lastmodified);

  const age: TreeNode[] = [];
  for (const recipient of options.recipients) {
    const encrypter = new Encrypter();
    encrypter.addRecipient(recipient);
    const enc = armor.encode(await encrypter.encrypt(key));
    age.push({
      kind: 'map',
      entries: [
        ['recipient', { kind: 'leaf', leaf: { t: 'str', v: recipient } }],
        ['enc', { kind: 'leaf', leaf: { t: 'str', v: enc } }],
      ],
    });
  }
  key.fill(0);
  // sops 3.9 writes the unused key lists too: [] in YAML, null in JSON (Go's nil slice).
  const none: TreeNode = format === 'json' ? { kind: 'null' } : { kind: 'list', items: [] };
  const str = (v: string): TreeNode => ({ kind: 'leaf', leaf: { t: 'str', v } });
  const metadata: TreeNode = {
    kind: 'map',
    entries: [
      ['kms', none],
      ['gcp_kms', none],
      ['azure_kv', none],
      ['hc_vault', none],
      ['age', { kind: 'list', items: age }],
      ['lastmodified', str(lastmodified)],
      ['mac', str(mac)],
      ['pgp', none],
      [field, str(value!)],
      ['version', str(SOPS_FORMAT_VERSION)],
    ],
  };
  const file: TreeNode = { kind: 'map', entries: [...(body.kind === 'map' ? body.entries : []), ['sops', metadata]] };
  return format === 'json' ? emitJson(file) : emitYaml(file);
}

function emitJson(node: TreeNode, indent = ''): string {
  const inner = `${indent}\t`;
  switch (node.kind) {
    case 'null':
      return 'null';
    case 'map':
      if (node.entries.length === 0) return '{}';
      return `{\n${node.entries.map(([key, value]) => `${inner}${JSON.stringify(key)}: ${emitJson(value, inner)}`).join(',\n')}\n${indent}}`;
    case 'list':
      if (node.items.length === 0) return '[]';
      return `[\n${node.items.map((item) => `${inner}${emitJson(item, inner)}`).join(',\n')}\n${indent}]`;
    case 'leaf': {
      const leaf = node.leaf;
      switch (leaf.t) {
        case 'str':
          return JSON.stringify(leaf.v);
        case 'time':
          return JSON.stringify(leaf.text);
        case 'bool':
          return String(leaf.v);
        case 'int':
          return leaf.v.toString();
        case 'float':
          if (!Number.isFinite(leaf.v)) throw new HarnessError('encryptSops: JSON cannot hold NaN or infinity');
          return String(leaf.v);
        case 'bytes':
          return JSON.stringify(leaf.v.toString('utf8'));
      }
    }
  }
}

function yamlNode(node: TreeNode): Scalar | YAMLMap | YAMLSeq {
  switch (node.kind) {
    case 'null':
      return new Scalar(null);
    case 'map': {
      const map = new YAMLMap();
      for (const [key, value] of node.entries) map.items.push(new Pair(yamlString(key), yamlNode(value)));
      return map;
    }
    case 'list': {
      const seq = new YAMLSeq();
      for (const item of node.items) seq.items.push(yamlNode(item));
      return seq;
    }
    case 'leaf': {
      const leaf = node.leaf;
      switch (leaf.t) {
        case 'str':
          return yamlString(leaf.v);
        case 'time':
          // Plain, so that Go reads it back as a timestamp, as it was given.
          return new Scalar(leaf.text);
        case 'float': {
          const scalar = new Scalar(leaf.v);
          // Go would read "1" back as an int.
          scalar.minFractionDigits = 1;
          return scalar;
        }
        case 'bytes':
          return yamlString(leaf.v.toString('utf8'));
        default:
          return new Scalar(leaf.v);
      }
    }
  }
}

/** Quotes strings Go's yaml.v3 would read as something else (e.g. 1_000, 2024-01-01, 0b1). */
function yamlString(text: string): Scalar {
  const scalar = new Scalar(text);
  if (!text.includes('\n')) {
    const resolved = resolvePlain(text);
    if (resolved === null || resolved.t !== 'str') scalar.type = 'QUOTE_DOUBLE';
  }
  return scalar;
}

function emitYaml(node: TreeNode): string {
  const doc = new Document();
  doc.contents = yamlNode(node);
  return doc.toString({ indent: 4, indentSeq: true, lineWidth: 0, blockQuote: 'literal' });
}

/** The top-level string values of a decrypted document, by key: cc-ci's secrets are all of this shape. */
export function topLevelStrings(document: SopsDocument): Record<string, string> {
  const values: Record<string, string> = {};
  for (const [key, value] of Object.entries((document.data ?? {}) as Record<string, unknown>)) {
    if (typeof value === 'string') values[key] = value;
  }
  return values;
}

/** Walks a decrypted tree by keys (array items by index); throws naming the first missing step. */
export function getSopsValue(data: unknown, path: string[]): unknown {
  let current: unknown = data;
  path.forEach((step, index) => {
    const here = path.slice(0, index + 1).join('.');
    if (Array.isArray(current)) {
      const i = /^\d+$/.test(step) ? Number(step) : NaN;
      if (!(i < current.length)) throw new HarnessError(`sops data has no ${here} (the list has ${current.length} items)`);
      current = current[i];
    } else if (current !== null && typeof current === 'object' && Object.hasOwn(current, step)) {
      current = (current as Record<string, unknown>)[step];
    } else {
      throw new HarnessError(`sops data has no ${here}`);
    }
  });
  return current;
}
