/**
 * The tree as sops's Go code holds it: ordered maps, and leaves typed the way Go typed them
 * (yaml.v3's resolution of plain and tagged scalars, Go's float formatting and timestamps).
 */
export type Leaf =
  | { t: 'str'; v: string; raw?: Buffer }
  | { t: 'int'; v: bigint }
  | { t: 'float'; v: number }
  | { t: 'bool'; v: boolean }
  // `text` is what the file says, `canon` is Go's time.MarshalText, which the MAC hashes.
  | { t: 'time'; text: string; canon: string }
  | { t: 'bytes'; v: Buffer };

export type TreeNode =
  | { kind: 'map'; entries: Array<[string, TreeNode]> }
  | { kind: 'list'; items: TreeNode[] }
  | { kind: 'leaf'; leaf: Leaf }
  | { kind: 'null' };

export const INT64_MIN = -(2n ** 63n);
export const INT64_MAX = 2n ** 63n - 1n;
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
  const match = /^(\d{4})-(\d{1,2})-(\d{1,2})(?:([Tt ])(\d{1,2}):(\d{1,2}):(\d{1,2})(?:[.,](\d+))?(Z|[+-]\d{2}:\d{2})?)?$/.exec(text);
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
export function resolvePlain(text: string): Leaf | null {
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
export function resolveTagged(tag: string, text: string, where: () => string): Leaf | null {
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
  const got =
    resolved === null ? '!!null' : { str: '!!str', int: '!!int', float: '!!float', bool: '!!bool', time: '!!timestamp', bytes: '!!binary' }[resolved.t];
  if (got === short) return resolved;
  if (short === '!!float' && resolved?.t === 'int') return { t: 'float', v: Number(resolved.v) };
  throw new Error(`${where()}: cannot decode ${got} as ${short}`);
}
