/**
 * A signed statement over a run's evidence directory, and the checks that verify it
 * (`accept attest`, `accept verify`; docs/reports.md, "For the adversary").
 *
 * The statement has the shape of an in-toto Statement v1: one subject per evidence file (its path
 * in the directory and its SHA-256), and a predicate of our own, versioned by its predicateType,
 * holding the facts of the run copied from run.json and d8.json. It is written as canonical JSON
 * (sorted keys, no whitespace) so that the SSH signature (`ssh-keygen -Y sign`, in our namespace)
 * covers exact bytes. No crypto here beyond SHA-256 digests: ssh-keygen signs and verifies.
 *
 * This module sits below acceptance/: it reads the run record through the structural types
 * below, and the caller hands it the reader (the run record's validating one).
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HarnessError } from '../common/errors.ts';
import { exec } from '../common/exec.ts';
import { redact } from '../common/redact.ts';

export const STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';
/** Bump the version when a predicate field changes meaning or goes away. */
export const PREDICATE_TYPE = 'https://cc-ci-acceptance/attestation/run/v1';
/** ssh-keygen's -n: a signature made for another purpose (a git commit, a file) never verifies as ours. */
export const SIGNATURE_NAMESPACE = 'cc-ci-acceptance-attestation@v1';
export const ATTESTATION_FILE = 'attestation.json';
export const SIGNATURE_FILE = `${ATTESTATION_FILE}.sig`;
export const RUN_FILE = 'run.json';
export const D8_FILE = 'd8.json';
/** A clock a little ahead of ours is not a forgery; more than this is. */
const FUTURE_SKEW_MS = 5 * 60_000;
const SSH_KEYGEN_TIMEOUT_MS = 30_000;

// ---------------------------------------------------------------------------------------
// What the statement reads: the parts of run.json and d8.json it copies
// ---------------------------------------------------------------------------------------

/** The fields of the run record (acceptance/support/run-record.ts, RunRecord) the predicate copies. */
export interface RunSource {
  runId: string;
  mode: string;
  keptFrom?: string;
  target: { kind: string; label?: string };
  instance?: { name: string; project: string };
  baseRepo?: string;
  instanceRepo?: string;
  commits?: { base?: string; instance?: string };
  harnessVersion: string;
  startedAt: string;
  finishedAt?: string;
  verdict?: { overall: string };
  items: ReadonlyArray<{ id: string; verdict: string; checks: ReadonlyArray<{ machine?: string }> }>;
  cleanup?: { verdict: string };
}

/** The fields of the D8 record (d8.json: acceptance/support/d8.ts, D8Record) the predicate copies. */
export interface D8Source {
  runId: string;
  static?: { toplevel?: string; closureHash?: string };
  running?: { host?: string; toplevel?: string; closureHash?: string };
  identical?: boolean;
  live?: { toplevel?: string };
}

/** What the caller reads from an evidence directory: the validated run record and, if there, d8.json. */
export interface EvidenceRun {
  record: RunSource;
  d8?: D8Source;
}

export type ReadRun = (dir: string) => Promise<EvidenceRun>;

// ---------------------------------------------------------------------------------------
// The statement
// ---------------------------------------------------------------------------------------

export interface Subject {
  /** The file's path relative to the evidence directory, with `/` between parts. */
  name: string;
  digest: { sha256: string };
}

/** The facts of the run: what verify compares with run.json and d8.json as they are now. */
export interface RunFacts {
  run: { id: string; mode: string; keptFrom: string | null; verdict: string | null; startedAt: string; finishedAt: string | null; harnessVersion: string };
  target: { kind: string; label: string | null };
  machines: { throwaway: string | null; running: string | null; project: string | null };
  repos: { base: string | null; instance: string | null };
  commits: { base: string | null; instance: string | null };
  /** From d8.json, when it is of this run: the clean-checkout build, the running cc-ci, the throwaway. */
  system: {
    built: { toplevel: string | null; closureHash: string | null };
    running: { toplevel: string | null; closureHash: string | null };
    throwaway: { toplevel: string | null };
    identical: boolean | null;
  } | null;
  items: Array<{ id: string; verdict: string }>;
  /** C6's cleanup check after teardown; null where there was none (a warm run, a kept throwaway). */
  cleanup: string | null;
}

