/** Reading sops files (YAML or JSON) into trees, and trees back into plain JavaScript. */
import { isAlias, isMap, isScalar, isSeq, parseAllDocuments, type Document as YamlDocument } from 'yaml';
import { SopsError } from './error.ts';
import { resolvePlain, resolveTagged, type Leaf, type TreeNode } from './tree.ts';

export function yamlToTrees(text: string, source: string): TreeNode[] {
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
export function jsonToTree(text: string, source: string): TreeNode {
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

export function detectFormat(text: string): 'yaml' | 'json' {
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) return 'json';
  } catch {
    // Not JSON, so YAML.
  }
  return 'yaml';
}

/** The tree as plain JavaScript: objects, arrays, strings, numbers (bigint past 2^53), booleans, null. */
export function toPlain(node: TreeNode): unknown {
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
