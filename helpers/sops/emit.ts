/** Writing trees as sops files: JSON as Go's encoding/json indents it, YAML that Go's yaml.v3 reads back as typed. */
import { Document, Pair, Scalar, YAMLMap, YAMLSeq } from 'yaml';
import { HarnessError } from '../common/errors.ts';
import { resolvePlain, type TreeNode } from './tree.ts';

export function emitJson(node: TreeNode, indent = ''): string {
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

export function emitYaml(node: TreeNode): string {
  const doc = new Document();
  doc.contents = yamlNode(node);
  return doc.toString({ indent: 4, indentSeq: true, lineWidth: 0, blockQuote: 'literal' });
}