export interface HarnessIdentity {
  version: string;
  /** The harness checkout's HEAD, with `-dirty` when it has changes; `unknown` outside git. */
  commit: string;
}

export interface RunPredicate extends RunFacts {
  attestedAt: string;
  /** The harness that wrote the statement (the run's own version is run.harnessVersion). */
  attestedBy: HarnessIdentity;
}

export interface Statement {
  _type: typeof STATEMENT_TYPE;
  subject: Subject[];
  predicateType: typeof PREDICATE_TYPE;
  predicate: RunPredicate;
}

/** JSON with sorted keys and no whitespace: the same value always gives the same bytes. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new HarnessError(`canonical JSON has no form for ${value}`);
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map((entry) => (entry === undefined ? 'null' : canonicalJson(entry))).join(',')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, entry]) => entry !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, entry]) => `${JSON.stringify(key)}:${canonicalJson(entry)}`).join(',')}}`;
  }
  throw new HarnessError(`canonical JSON has no form for a ${typeof value}`);
}

const RUNNING_CI = /^(\S+) \(the running cc-ci\)/;

/** The facts of a run, from its run record and its D8 record (ignored when it is another run's). */
export function runFacts({ record, d8 }: EvidenceRun): RunFacts {
  const ours = d8 && d8.runId === record.runId ? d8 : undefined;
  // The running cc-ci is named by d8.json; without it, by the checks that observed it.
  const runningFromChecks = record.items
    .flatMap((item) => item.checks.map((check) => RUNNING_CI.exec(check.machine ?? '')?.[1]))
    .find((name) => name !== undefined);
  return {
    run: {
      id: record.runId,
      mode: record.mode,
      keptFrom: record.keptFrom ?? null,
      verdict: record.verdict?.overall ?? null,
      startedAt: record.startedAt,
      finishedAt: record.finishedAt ?? null,
      harnessVersion: record.harnessVersion,
    },
    target: { kind: record.target.kind, label: record.target.label ?? null },
    machines: {
      throwaway: record.instance?.name ?? null,
      running: ours?.running?.host ?? runningFromChecks ?? null,
      project: record.instance?.project ?? null,
    },
    repos: { base: record.baseRepo ?? null, instance: record.instanceRepo ?? null },
    commits: { base: record.commits?.base ?? null, instance: record.commits?.instance ?? null },
    system: ours
      ? {
          built: { toplevel: ours.static?.toplevel ?? null, closureHash: ours.static?.closureHash ?? null },
          running: { toplevel: ours.running?.toplevel ?? null, closureHash: ours.running?.closureHash ?? null },
          throwaway: { toplevel: ours.live?.toplevel ?? null },
          identical: ours.identical ?? null,
        }
      : null,
    items: record.items.map((item) => ({ id: item.id, verdict: item.verdict })),
    cleanup: record.cleanup?.verdict ?? null,
  };
}

export function buildStatement(run: EvidenceRun, files: ReadonlyMap<string, string>, attestedAt: Date, attestedBy: HarnessIdentity): Statement {
  return {
    _type: STATEMENT_TYPE,
    subject: [...files].map(([name, sha256]) => ({ name, digest: { sha256 } })),
    predicateType: PREDICATE_TYPE,
    predicate: { ...runFacts(run), attestedAt: attestedAt.toISOString(), attestedBy },
  };
}

/** Where a statement field comes from, for a message that has to name it. */
function sourceOf(path: string): string {
  if (path.startsWith('subject')) return 'a file name in the evidence directory';
  if (path.startsWith('predicate.system')) return D8_FILE;
  if (path.startsWith('predicate.attestedBy')) return 'this harness';
  const field = path.replace(/^predicate\./, '');
  return `${RUN_FILE}, copied to ${field}`;
}

