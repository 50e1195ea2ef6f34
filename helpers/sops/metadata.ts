/** The sops block: its fields, its key slots, and the rule for which leaves are encrypted. */
import { SopsError } from './error.ts';
import { goRegex, type Rule } from './leaves.ts';
import { toPlain } from './parse.ts';
import type { TreeNode } from './tree.ts';

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

export interface ParsedMetadata {
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

export function parseMetadata(node: TreeNode, source: string): ParsedMetadata {
  const raw = asRecord(toPlain(node));
  let groupSource = raw;
  if (raw.key_groups !== undefined && raw.key_groups !== null) {
    const groups = asList(raw.key_groups);
    if (groups.length > 1) {
      throw new SopsError(
        'unsupported-feature',
        source,
        `${source} splits its data key over ${groups.length} key groups (Shamir); this codec supports a single key group`,
      );
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
  for (const field of [
    'unencrypted_suffix',
    'encrypted_suffix',
    'unencrypted_regex',
    'encrypted_regex',
    'unencrypted_comment_regex',
    'encrypted_comment_regex',
  ] as const) {
    const value = optionalString(raw, field);
    if (value !== undefined) metadata[field] = value;
  }
  if (raw.mac_only_encrypted === true) metadata.mac_only_encrypted = true;
  const rules = (
    ['unencrypted_suffix', 'encrypted_suffix', 'unencrypted_regex', 'encrypted_regex', 'unencrypted_comment_regex', 'encrypted_comment_regex'] as const
  ).filter((field) => metadata[field] !== undefined);
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
