/**
 * `accept attest` and `accept verify`: sign a run's evidence directory, and check it on another
 * machine before a REVIEW.md entry or `## DONE` is written. The statement, the digests and the
 * checks are in helpers/evidence/attestation.ts; this is the glue: arguments, the run record's
 * reader, the output and the exit codes (0 all hold, 1 a check fails, 2 nothing could be checked).
 */
import { readFile } from 'node:fs/promises';
import { hostname, userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { DOD_ITEMS, itemLabel, type DodItemId } from '../reporting/dod-items.ts';
import { describeTargetRecord } from '../reporting/run-record.ts';
import { latestRunRecord, readRunRecordFile } from '../reporting/run-record-io.ts';
import { loadConfig, parseDuration } from '../helpers/common/config.ts';
import { ConfigError, HarnessError, errorMessage } from '../helpers/common/errors.ts';
import { exec } from '../helpers/common/exec.ts';
import { formatDuration } from '../helpers/common/log.ts';
import { redact } from '../helpers/common/redact.ts';
import {
  ATTESTATION_FILE,
  D8_FILE,
  PREDICATE_TYPE,
  RUN_FILE,
  SIGNATURE_FILE,
  SIGNATURE_NAMESPACE,
  allowedSignersLine,
  buildStatement,
  digestTree,
  secretFields,
  verifyEvidence,
  writeSignedStatement,
  type D8Source,
  type EvidenceRun,
  type HarnessIdentity,
  type Verification,
} from '../helpers/evidence/attestation.ts';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DEFAULT_MAX_AGE = '24h';
/** The items `## DONE` needs: phase 1c, C1–C7. */
export const GATE_ITEMS: readonly DodItemId[] = (Object.keys(DOD_ITEMS) as DodItemId[]).filter((id) => DOD_ITEMS[id].phase === 'Phase-1c');

export interface CommandOutput {
  code: number;
  stdout: string;
  stderr: string;
}

/** The clock the checks use; tests set it. */
export interface CommandOptions {
  now?: Date;
}

// ---------------------------------------------------------------------------------------
// Reading a run's evidence
// ---------------------------------------------------------------------------------------

/** run.json through the run record's validating reader, and d8.json when it is there. */
export async function readEvidenceRun(dir: string): Promise<EvidenceRun> {
  const record = await readRunRecordFile(join(dir, RUN_FILE));
  const file = join(dir, D8_FILE);
  const text = await readFile(file, 'utf8').catch(() => undefined);
  let d8: D8Source | undefined;
  if (text !== undefined) {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw new HarnessError(`${file}: not JSON (${(error as Error).message})`);
    }
    if (!value || typeof value !== 'object' || typeof (value as { runId?: unknown }).runId !== 'string')
      throw new HarnessError(`${file}: not the D8 evidence (no runId)`);
    d8 = value as D8Source;
  }
  // The label every header shows, also for a record from before the machines layer wrote one.
  return { record: { ...record, target: { ...record.target, label: describeTargetRecord(record.target) } }, ...(d8 ? { d8 } : {}) };
}

/** The evidence directory of the run reports/ describes, as `accept report` picks it. */
async function latestEvidenceDir(reportsDir = loadConfig().reportsDir): Promise<string> {
  const record = await latestRunRecord(reportsDir);
  return join(reportsDir, 'evidence', record.runId);
}