function stringLeaves(value: unknown, path: string, out: Array<{ path: string; text: string }>): void {
  if (typeof value === 'string') out.push({ path, text: value });
  else if (Array.isArray(value))
    value.forEach((entry, index) => {
      stringLeaves(entry, `${path}[${index}]`, out);
    });
  else if (value && typeof value === 'object') for (const [key, entry] of Object.entries(value)) stringLeaves(entry, path ? `${path}.${key}` : key, out);
}

/**
 * The fields of the statement that hold a secret, in any form redaction knows (every registered
 * secret, whole or by line or field, raw or encoded; private-key shapes). Empty when none does.
 */
export function secretFields(statement: Statement): string[] {
  const leaves: Array<{ path: string; text: string }> = [];
  stringLeaves(statement, '', leaves);
  const found = leaves.filter(({ text }) => redact(text) !== text).map(({ path }) => `${path} (from ${sourceOf(path)})`);
  // A secret split across fields still shows in the bytes that are signed.
  const serialised = canonicalJson(statement);
  if (found.length === 0 && redact(serialised) !== serialised) found.push('the statement as serialised (across fields)');
  return found;
}

// ---------------------------------------------------------------------------------------
// The files it covers
// ---------------------------------------------------------------------------------------

export interface EvidenceTree {
  /** Every regular file but the attestation and its signature: name → SHA-256 (hex), by name. */
  files: Map<string, string>;
  /** Entries that are not regular files (symlinks are never followed): `name (a symlink)`. */
  strays: string[];
}

function kindOf(entry: { isSymbolicLink(): boolean; isFIFO(): boolean; isSocket(): boolean; isBlockDevice(): boolean; isCharacterDevice(): boolean }): string {
  if (entry.isSymbolicLink()) return 'a symlink';
  if (entry.isFIFO()) return 'a FIFO';
  if (entry.isSocket()) return 'a socket';
  return 'a device';
}

/** Digests of every regular file under `dir`. Symlinks and other special files are listed, never read. */
export async function digestTree(dir: string): Promise<EvidenceTree> {
  const found: string[] = [];
  const strays: string[] = [];
  const walk = async (relative: string): Promise<void> => {
    const entries = await readdir(join(dir, relative), { withFileTypes: true });
    await Promise.all(
      entries.map(async (entry) => {
        const name = relative ? `${relative}/${entry.name}` : entry.name;
        if (entry.isDirectory()) return walk(name);
        if (entry.isFile()) {
          if (name !== ATTESTATION_FILE && name !== SIGNATURE_FILE) found.push(name);
          return;
        }
        strays.push(`${name} (${kindOf(entry)})`);
      }),
    );
  };
  await walk('');
  found.sort();
  const digests = await Promise.all(
    found.map(async (name) =>
      createHash('sha256')
        .update(await readFile(join(dir, name)))
        .digest('hex'),
    ),
  );
  return { files: new Map(found.map((name, index) => [name, digests[index]!])), strays: strays.sort() };
}

/** What differs between the statement's subjects and the files as they are: one line per file. */
export function subjectProblems(subjects: readonly Subject[], tree: EvidenceTree): string[] {
  const problems: string[] = [];
  const listed = new Set<string>();
  for (const { name, digest } of subjects) {
    if (listed.has(name)) problems.push(`listed twice: ${name}`);
    listed.add(name);
    const actual = tree.files.get(name);
    if (actual === undefined) problems.push(`removed: ${name}`);
    else if (actual !== digest.sha256) problems.push(`changed: ${name} (sha256 ${actual.slice(0, 12)}…, signed ${digest.sha256.slice(0, 12)}…)`);
  }
  for (const name of tree.files.keys()) if (!listed.has(name)) problems.push(`not covered (added after signing): ${name}`);
  for (const stray of tree.strays) problems.push(`not a regular file: ${stray}`);
  return problems;
}

// ---------------------------------------------------------------------------------------
// Reading a statement back
// ---------------------------------------------------------------------------------------

const SHA256 = /^[0-9a-f]{64}$/;

