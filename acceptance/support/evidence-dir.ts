/**
 * Evidence that outlives the run: reports/evidence/<run-id>/ holds the DoD summary, the D8
 * evidence, the provisioning ledger, the run record and a copy of the run's Allure results, all
 * named by one run id. It is written at three moments, each idempotent and each completing the
 * last: global setup (cold), the DoD reporter (every run) and the end of the cold teardown.
 */
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Ledger, type LedgerEntry } from '../../helpers/common/ledger.ts';
import { log } from '../../helpers/common/log.ts';
import { redact } from '../../helpers/common/redact.ts';
import { displayUrl } from '../../helpers/common/credentials.ts';
import { cloneCacheDir, commitsOf, sharedClone } from '../../helpers/git/index.ts';
import { loadConfig } from '../../helpers/common/config.ts';
import { newRunId } from '../../machines/labels.ts';
import { writeAllureMeta, writeHarnessCheck } from '../../reporting/allure.ts';
import type { RunContext } from './context.ts';
import { describeFaced } from '../../machines/run-context.ts';
import type { D8Record } from './d8.ts';
import { CURRENT_RUN_FILE, RUN_RECORD_FILE, currentRunId, findRunRecord, writeRunRecord } from '../../reporting/run-record-io.ts';
import {
  RUN_RECORD_SCHEMA_VERSION,
  describeTargetRecord,
  targetEntries,
  withCleanup,
  withOverhead,
  withTeardown,
  type CleanupRecord,
  type RunRecord,
} from '../../reporting/run-record.ts';
import { CLEANUP_CHECK, SUMMARY_FILE, verdictLine, writeSummary } from '../../reporting/dod-summary.ts';

export function evidenceRoot(reportsDir: string): string {
  return join(reportsDir, 'evidence');
}

async function readText(path: string): Promise<string | undefined> {
  return readFile(path, 'utf8').catch(() => undefined);
}

async function harnessVersion(): Promise<string> {
  const text = await readText(new URL('../../package.json', import.meta.url).pathname);
  return text ? ((JSON.parse(text) as { version?: string }).version ?? 'unknown') : 'unknown';
}

/**
 * The commits the run faces: HEAD of the base repo when the run starts, and the instance commit
 * that base pins (submodule gitlink or flake.lock). From the clone the run shares (sharedClone):
 * a repo unchanged since the last run is not cloned again. A failure here is recorded, never fatal.
 */
export async function resolveCommits(
  baseRepo: string,
  instance: { repo: string; submodule: string },
  stateDir: string,
): Promise<NonNullable<RunRecord['commits']>> {
  try {
    const base = await sharedClone(baseRepo, { setting: 'ACCEPT_BASE_REPO', cacheDir: cloneCacheDir(stateDir) });
    return await commitsOf(base, instance, 'at the start of the run');
  } catch (error) {
    return { how: `not resolved: ${redact((error as Error).message).split('\n')[0]}` };
  }
}

/** A new record: the facts of the run, no verdict yet. `mode` stands in when there is no context. */
export async function newRunRecord(
  runId: string,
  context: RunContext | undefined,
  mode: RunRecord['mode'] = 'unknown',
  commits?: Promise<RunRecord['commits']>,
): Promise<RunRecord> {
  return {
    schemaVersion: RUN_RECORD_SCHEMA_VERSION,
    runId,
    mode: context?.mode ?? mode,
    target: context ? targetRecord(context) : { kind: 'unknown' },
    instance: context
      ? {
          name: context.instance.name,
          project: context.instance.project,
          createdAt: context.instance.createdAt || undefined,
          expiresAt: context.instance.expiresAt || undefined,
        }
      : undefined,
    keptFrom: context?.mode === 'warm' && context.runId !== runId ? context.runId : undefined,
    // Recorded without credentials, whatever the context holds.
    baseRepo: context && displayUrl(context.baseRepo),
    instanceRepo: context && displayUrl(context.instanceRepo),
    commits: context
      ? ((await commits) ??
        context.commits ??
        (await resolveCommits(context.baseRepo, { repo: context.instanceRepo, submodule: context.profile.instance.submodule }, loadConfig().stateDir)))
      : undefined,
    harnessVersion: await harnessVersion(),
    node: process.version,
    startedAt: new Date().toISOString(),
    phases: context?.mode === 'cold' ? provisionPhases(context) : {},
    items: [],
  };
}

/** A cold run's provisioning, as the machines layer timed it: the record's first phases. */
export function provisionPhases(context: RunContext): RunRecord['phases'] {
  const timings = context.provisioning;
  if (!timings) return {};
  const steps = (context.runbook?.steps ?? []).map((step) => ({ index: step.index, text: step.text.split('\n')[0]!, durationMs: Math.round(step.durationMs) }));
  return { provision: { ...timings, steps } };
}

