/** Decrypting a sops file (age only), verifying every value's tag and the file's MAC; reading the result. */
import { createHash, type Hash } from 'node:crypto';
import { HarnessError } from '../common/errors.ts';
import { unwrapDataKey } from './age.ts';
import { SopsError } from './error.ts';
import { MAC_ONLY_ENCRYPTED_INIT, additionalData, leafBytes, shouldEncrypt, type Rule } from './leaves.ts';
import { parseMetadata, type SopsMetadata } from './metadata.ts';
import { detectFormat, jsonToTree, toPlain, yamlToTrees } from './parse.ts';
import type { Leaf, TreeNode } from './tree.ts';
import { decryptValue } from './value.ts';

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

function decryptTree(
  node: TreeNode,
  path: string[],
  display: string,
  state: { key: Buffer; rule: Rule; hash: Hash; macOnlyEncrypted: boolean; source: string },
): TreeNode {
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
          throw new SopsError(
            'tampered-value',
            state.source,
            `${state.source}: the value at ${display} is a plain ${leaf.t}, where a sops-encrypted value is expected`,
          );
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
  if (sopsNode?.kind !== 'map') {
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