/** The statement the bytes hold, or why they are not one this harness wrote. */
export function statementProblem(bytes: Buffer): { statement?: Statement; problem?: string } {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    return { problem: `${ATTESTATION_FILE} is not JSON (${(error as Error).message})` };
  }
  const statement = value as Statement;
  if (!value || typeof value !== 'object' || Array.isArray(value)) return { problem: `${ATTESTATION_FILE} is not a JSON object` };
  if (statement._type !== STATEMENT_TYPE) return { problem: `_type is ${JSON.stringify(statement._type)}, not ${STATEMENT_TYPE}` };
  if (statement.predicateType !== PREDICATE_TYPE)
    return { problem: `predicateType is ${JSON.stringify(statement.predicateType)}; this harness reads ${PREDICATE_TYPE}` };
  if (!Buffer.from(canonicalJson(value), 'utf8').equals(bytes))
    return { problem: `${ATTESTATION_FILE} is not in canonical form (sorted keys, no whitespace): it was rewritten after it was made` };
  if (!Array.isArray(statement.subject) || statement.subject.some((entry) => typeof entry?.name !== 'string' || !SHA256.test(entry?.digest?.sha256 ?? ''))) {
    return { problem: 'subject should list files, each with a name and a sha256 digest' };
  }
  const predicate = statement.predicate;
  const shapeProblem =
    !predicate || typeof predicate !== 'object'
      ? 'predicate is missing'
      : typeof predicate.run?.id !== 'string' || typeof predicate.run.mode !== 'string'
        ? 'predicate.run should have an id and a mode'
        : typeof predicate.target?.kind !== 'string'
          ? 'predicate.target.kind should be a string'
          : !Array.isArray(predicate.items) || predicate.items.some((item) => typeof item?.id !== 'string' || typeof item.verdict !== 'string')
            ? 'predicate.items should list an id and a verdict each'
            : typeof predicate.attestedAt !== 'string'
              ? 'predicate.attestedAt should be a time'
              : undefined;
  return shapeProblem ? { problem: shapeProblem } : { statement };
}

/** Flattened leaves, with items (and any list of objects with an id) keyed by id: `items[C2].verdict`. */
function leavesOf(value: unknown, path: string, out: Map<string, unknown>): void {
  if (Array.isArray(value)) {
    const byId = value.every((entry) => entry && typeof entry === 'object' && typeof (entry as { id?: unknown }).id === 'string');
    value.forEach((entry, index) => {
      leavesOf(entry, `${path}[${byId ? (entry as { id: string }).id : index}]`, out);
    });
    if (value.length === 0) out.set(path, '[]');
  } else if (value && typeof value === 'object') {
    for (const [key, entry] of Object.entries(value)) leavesOf(entry, path ? `${path}.${key}` : key, out);
  } else out.set(path, value);
}

/** Each fact where the statement and the evidence as it is now disagree, both values named. */
export function factDifferences(signed: RunFacts, now: RunFacts): string[] {
  const a = new Map<string, unknown>();
  const b = new Map<string, unknown>();
  leavesOf(pickFacts(signed), '', a);
  leavesOf(now, '', b);
  const paths = [...new Set([...a.keys(), ...b.keys()])];
  const show = (value: unknown) => (value === undefined ? 'nothing' : JSON.stringify(value));
  return paths
    .filter((path) => a.get(path) !== b.get(path))
    .map((path) => `${path}: the statement says ${show(a.get(path))}, ${path.startsWith('system') ? D8_FILE : RUN_FILE} says ${show(b.get(path))}`);
}

function pickFacts(predicate: RunFacts): RunFacts {
  const { run, target, machines, repos, commits, system, items, cleanup } = predicate;
  return { run, target, machines, repos, commits, system, items, cleanup };
}

// ---------------------------------------------------------------------------------------
// ssh-keygen
// ---------------------------------------------------------------------------------------

function firstLineOf(text: string): string {
  return (
    text
      .split('\n')
      .find((line) => line.trim() !== '')
      ?.trim() ?? ''
  );
}