async function harnessIdentity(): Promise<HarnessIdentity> {
  const version = await readFile(join(REPO_ROOT, 'package.json'), 'utf8').then(
    (text) => (JSON.parse(text) as { version?: string }).version ?? 'unknown',
    () => 'unknown',
  );
  const head = await exec('git', ['rev-parse', 'HEAD'], { cwd: REPO_ROOT, timeoutMs: 10_000 }).catch(() => undefined);
  if (head?.exitCode !== 0) return { version, commit: 'unknown' };
  const status = await exec('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: REPO_ROOT, timeoutMs: 30_000 }).catch(() => undefined);
  const dirty = status && status.exitCode === 0 && status.stdout.trim() !== '' ? '-dirty' : '';
  return { version, commit: `${head.stdout.trim()}${dirty}` };
}

/** `C1-C7`, `C1,C3`, `C1-C7,D8`: ids in DoD order; a range runs over the DoD's own order. */
export function parseItems(text: string): DodItemId[] {
  const order = Object.keys(DOD_ITEMS) as DodItemId[];
  const known = (id: string): DodItemId => {
    const upper = id.trim().toUpperCase();
    if (!(upper in DOD_ITEMS)) throw new ConfigError('--items', `${JSON.stringify(id.trim())} is not a DoD item (C1…C7, D1…D10)`);
    return upper as DodItemId;
  };
  const picked = new Set<DodItemId>();
  for (const part of text.split(',').filter((entry) => entry.trim() !== '')) {
    const [from, to, extra] = part.split('-');
    if (extra !== undefined) throw new ConfigError('--items', `${JSON.stringify(part)} is not an item or a range such as C1-C7`);
    const start = order.indexOf(known(from!));
    const end = to === undefined ? start : order.indexOf(known(to));
    if (end < start) throw new ConfigError('--items', `${JSON.stringify(part)} runs backwards`);
    for (const id of order.slice(start, end + 1)) picked.add(id);
  }
  if (picked.size === 0) throw new ConfigError('--items', 'names no item; give C1-C7, or C1,C3');
  return order.filter((id) => picked.has(id));
}

function failed(command: string, error: unknown): CommandOutput {
  // node:util's parseArgs says what was wrong with the options; that is a usage error, no bug.
  const usage = typeof (error as { code?: unknown }).code === 'string' && (error as { code: string }).code.startsWith('ERR_PARSE_ARGS');
  const bug = error instanceof HarnessError || usage ? '' : ' (unexpected; this is a harness bug)';
  return { code: 2, stdout: '', stderr: `✗ accept ${command}: ${redact(errorMessage(error))}${bug}\n` };
}

// ---------------------------------------------------------------------------------------
// accept attest
// ---------------------------------------------------------------------------------------

export async function attestCommand(args: string[], options: CommandOptions = {}): Promise<CommandOutput> {
  try {
    const { values, positionals } = parseArgs({ args, options: { key: { type: 'string' } }, allowPositionals: true });
    if (!values.key) throw new ConfigError('--key', 'is required: the SSH private key to sign with, such as ~/.ssh/id_ed25519');
    if (positionals.length > 1) throw new ConfigError('EVIDENCE_DIR', `one directory, got ${positionals.length}`);
    // The configuration registers the secrets it carries, so that the check below knows them.
    const { reportsDir } = loadConfig();
    const dir = positionals[0] ?? (await latestEvidenceDir(reportsDir));
    await readFile(values.key).catch((error: NodeJS.ErrnoException) => {
      throw new ConfigError('--key', `cannot read ${values.key} (${error.code ?? error.message})`);
    });
    const run = await readEvidenceRun(dir);
    const tree = await digestTree(dir);
    if (tree.strays.length)
      throw new HarnessError(
        `${dir} holds ${tree.strays.join(', ')}: the statement covers regular files only, and never follows a link out of the directory; remove them first`,
      );
    const statement = buildStatement(run, tree.files, options.now ?? new Date(), await harnessIdentity());
    const secrets = secretFields(statement);
    if (secrets.length) throw new HarnessError(`refusing to sign: a secret would reach the statement in ${secrets.join('; ')}; nothing was written`);
    await writeSignedStatement(dir, statement, values.key);
    const { predicate } = statement;
    const principal = `${userInfo().username}@${hostname()}`;
    const line = await allowedSignersLine(values.key, principal);
    const stdout = [
      `attested run ${predicate.run.id} (${predicate.run.mode}, ${predicate.target.kind}): ${statement.subject.length} files, ${predicate.items.length} items`,
      `  ${join(dir, ATTESTATION_FILE)}: ${PREDICATE_TYPE}`,
      `  ${join(dir, SIGNATURE_FILE)}: signed with ${values.key}, namespace ${SIGNATURE_NAMESPACE}`,
      `hand over ${dir} as it is; to verify, run: accept verify DIR --allowed-signers FILE --target KIND --max-age ${DEFAULT_MAX_AGE} --items C1-C7 --gate`,
      ...(line ? ["the verifier's allowed signers file needs a line for this key, such as:", `  ${line}`] : []),
    ];
    return { code: 0, stdout: `${stdout.join('\n')}\n`, stderr: '' };
  } catch (error) {
    return failed('attest', error);
  }
}

// ---------------------------------------------------------------------------------------
// accept verify
// ---------------------------------------------------------------------------------------

/** A REVIEW.md entry, ready to paste: what was verified, by whose signature, and each item. */
export function reviewEntry(verification: Verification, now: Date, dir: string): string {
  const { predicate } = verification.statement!;
  const system = predicate.system;
  const toplevel = system?.running.toplevel ?? system?.built.toplevel;
  const closure = system?.running.closureHash ?? system?.built.closureHash;
  const built =
    system && system.built.toplevel !== toplevel
      ? ` (the clean-checkout build: ${system.built.toplevel ?? 'none'})`
      : system
        ? ' (the clean-checkout build is the same)'
        : '';
  const label = (id: string) => (id in DOD_ITEMS ? itemLabel(id as DodItemId) : id);
  const lines = [
    `### ${now.toISOString().slice(0, 10)}: re-verified run ${predicate.run.id}`,
    '',
    `- Verified: ${now.toISOString()}, \`accept verify\` of ${dir}; signed by ${verification.signature.signer} (${verification.signature.key}), namespace ${SIGNATURE_NAMESPACE}`,
    `- Run: ${predicate.run.id}, ${predicate.run.mode}, ${predicate.run.verdict ?? 'no verdict'}; started ${predicate.run.startedAt}, finished ${predicate.run.finishedAt}; attested ${predicate.attestedAt}`,
    `- Target: ${predicate.target.label ?? predicate.target.kind}`,
    `- Machines: throwaway ${predicate.machines.throwaway ?? 'none'}, running cc-ci ${predicate.machines.running ?? 'not recorded'}, project ${predicate.machines.project ?? 'not recorded'}`,
    `- Commits: base ${predicate.commits.base ?? 'not resolved'}, instance ${predicate.commits.instance ?? 'not resolved'}`,
    `- Toplevel: ${toplevel ?? 'not recorded (no d8.json)'}${built}; closure hash ${closure ?? 'not recorded'}`,
    '- Items:',
    ...predicate.items.map((item) => `  - ${label(item.id)}: ${item.verdict}`),
    ...(predicate.cleanup ? [`  - C6 cleanup after teardown: ${predicate.cleanup}`] : []),
  ];
  return `${lines.join('\n')}\n`;
}

export async function verifyCommand(args: string[], options: CommandOptions = {}): Promise<CommandOutput> {
  const started = performance.now();
  try {
    const { values, positionals } = parseArgs({
      args,
      options: {
        'allowed-signers': { type: 'string' },
        'max-age': { type: 'string', default: DEFAULT_MAX_AGE },
        items: { type: 'string' },
        target: { type: 'string' },
        gate: { type: 'boolean', default: false },
      },
      allowPositionals: true,
    });
    const allowedSigners = values['allowed-signers'];
    if (!allowedSigners)
      throw new ConfigError(
        '--allowed-signers',
        'is required: a file of `principal key` lines, as ssh-keygen -Y verify reads (ALLOWED SIGNERS in ssh-keygen(1))',
      );
    if (positionals.length > 1) throw new ConfigError('EVIDENCE_DIR', `one directory, got ${positionals.length}`);
    if (values.target !== undefined && !['lab', 'incus', 'ssh'].includes(values.target))
      throw new ConfigError('--target', `must be lab, incus or ssh; got ${JSON.stringify(values.target)}`);
    const maxAgeMs = parseDuration('--max-age', values['max-age']);
    const items = values.items === undefined ? undefined : parseItems(values.items);
    const dir = positionals[0] ?? (await latestEvidenceDir());
    const now = options.now ?? new Date();
    const verification = await verifyEvidence({
      dir,
      allowedSigners,
      maxAgeMs,
      ...(items ? { items } : {}),
      ...(values.target ? { target: values.target } : {}),
      ...(values.gate ? { gateItems: GATE_ITEMS } : {}),
      now,
      readRun: readEvidenceRun,
    });
    const width = Math.max(...verification.checks.map((check) => check.name.length));
    const lines = [`verify ${dir}`, ...verification.checks.map((check) => `  ${check.ok ? '✓' : '✗'} ${check.name.padEnd(width)}  ${check.detail}`)];
    const failing = verification.checks.filter((check) => !check.ok);
    const took = formatDuration(performance.now() - started);
    lines.push(
      failing.length === 0
        ? `✓ all ${verification.checks.length} checks hold (${took})`
        : `✗ ${failing.length} of ${verification.checks.length} checks fail: ${failing.map((check) => check.name).join(', ')} (${took})`,
    );
    if (verification.gate) {
      lines.push(
        verification.gate.allowed
          ? `gate: ## DONE may be written (${GATE_ITEMS.join(', ')} PASS in a cold run on a real target, within --max-age)`
          : `gate: ## DONE may not be written: ${verification.gate.reasons.join('; ')}`,
      );
    }
    if (verification.ok) lines.push('', 'REVIEW.md entry, ready to paste:', '', reviewEntry(verification, now, dir).trimEnd());
    return { code: verification.ok ? 0 : 1, stdout: `${lines.join('\n')}\n`, stderr: '' };
  } catch (error) {
    return failed('verify', error);
  }
}

async function printed(result: Promise<CommandOutput>): Promise<number> {
  const { code, stdout, stderr } = await result;
  process.stdout.write(stdout);
  process.stderr.write(stderr);
  return code;
}

export const attest = (args: string[]): Promise<number> => printed(attestCommand(args));
export const verify = (args: string[]): Promise<number> => printed(verifyCommand(args));
