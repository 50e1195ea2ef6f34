/**
 * Which leaves sops encrypts (sops.go shouldBeEncrypted) and how a leaf is hashed into the MAC
 * (ToBytes), with the additional data that binds a value to its key path.
 */
import { SopsError } from './error.ts';
import { goFormatFloat, type Leaf } from './tree.ts';

export type Rule =
  | { kind: 'unencrypted_suffix' | 'encrypted_suffix'; value: string }
  | { kind: 'unencrypted_regex' | 'encrypted_regex'; value: string; regex: RegExp };

/** Go RE2 patterns as JS: a leading (?flags) group becomes JS flags; the rest is close enough. */
export function goRegex(pattern: string, field: string, source: string): RegExp {
  let body = pattern;
  let flags = '';
  const inline = /^\(\?([imsU]+)\)/.exec(body);
  if (inline) {
    if (inline[1]!.includes('U'))
      throw new SopsError('unsupported-feature', source, `${source}: sops.${field} uses the (?U) flag, which this codec does not support`);
    flags = inline[1]!;
    body = body.slice(inline[0].length);
  }
  try {
    return new RegExp(body, flags);
  } catch {
    throw new SopsError('malformed', source, `${source}: sops.${field} is not a regular expression this codec can use`);
  }
}

export function shouldEncrypt(path: string[], rule: Rule): boolean {
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

export function leafBytes(leaf: Leaf): Buffer {
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

export const MAC_ONLY_ENCRYPTED_INIT = Buffer.from('8a3fd2ad54ce66527b1034f3d147be0b0b975b3bf44f72c6fdadec8176f27d69', 'hex');

/** The additional data sops binds a value to: its key path, ':'-joined, with a trailing ':'. */
export function additionalData(path: string[]): string {
  return `${path.join(':')}:`;
}