/** What the run faced, as the machines layer describes it: nothing here branches on the kind. */
export function targetRecord(context: RunContext): RunRecord['target'] {
  const { faced } = context;
  return {
    kind: faced.kind,
    label: describeFaced(faced),
    server: faced.server,
    instanceType: faced.instanceType,
    standIns: faced.standIns,
    notes: faced.notes.length ? faced.notes : undefined,
    project: context.instance.project,
    socks: context.target.socks,
  };
}

/** Cold runs and the ssh target have a run id of their own; a warm run against a kept host gets a new one. */
function runIdFor(context: RunContext | undefined): string {
  // An ssh run's id is its own too: it has no kept host whose run it would continue.
  if (context && (context.mode === 'cold' || !context.instance.createdAt)) return context.runId;
  return newRunId();
}

async function writeLedger(dir: string, entries: readonly LedgerEntry[]): Promise<void> {
  // Ledger entries are redacted when recorded; redact again, as everything that leaves does.
  const ledger = new Ledger();
  ledger.entries.push(...entries);
  await writeFile(join(dir, 'ledger.json'), redact(`${JSON.stringify(entries, null, 2)}\n`));
  await writeFile(join(dir, 'ledger.txt'), redact(`${ledger.toText()}\n`));
}

async function readD8(reportsDir: string): Promise<D8Record | undefined> {
  const text = await readText(join(evidenceRoot(reportsDir), 'd8.json'));
  return text ? (JSON.parse(text) as D8Record) : undefined;
}

/** Allure's Environment widget, from the run record and (once the specs wrote it) the D8 record. */
export function environmentEntries(record: RunRecord, d8: D8Record | undefined): [string, string | undefined][] {
  return [
    ['run.id', record.runId],
    ['run.mode', record.keptFrom ? `${record.mode} (host kept from run ${record.keptFrom})` : record.mode],
    ...targetEntries(record.target),
    ['instance.name', record.instance?.name],
    ['base.repo', record.baseRepo && displayUrl(record.baseRepo)],
    ['base.commit', record.commits?.base ?? record.commits?.how],
    ['instance.repo', record.instanceRepo && displayUrl(record.instanceRepo)],
    ['instance.commit', record.commits?.instance ?? record.commits?.how],
    ['toplevel', d8?.running.toplevel ?? d8?.static.toplevel ?? 'not observed in this run (C1, C5 and D8 record it)'],
    ['harness.version', record.harnessVersion],
    ['node.version', record.node],
  ];
}

async function copyIfPresent(from: string, to: string): Promise<void> {
  const text = await readText(from);
  if (text !== undefined) await writeFile(to, text);
}

const INDEX = (record: RunRecord) =>
  [
    `# Evidence of run ${record.runId}`,
    '',
    record.verdict ? verdictLine(record.runId, record.verdict) : '(the DoD reporter has not recorded a verdict)',
    '',
    `${record.mode} run against ${describeTargetRecord(record.target)}${record.instance ? `, instance ${record.instance.name} in ${record.instance.project}` : ''}.`,
    '',
    '| file | what |',
    '| --- | --- |',
    `| \`${RUN_RECORD_FILE}\` | the run record: every verdict with its checks and evidence, target, instance, commits, timings, versions (docs/reports.md) |`,
    `| \`${SUMMARY_FILE}\` | the run record rendered: one line per DoD item, verdict and evidence |`,
    '| `d8.json`, `d8.md` | the D8 evidence: static and live halves, hashes and times |',
    '| `ledger.json`, `ledger.txt` | the provisioning ledger: every file pushed and command run, redacted |',
    '| `allure-results/` | the raw Allure results; `npx allure generate` turns them into HTML |',
    '',
  ].join('\n');

/**
 * The record of the run reports/ describes, created (with the facts `context` gives) if no
 * earlier moment did, and named in evidence/current-run.
 */
export async function openRunRecord(
  reportsDir: string,
  options: { context?: RunContext; mode?: RunRecord['mode']; commits?: Promise<RunRecord['commits']>; write?: boolean } = {},
): Promise<{ record: RunRecord; created: boolean }> {
  const root = evidenceRoot(reportsDir);
  await mkdir(root, { recursive: true });
  let runId = await currentRunId(reportsDir);
  if (!runId) {
    runId = runIdFor(options.context);
    await writeFile(join(root, CURRENT_RUN_FILE), `${runId}\n`);
  }
  const existing = await findRunRecord(reportsDir, runId);
  if (existing) return { record: existing, created: false };
  const record = await newRunRecord(runId, options.context, options.mode, options.commits);
  // Unwritten when the caller writes it complete at once (the DoD reporter).
  if (options.write !== false) await writeRunRecord(reportsDir, record);
  return { record, created: true };
}

