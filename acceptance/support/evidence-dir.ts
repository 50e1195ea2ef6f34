/**
 * Evidence that outlives the run: reports/evidence/<run-id>/ holds the DoD summary, the D8
 * evidence, the provisioning ledger, the run record and a copy of the run's Allure results, all
 * named by one run id. It is written at three moments, each idempotent and each completing the
 * last: global setup (cold), the DoD reporter (every run) and the end of the cold teardown.
 */
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exec } from '../../helpers/common/exec.ts';
import { Ledger, type LedgerEntry } from '../../helpers/common/ledger.ts';
import { log } from '../../helpers/common/log.ts';
import { redact } from '../../helpers/common/redact.ts';
import { cloneRepo } from '../../helpers/git/index.ts';
import { newRunId } from '../../target/labels.ts';
import { VERDICT_LINE, recountVerdictLine, writeAllureMeta, writeHarnessCheck } from './allure-meta.ts';
import type { RunContext } from './context.ts';
import type { D8Evidence } from './d8.ts';

/** What ran, against what: the run record, run.json in the evidence directory. No secrets. */
export interface RunRecord {
  runId: string;
  mode: RunContext['mode'] | 'unknown';
  recordedAt: string;
  target: { kind: string; incusUrl?: string; project?: string; socks?: string };
  instance?: { name: string; project: string; createdAt?: string; expiresAt?: string };
  /** A warm run against a kept throwaway: the cold run that built it. */
  keptFrom?: string;
  baseRepo?: string;
  instanceRepo?: string;
  commits?: { base?: string; instance?: string; how: string };
  sabotage?: string;
  harnessVersion: string;
  node: string;
}

const CURRENT = 'current-run';

export function evidenceRoot(reportsDir: string): string {
  return join(reportsDir, 'evidence');
}

async function readText(path: string): Promise<string | undefined> {
  return readFile(path, 'utf8').catch(() => undefined);
}

async function harnessVersion(): Promise<string> {
  const text = await readText(new URL('../../package.json', import.meta.url).pathname);
  return text ? (JSON.parse(text) as { version?: string }).version ?? 'unknown' : 'unknown';
}

/**
 * The commits the run faces: HEAD of the base repo when the run starts, and the instance commit
 * that base pins (submodule gitlink or flake.lock). Only an approximation of what the runbook
 * cloned, seconds earlier; a failure here is recorded, never fatal.
 */
export async function resolveCommits(baseRepo: string, instanceRepo: string): Promise<NonNullable<RunRecord['commits']>> {
  try {
    await using base = await cloneRepo(baseRepo, { setting: 'ACCEPT_BASE_REPO' });
    const gitlink = await exec('git', ['ls-tree', 'HEAD', 'secrets'], { cwd: base.dir });
    const pinned = /^160000 commit ([0-9a-f]{40})\tsecrets$/m.exec(gitlink.stdout)?.[1];
    if (pinned) return { base: base.commit, instance: pinned, how: 'base: HEAD at the start of the run; instance: the secrets/ submodule commit that base pins' };
    const lock = await readText(join(base.dir, 'flake.lock'));
    const locked = lock ? (JSON.parse(lock) as { nodes?: { instance?: { locked?: { rev?: string } } } }).nodes?.instance?.locked?.rev : undefined;
    if (locked) return { base: base.commit, instance: locked, how: 'base: HEAD at the start of the run; instance: the flake input rev that base locks' };
    const head = await exec('git', ['ls-remote', instanceRepo, 'HEAD'], { timeoutMs: 60_000 });
    const instance = /^([0-9a-f]{40})\s/.exec(head.stdout)?.[1];
    return { base: base.commit, instance, how: 'base and instance: HEAD of each repo at the start of the run (base pins no instance commit)' };
  } catch (error) {
    return { how: `not resolved: ${redact((error as Error).message).split('\n')[0]}` };
  }
}

