/**
 * The kept-host record, `ACCEPT_STATE_DIR/kept.json`: written when a cold run keeps its
 * throwaway (ACCEPT_KEEP), read by warm runs and `accept down`. Only this module touches the file.
 * It holds the facts of the host and nothing the user configures: a warm run reads the proxy,
 * CA, tokens, domain and repos from the configuration it is given.
 */
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HarnessError } from '../helpers/common/errors.ts';
import type { HostFacts, TargetKind } from './run-context.ts';

export const KEPT_SCHEMA_VERSION = 2;
export const KEPT_FILE = 'kept.json';

export interface KeptHost {
  schemaVersion: typeof KEPT_SCHEMA_VERSION;
  runId: string;
  target: Exclude<TargetKind, 'ssh'>;
  /** The Incus API the host lives behind. */
  server: string;
  /** The target's generation when the host was built (the lab: when its repos and keys were generated). */
  generation?: string;
  keptAt: string;
  host: HostFacts;
}

/** A kept record that cannot be used: stale, of another version, or not a record at all. */
export class KeptHostError extends HarnessError {
  override readonly name: string = 'KeptHostError';
  constructor(
    readonly file: string,
    cause: string,
  ) {
    super(`${file}: ${cause}; run a cold run again to keep a fresh one (\`ACCEPT_KEEP=always npm run accept\`), or \`npx accept down\` to forget it`);
  }
}

export const keptFile = (stateDir: string): string => join(stateDir, KEPT_FILE);

export async function writeKept(stateDir: string, record: Omit<KeptHost, 'schemaVersion' | 'keptAt'>): Promise<string> {
  const file = keptFile(stateDir);
  await mkdir(stateDir, { recursive: true });
  const full: KeptHost = { schemaVersion: KEPT_SCHEMA_VERSION, keptAt: new Date().toISOString(), ...record };
  await writeFile(`${file}.tmp`, `${JSON.stringify(full, null, 2)}\n`, { mode: 0o600 });
  await rename(`${file}.tmp`, file);
  return file;
}

export async function forgetKept(stateDir: string): Promise<void> {
  await rm(keptFile(stateDir), { force: true });
}

/** The record, validated; undefined when there is none. */
export async function readKept(stateDir: string): Promise<KeptHost | undefined> {
  const file = keptFile(stateDir);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new KeptHostError(file, `cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  return parseKept(text, file);
}

export function parseKept(text: string, file: string): KeptHost {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new KeptHostError(file, 'is not JSON');
  }
  const record = value as Partial<KeptHost> & Record<string, unknown>;
  if (typeof record !== 'object' || record === null) throw new KeptHostError(file, 'is not a kept-host record');
  if (record.schemaVersion !== KEPT_SCHEMA_VERSION) {
    const seen =
      record.schemaVersion === undefined ? 'no schemaVersion (written by an older harness)' : `schemaVersion ${JSON.stringify(record.schemaVersion)}`;
    throw new KeptHostError(file, `has ${seen}; this harness reads version ${KEPT_SCHEMA_VERSION}`);
  }
  const problems: string[] = [];
  const str = (value: unknown, name: string) => {
    if (typeof value !== 'string' || value === '') problems.push(`${name} is not a non-empty string`);
  };
  str(record.runId, 'runId');
  str(record.server, 'server');
  str(record.keptAt, 'keptAt');
  if (record.target !== 'lab' && record.target !== 'incus') problems.push(`target is ${JSON.stringify(record.target)}, not lab or incus`);
  if (record.generation !== undefined) str(record.generation, 'generation');
  const host = record.host as Partial<HostFacts> | undefined;
  if (!host || typeof host !== 'object') problems.push('host is missing');
  else {
    for (const key of ['name', 'project', 'createdAt', 'expiresAt'] as const) str(host[key], `host.${key}`);
    if (!host.https || typeof host.https.host !== 'string' || !Number.isInteger(host.https.port)) problems.push('host.https is not {host, port}');
    if (!Array.isArray(host.ledger)) problems.push('host.ledger is not a list');
    if (host.forgeUrl !== undefined && typeof host.forgeUrl !== 'string') problems.push('host.forgeUrl is not a string');
    if (host.runbook !== undefined && (typeof host.runbook !== 'object' || !Array.isArray(host.runbook?.steps))) problems.push('host.runbook has no steps');
  }
  if (problems.length) throw new KeptHostError(file, `is malformed: ${problems.join('; ')}`);
  return record as KeptHost;
}