/**
 * Brings reports/evidence/<run-id>/ up to date with the run record and what reports/ holds now,
 * creating the record if no earlier moment did (or taking the one its caller just wrote). Returns the run id.
 */
export async function syncRunEvidence(
  reportsDir: string,
  options: { context?: RunContext; ledger?: readonly LedgerEntry[]; record?: RunRecord } = {},
): Promise<string> {
  const root = evidenceRoot(reportsDir);
  // The record its caller has just written is not read back.
  const { record, created } = options.record ? { record: options.record, created: false } : await openRunRecord(reportsDir, options);
  const dir = join(root, record.runId);

  const ledger = options.ledger ?? (created ? options.context?.ledger : undefined);
  if (ledger) await writeLedger(dir, ledger);

  const results = join(reportsDir, 'allure-results');
  writeAllureMeta(results, environmentEntries(record, await readD8(reportsDir)));
  if (record.verdict || record.cleanup) await writeSummary(dir, record);
  await copyIfPresent(join(root, 'd8.json'), join(dir, 'd8.json'));
  await copyIfPresent(join(root, 'd8.md'), join(dir, 'd8.md'));
  await rm(join(dir, 'allure-results'), { recursive: true, force: true });
  await cp(results, join(dir, 'allure-results'), { recursive: true, filter: (source) => !source.endsWith('/history') });
  await writeFile(join(dir, 'index.md'), INDEX(record));
  return record.runId;
}

/** Global setup of a cold run: the run record and the ledger, while the throwaway is fresh. */
export async function recordRunStart(reportsDir: string, context: RunContext): Promise<void> {
  const root = evidenceRoot(reportsDir);
  await mkdir(root, { recursive: true });
  await writeFile(join(root, CURRENT_RUN_FILE), `${context.runId}\n`);
  const existing = await findRunRecord(reportsDir, context.runId);
  const record = existing ?? (await newRunRecord(context.runId, context));
  await writeRunRecord(reportsDir, { ...record, setupFinishedAt: new Date().toISOString() });
  await syncRunEvidence(reportsDir, { context, ledger: context.ledger });
}

/**
 * The end of a cold teardown, after the cleanup check went into the run record and the D8
 * evidence got its destroyedAt: the cleanup check becomes an Allure result too, the teardown is
 * timed, and the per-run copy is made complete. Also runs when setup itself failed; a run with no
 * record of its own (setup failed before the cleanup check) leaves reports/ as it is.
 */
export async function finishRunEvidence(
  reportsDir: string,
  run: { runId: string; ledger: readonly LedgerEntry[]; deleteMs?: number; cleanup?: CleanupRecord },
): Promise<void> {
  const root = evidenceRoot(reportsDir);
  await mkdir(root, { recursive: true });
  if (!(await currentRunId(reportsDir))) await writeFile(join(root, CURRENT_RUN_FILE), `${run.runId}\n`);
  const found = await findRunRecord(reportsDir, run.runId);
  // The cleanup check joins the record here, with the teardown's timings: one write of each file.
  // A run whose setup failed before its record was made still gets one, so the check is not lost.
  const record = run.cleanup ? withCleanup(found ?? (await newRunRecord(run.runId, undefined, 'cold')), run.cleanup) : found;
  // A kept throwaway has no cleanup check, but its teardown is timed all the same.
  let finished: RunRecord | undefined;
  if (record?.cleanup || record?.verdict) {
    const now = Date.now();
    if (record.cleanup) {
      writeHarnessCheck(join(reportsDir, 'allure-results'), {
        runId: run.runId,
        name: CLEANUP_CHECK,
        item: 'C6',
        verdict: record.cleanup.verdict,
        message: record.cleanup.evidence,
        start: now,
        stop: now,
      });
    }
    finished = withOverhead(withTeardown(record, now, run.deleteMs));
    await writeRunRecord(reportsDir, finished);
    await writeSummary(reportsDir, finished);
    if (finished.verdict && finished.cleanup) log.info(`after teardown: ${verdictLine(finished.runId, finished.verdict).replaceAll('**', '')}`);
  }
  const id = await syncRunEvidence(reportsDir, { ledger: run.ledger, record: finished });
  log.info(`evidence of run ${id}: ${join(root, id)}/`);
}