/** Writes attestation.json (canonical) and signs it with `ssh-keygen -Y sign`, giving attestation.json.sig. */
export async function writeSignedStatement(dir: string, statement: Statement, key: string): Promise<void> {
  const file = join(dir, ATTESTATION_FILE);
  // ssh-keygen asks before overwriting a signature, and we give it no stdin to answer.
  await rm(join(dir, SIGNATURE_FILE), { force: true });
  await writeFile(file, canonicalJson(statement));
  // No timeout: a key with a passphrase asks for it on the terminal.
  const signed = await exec('ssh-keygen', ['-Y', 'sign', '-f', key, '-n', SIGNATURE_NAMESPACE, file]);
  if (signed.exitCode !== 0) {
    await rm(file, { force: true });
    throw new HarnessError(
      `ssh-keygen -Y sign -f ${key} exited ${signed.exitCode}: ${firstLineOf(signed.stderr) || firstLineOf(signed.stdout) || 'no message'}`,
    );
  }
}

export interface SignatureCheck {
  ok: boolean;
  detail: string;
  /** The principal of allowed signers the signature verifies for. */
  signer?: string;
  /** The signing key, as ssh-keygen names it: `ED25519 key SHA256:…`. */
  key?: string;
}

/**
 * The signature, against allowed signers: which key signed (ssh-keygen -Y check-novalidate, so a
 * wrong signer is named by its key), which principal that key is (find-principals), and the
 * verification proper for that principal in our namespace (verify).
 */
export async function checkSignature(dir: string, allowedSigners: string, bytes: Buffer): Promise<SignatureCheck> {
  const signature = join(dir, SIGNATURE_FILE);
  // exec takes text; bytes that are not UTF-8 could differ from it, and the statement check fails those.
  const input = bytes.toString('utf8');
  const options = { input, timeoutMs: SSH_KEYGEN_TIMEOUT_MS };
  // Independent of each other: side by side.
  const [novalidate, principals] = await Promise.all([
    exec('ssh-keygen', ['-Y', 'check-novalidate', '-n', SIGNATURE_NAMESPACE, '-s', signature], options),
    exec('ssh-keygen', ['-Y', 'find-principals', '-s', signature, '-f', allowedSigners], { timeoutMs: SSH_KEYGEN_TIMEOUT_MS }),
  ]);
  if (novalidate.exitCode !== 0) {
    const why = firstLineOf(novalidate.stderr) || firstLineOf(novalidate.stdout) || `exit ${novalidate.exitCode}`;
    return { ok: false, detail: `${SIGNATURE_FILE} is not a signature of ${ATTESTATION_FILE} in namespace ${SIGNATURE_NAMESPACE} (ssh-keygen: ${why})` };
  }
  const key = /with (.+ key \S+)/.exec(novalidate.stdout + novalidate.stderr)?.[1] ?? 'an unnamed key';
  const names =
    principals.exitCode === 0
      ? principals.stdout
          .split('\n')
          .map((line) => line.trim())
          .filter(Boolean)
      : [];
  if (names.length === 0) return { ok: false, key, detail: `signed by ${key}, which is not in ${allowedSigners}` };
  const refusals: string[] = [];
  for (const name of names) {
    const verified = await exec('ssh-keygen', ['-Y', 'verify', '-f', allowedSigners, '-I', name, '-n', SIGNATURE_NAMESPACE, '-s', signature], options);
    if (verified.exitCode === 0) return { ok: true, signer: name, key, detail: `good signature by ${name} (${key}), namespace ${SIGNATURE_NAMESPACE}` };
    refusals.push(`${name}: ${firstLineOf(verified.stderr) || firstLineOf(verified.stdout) || `exit ${verified.exitCode}`}`);
  }
  return { ok: false, key, detail: `signed by ${key}, listed in ${allowedSigners}, but ssh-keygen -Y verify refuses it (${refusals.join('; ')})` };
}

/** The signing key's allowed-signers line, from KEY.pub when it is there, for the person who signed to hand over. */
export async function allowedSignersLine(key: string, principal: string): Promise<string | undefined> {
  const text = await readFile(`${key}.pub`, 'utf8').catch(() => undefined);
  const [type, blob] = text?.trim().split(/\s+/) ?? [];
  return type && blob ? `${principal} namespaces="${SIGNATURE_NAMESPACE}" ${type} ${blob}` : undefined;
}