async function recordFromContext(runId: string, context: RunContext | undefined): Promise<RunRecord> {
  return {
    runId,
    mode: context?.mode ?? 'unknown',
    recordedAt: new Date().toISOString(),
    target: context
      ? context.target.kind === 'ssh'
        ? { kind: 'ssh', socks: context.target.socks }
        : { kind: context.target.kind, incusUrl: context.target.incus.url, project: context.target.incus.project, socks: context.target.socks }
      : { kind: 'unknown' },
    instance: context ? { name: context.instance.name, project: context.instance.project, createdAt: context.instance.createdAt || undefined, expiresAt: context.instance.expiresAt || undefined } : undefined,
    keptFrom: context?.mode === 'warm' && context.runId !== runId ? context.runId : undefined,
    baseRepo: context?.baseRepo,
    instanceRepo: context?.instanceRepo,
    commits: context ? await resolveCommits(context.baseRepo, context.instanceRepo) : undefined,
    sabotage: context?.faced.notes.join('; ') || undefined,
    harnessVersion: await harnessVersion(),
    node: process.version,
  };
}

/** Cold runs and the ssh target have a run id of their own; a warm run against a kept host gets a new one. */
function newEvidenceId(context: RunContext | undefined): string {
  if (context && (context.mode === 'cold' || context.target.kind === 'ssh')) return context.runId;
  return newRunId();
}

async function currentRunId(reportsDir: string): Promise<string | undefined> {
  return (await readText(join(evidenceRoot(reportsDir), CURRENT)))?.trim() || undefined;
}

async function writeLedger(dir: string, entries: readonly LedgerEntry[]): Promise<void> {
  // Ledger entries are redacted when recorded; redact again, as everything that leaves does.
  const ledger = new Ledger();
  ledger.entries.push(...entries);
  await writeFile(join(dir, 'ledger.json'), redact(`${JSON.stringify(entries, null, 2)}\n`));
  await writeFile(join(dir, 'ledger.txt'), redact(`${ledger.toText()}\n`));
}

async function readD8(reportsDir: string): Promise<D8Evidence | undefined> {
  const text = await readText(join(evidenceRoot(reportsDir), 'd8.json'));
  return text ? (JSON.parse(text) as D8Evidence) : undefined;
}

/** Allure's Environment widget, from the run record and (once the specs wrote it) the D8 evidence. */
export function environmentEntries(record: RunRecord, d8: D8Evidence | undefined): [string, string | undefined][] {
  return [
    ['run.id', record.runId],
    ['run.mode', record.keptFrom ? `${record.mode} (host kept from run ${record.keptFrom})` : record.mode],
    ['target.kind', record.target.kind],
    ['incus.url', record.target.incusUrl ?? (record.target.kind === 'ssh' ? 'none: the ssh target has no Incus API' : undefined)],
    ['incus.project', record.target.project],
    ['instance.name', record.instance?.name],
    ['base.repo', record.baseRepo],
    ['base.commit', record.commits?.base ?? record.commits?.how],
    ['instance.repo', record.instanceRepo],
    ['instance.commit', record.commits?.instance ?? record.commits?.how],
    ['toplevel', d8?.running.toplevel ?? d8?.static.toplevel ?? 'not observed in this run (C1, C5 and D8 record it)'],
    ['sabotage', record.sabotage],
    ['harness.version', record.harnessVersion],
    ['node.version', record.node],
  ];
}

async function copyIfPresent(from: string, to: string): Promise<void> {
  const text = await readText(from);
  if (text !== undefined) await writeFile(to, text);
}

const INDEX = (record: RunRecord, summary: string | undefined) =>
  [
    `# Evidence of run ${record.runId}`,
    '',
    summary?.match(VERDICT_LINE)?.[0] ?? '(no DoD summary was written)',
    '',
    `${record.mode} run against the ${record.target.kind} target${record.instance ? `, instance ${record.instance.name} in ${record.instance.project}` : ''}.`,
    '',
    '| file | what |',
    '| --- | --- |',
    '| `dod-summary.md` | one line per DoD item: verdict and evidence |',
    '| `d8.json`, `d8.md` | the D8 evidence: static and live halves, hashes and times |',
    '| `ledger.json`, `ledger.txt` | the provisioning ledger: every file pushed and command run, redacted |',
    '| `run.json` | the run record: target, instance, commits, versions |',
    '| `allure-results/` | the raw Allure results; `npx allure generate` turns them into HTML |',
    '',
  ].join('\n');

/**
 * Brings reports/evidence/<run-id>/ up to date with what reports/ holds now, creating the run
 * record if no earlier moment did. Returns the run id.
 */
