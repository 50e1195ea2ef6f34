/** Encrypting a tree into a sops file (sops 3.9 layout, age recipients only): what the lab writes its secrets with. */
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { Encrypter, armor } from 'age-encryption';
import { HarnessError } from '../common/errors.ts';
import { registerSecret } from '../common/redact.ts';
import { emitJson, emitYaml } from './emit.ts';
import { additionalData, goRegex, leafBytes, shouldEncrypt, type Rule } from './leaves.ts';
import { INT64_MAX, INT64_MIN, type TreeNode } from './tree.ts';
import { encryptValue } from './value.ts';

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
  throw new HarnessError(
    `encryptSops: ${display || 'the tree'} holds a ${kind}, which sops cannot store (use strings, numbers, booleans, null, Dates, arrays, plain objects)`,
  );
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