// ---------------------------------------------------------------------------------------
// Verifying
// ---------------------------------------------------------------------------------------

export interface Check {
  name: 'signature' | 'statement' | 'digests' | 'run.json' | 'cold' | 'target' | 'age' | 'items';
  ok: boolean;
  detail: string;
}

export interface VerifyOptions {
  dir: string;
  allowedSigners: string;
  maxAgeMs: number;
  /** The items that must be PASS; every item of the run when not given. */
  items?: readonly string[];
  /** The target kind the run must have faced (lab, incus, ssh). */
  target?: string;
  /** The items `## DONE` needs (C1–C7); a gate is judged only when given. */
  gateItems?: readonly string[];
  now: Date;
  readRun: ReadRun;
}

export interface Gate {
  allowed: boolean;
  /** Why not, one reason each; empty when allowed. */
  reasons: string[];
}

export interface Verification {
  ok: boolean;
  checks: Check[];
  statement?: Statement;
  signature: SignatureCheck;
  gate?: Gate;
}

/** `1.5 h`, `40 min`, `2 d`: an age a reader takes in at once. */
export function formatAge(ms: number): string {
  const minutes = ms / 60_000;
  if (minutes < 1) return `${Math.round(ms / 1000)} s`;
  if (minutes < 90) return `${Math.round(minutes)} min`;
  const hours = minutes / 60;
  const tenths = (value: number) => value.toFixed(1).replace(/\.0$/, '');
  return hours < 48 ? `${tenths(hours)} h` : `${tenths(hours / 24)} d`;
}

/** The run's age problems: the attestation and the run's end, each against the clock. */
export function ageProblems(predicate: RunPredicate, now: Date, maxAgeMs: number): string[] {
  const problems: string[] = [];
  const times: Array<[string, string | null]> = [
    ['attested', predicate.attestedAt],
    ['run finished', predicate.run.finishedAt],
  ];
  for (const [what, time] of times) {
    if (time === null) {
      problems.push(`${what}: no time recorded (the run never finished)`);
      continue;
    }
    const at = Date.parse(time);
    if (!Number.isFinite(at)) problems.push(`${what}: ${JSON.stringify(time)} is not a time`);
    else if (at - now.getTime() > FUTURE_SKEW_MS) problems.push(`${what} ${formatAge(at - now.getTime())} in the future (${time})`);
    else if (now.getTime() - at > maxAgeMs) problems.push(`${what} ${formatAge(now.getTime() - at)} ago (${time}), over --max-age ${formatAge(maxAgeMs)}`);
  }
  return problems;
}

/** Each asked item that is not PASS, with its verdict; C6 also needs its cleanup check after teardown. */
export function itemProblems(predicate: RunPredicate, asked: readonly string[]): string[] {
  const problems: string[] = [];
  if (asked.length === 0) return ['the run has no items'];
  for (const id of asked) {
    const item = predicate.items.find((candidate) => candidate.id === id);
    if (!item) problems.push(`${id} not in the run`);
    else if (item.verdict !== 'PASS') problems.push(`${id} ${item.verdict}`);
    if (id === 'C6' && item && predicate.cleanup !== 'PASS') problems.push(`C6 cleanup after teardown ${predicate.cleanup ?? 'not recorded'}`);
  }
  return problems;
}

function ensureReadable(file: string, what: string): Promise<Buffer> {
  return readFile(file).catch((error: NodeJS.ErrnoException) => {
    throw new HarnessError(`${what} ${file} cannot be read (${error.code ?? error.message})`);
  });
}

/**
 * Every check, each run even when another failed. Throws a HarnessError (the caller's ERROR)
 * only where nothing can be checked: no attestation or signature, unreadable allowed signers,
 * no ssh-keygen.
 */