export async function syncRunEvidence(reportsDir: string, options: { context?: RunContext; ledger?: readonly LedgerEntry[] } = {}): Promise<string> {
  const root = evidenceRoot(reportsDir);
  await mkdir(root, { recursive: true });
  let runId = await currentRunId(reportsDir);
  if (!runId) {
    runId = newEvidenceId(options.context);
    await writeFile(join(root, CURRENT), `${runId}\n`);
  }
  const dir = join(root, runId);
  await mkdir(dir, { recursive: true });
  const recordFile = join(dir, 'run.json');
  const existing = await readText(recordFile);
  const record = existing ? (JSON.parse(existing) as RunRecord) : await recordFromContext(runId, options.context);
  if (!existing) await writeFile(recordFile, redact(`${JSON.stringify(record, null, 2)}\n`));

  const ledger = options.ledger ?? (existing ? undefined : options.context?.ledger);
  if (ledger) await writeLedger(dir, ledger);

  const results = join(reportsDir, 'allure-results');
  writeAllureMeta(results, environmentEntries(record, await readD8(reportsDir)));
  const summary = await readText(join(reportsDir, 'dod-summary.md'));
  if (summary !== undefined) await writeFile(join(dir, 'dod-summary.md'), summary);
  await copyIfPresent(join(root, 'd8.json'), join(dir, 'd8.json'));
  await copyIfPresent(join(root, 'd8.md'), join(dir, 'd8.md'));
  await rm(join(dir, 'allure-results'), { recursive: true, force: true });
  await cp(results, join(dir, 'allure-results'), { recursive: true, filter: (source) => !source.endsWith('/history') });
  await writeFile(join(dir, 'index.md'), INDEX(record, summary));
  return runId;
}

/** Global setup of a cold run: the run record and the ledger, while the throwaway is fresh. */
export async function recordRunStart(reportsDir: string, context: RunContext): Promise<void> {
  const root = evidenceRoot(reportsDir);
  await mkdir(root, { recursive: true });
  await writeFile(join(root, CURRENT), `${context.runId}\n`);
  await syncRunEvidence(reportsDir, { context, ledger: context.ledger });
}

const CLEANUP_ROW = /^\| C6 cleanup after teardown \| (PASS|FAIL|ERROR|SKIPPED) \| (.*) \|$/gm;

/**
 * The end of a cold teardown, after the cleanup check was appended to the summary and the D8
 * evidence got its destroyedAt: the cleanup check becomes an Allure result too, the run's verdict
 * line counts it, and the per-run copy is made complete. Also runs when setup itself failed.
 */
export async function finishRunEvidence(reportsDir: string, run: { runId: string; ledger: readonly LedgerEntry[] }): Promise<void> {
  const root = evidenceRoot(reportsDir);
  await mkdir(root, { recursive: true });
  if (!(await currentRunId(reportsDir))) await writeFile(join(root, CURRENT), `${run.runId}\n`);
  const summaryFile = join(reportsDir, 'dod-summary.md');
  const summary = await readText(summaryFile);
  // Only this run's summary: when setup failed, the file is still the previous run's.
  const ours = summary?.match(VERDICT_LINE)?.[0].startsWith(`**Run ${run.runId}:`) ?? false;
  const cleanup = ours ? [...summary!.matchAll(CLEANUP_ROW)].at(-1) : undefined;
  if (summary && cleanup) {
    const now = Date.now();
    writeHarnessCheck(join(reportsDir, 'allure-results'), {
      runId: run.runId,
      name: 'C6 cleanup after teardown',
      item: 'C6',
      verdict: cleanup[1] as 'PASS' | 'FAIL',
      message: cleanup[2]!.replaceAll('\\|', '|'),
      start: now,
      stop: now,
    });
    const updated = recountVerdictLine(summary);
    if (updated !== summary) {
      await writeFile(summaryFile, updated);
      log.info(`after teardown: ${VERDICT_LINE.exec(updated)?.[0].replaceAll('**', '')}`);
    }
  }
  const id = await syncRunEvidence(reportsDir, { ledger: run.ledger });
  log.info(`evidence of run ${id}: ${join(root, id)}/`);
}