export async function verifyEvidence(options: VerifyOptions): Promise<Verification> {
  const { dir, now } = options;
  const bytes = await ensureReadable(join(dir, ATTESTATION_FILE), 'the attestation');
  await ensureReadable(join(dir, SIGNATURE_FILE), 'the signature');
  await ensureReadable(options.allowedSigners, 'allowed signers');
  const checks: Check[] = [];
  const [signature, tree] = await Promise.all([checkSignature(dir, options.allowedSigners, bytes), digestTree(dir)]);
  checks.push({ name: 'signature', ok: signature.ok, detail: signature.detail });

  const { statement, problem } = statementProblem(bytes);
  checks.push({
    name: 'statement',
    ok: statement !== undefined,
    detail: statement ? `${STATEMENT_TYPE}, ${PREDICATE_TYPE}, ${statement.subject.length} files` : problem!,
  });
  if (!statement) {
    for (const name of ['digests', 'run.json', 'cold', 'target', 'age', 'items'] as const)
      checks.push({ name, ok: false, detail: 'not checked: the statement cannot be read' });
    return { ok: false, checks, signature };
  }
  const predicate = statement.predicate;

  const digests = subjectProblems(statement.subject, tree);
  checks.push({ name: 'digests', ok: digests.length === 0, detail: digests.length === 0 ? `${statement.subject.length} files as signed` : digests.join('; ') });

  let content: string[];
  try {
    content = factDifferences(predicate, runFacts(await options.readRun(dir)));
  } catch (error) {
    content = [`cannot be read: ${(error as Error).message.split('\n')[0]}`];
  }
  checks.push({
    name: 'run.json',
    ok: content.length === 0,
    detail: content.length === 0 ? `run ${predicate.run.id}: the verdicts, run id and mode are those signed` : content.join('; '),
  });

  const cold = predicate.run.mode === 'cold';
  const warmFrom = predicate.run.keptFrom ? ` (host kept from run ${predicate.run.keptFrom})` : '';
  checks.push({
    name: 'cold',
    ok: cold,
    detail: cold ? `run ${predicate.run.id} was cold` : `run ${predicate.run.id} was ${predicate.run.mode}${warmFrom}, not cold`,
  });

  const kind = predicate.target.kind;
  const targetOk = options.target === undefined || options.target === kind;
  checks.push({
    name: 'target',
    ok: targetOk,
    detail:
      options.target === undefined
        ? `${kind} (no --target asked)`
        : targetOk
          ? `${kind}, as asked`
          : `the run's target is ${kind}, asked for ${options.target}`,
  });

  const age = ageProblems(predicate, now, options.maxAgeMs);
  const finished = predicate.run.finishedAt ? Date.parse(predicate.run.finishedAt) : NaN;
  checks.push({
    name: 'age',
    ok: age.length === 0,
    detail:
      age.length === 0
        ? `finished ${formatAge(now.getTime() - finished)} ago, attested ${formatAge(now.getTime() - Date.parse(predicate.attestedAt))} ago; --max-age ${formatAge(options.maxAgeMs)}`
        : age.join('; '),
  });

  const asked = options.items ?? predicate.items.map((item) => item.id);
  const items = itemProblems(predicate, asked);
  checks.push({
    name: 'items',
    ok: items.length === 0,
    detail: items.length === 0 ? `${asked.length} item${asked.length === 1 ? '' : 's'} PASS: ${asked.join(', ')}` : `not PASS: ${items.join('; ')}`,
  });

  const ok = checks.every((check) => check.ok);
  return { ok, checks, statement, signature, ...(options.gateItems ? { gate: gateOf(checks, predicate, options.gateItems) } : {}) };
}

/** `## DONE` may be written only for a signed, unchanged, cold, recent run on a real target with every gate item PASS. */
export function gateOf(checks: readonly Check[], predicate: RunPredicate, gateItems: readonly string[]): Gate {
  const reasons: string[] = [];
  for (const check of checks) {
    if (check.name === 'target' || check.name === 'items' || check.ok) continue;
    reasons.push(check.name === 'cold' ? check.detail : `${check.name} fails`);
  }
  if (predicate.target.kind === 'lab') reasons.push('the target is the lab, not the real one');
  reasons.push(...itemProblems(predicate, gateItems));
  return { allowed: reasons.length === 0, reasons };
}
