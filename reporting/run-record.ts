/**
 * The run record, reports/evidence/<run-id>/run.json: the one source of every verdict of a run
 * and its evidence. The DoD reporter writes the items, the cold teardown adds the cleanup check;
 * the DoD summary, Allure's harness checks, the evidence folder, `accept report` and the sabotage
 * matrix all read it back through readRunRecord, never from Markdown. No secrets: it is redacted
 * when written. The schema is documented in docs/reports.md ("The run record").
 *
 * This file holds its types and the pure functions that build and read verdicts from it; the
 * validator is run-record-validate.ts, the files on disk run-record-io.ts.
 */
import { DOD_ITEMS, type DodItemId } from './dod-items.ts';
import { SEVERITY, VERDICTS, worstVerdict, type Verdict } from './verdict.ts';

/** Bump when a field changes meaning or goes away; readers refuse any other version. */
export const RUN_RECORD_SCHEMA_VERSION = 1;

/** One Vitest test (or a spec file that failed outside its tests). */
export interface CheckRecord {
  name: string;
  verdict: Verdict;
  /** PASS: what was seen; SKIPPED: why it does not apply. */
  evidence?: string;
  /** FAIL or ERROR: the first line of the error. */
  cause?: string;
  /** The error's class, for FAIL and ERROR when it is known (AssertionError, SshError, …). */
  errorClass?: string;
  /** The machine the check observed: the running cc-ci, the run's host, or this machine's operator side. */
  machine?: string;
  durationMs?: number;
}

export interface ItemRecord {
  id: DodItemId;
  verdict: Verdict;
  /** The summary's evidence line: the worst check's evidence or cause, and how many others passed. */
  evidence: string;
  /** FAIL, ERROR or SKIPPED: the first line of the worst check's cause (or skip reason). */
  cause?: string;
  checks: CheckRecord[];
}

/** C6's last step, after teardown: nothing of the run is left. */
export interface CleanupRecord {
  verdict: Verdict;
  /** What was seen: the instance deleted, or what is still present. */
  evidence: string;
  at: string;
  /** What the throwaway did with its reach before it was deleted, where the target lets that be seen. */
  reach?: string;
}

export interface RunVerdict {
  overall: Verdict;
  counts: Record<Verdict, number>;
  /** Why the run is ERROR beyond its items: setup could not complete, errors outside any check, no check ran. */
  problem?: string;
  /** The first line of the error that stopped global setup. */
  setupError?: string;
}

export interface RunTargetRecord {
  /** lab, incus or ssh: the run context's target.kind. */
  kind: string;
  /** The machines layer's own one-line description (`lab (stand-ins: …)`, `incus <server>`), for headers. */
  label?: string;
  /** Free-form: the machine or API the run faces. */
  server?: string;
  instanceType?: string;
  /** Parts of the target that are stand-ins for the real thing (e.g. the lab's forge and Drone). */
  standIns?: string[];
  /** Anything else a reader must know about what the run faced (the lab: a sabotage applied). */
  notes?: string[];
  incusUrl?: string;
  project?: string;
  socks?: string;
}

/** What a run faced, for headers: the machines layer's label, else its parts, joined the same way for every kind. */
export function describeTargetRecord(target: RunTargetRecord): string {
  if (target.label) return target.label;
  const stand = target.standIns?.length ? ` (stand-ins: ${target.standIns.join('; ')})` : '';
  return `${target.kind}${target.server ? ` ${target.server}` : ''}${target.instanceType ? ` (${target.instanceType})` : ''}${stand}`;
}

/**
 * What the run faced, as name/value pairs: Allure's environment and JUnit's properties carry
 * these same entries. Unset values are left for the writer to drop.
 */
export function targetEntries(target: RunTargetRecord): [string, string | undefined][] {
  return [
    ['target', describeTargetRecord(target)],
    ['target.kind', target.kind],
    ['target.server', target.server ?? target.incusUrl],
    ['target.instance-type', target.instanceType],
    ['target.stand-ins', target.standIns?.length ? target.standIns.join('; ') : 'none'],
    ['target.notes', target.notes?.join('; ')],
    ['incus.project', target.project],
  ];
}

/** A cold run's provisioning, from the machines layer (machines/provision.ts). */
export interface ProvisionPhases {
  /** The whole of provisioning: connect, sweep, create, boot, clone of the base repo, runbook. */
  totalMs: number;
  /** Incus creating and starting the throwaway. */
  createMs: number;
  /** From start until systemd reports running. */
  bootMs: number;
  /** Every runbook step, end to end. */
  runbookMs: number;
  /** The running cc-ci and the neighbours: made ready (the lab) and observed before the throwaway exists. */
  machinesMs?: number;
  /** Each runbook step: its index in docs/install.md, the first line of its text, its time. */
  steps: { index: number; text: string; durationMs: number }[];
}

/** One spec file: Vitest's time for the file (import, collection, hooks, tests) and its tests' own. */
export interface SpecFilePhase {
  file: string;
  durationMs: number;
  testsMs: number;
}

/**
 * Where the time of a run went. Every field is optional: a record of an older run has only
 * setupMs, specsMs and teardownMs, and a warm run has no provision, deleteMs or teardown.
 */
export interface PhaseTimings {
  /** From the start of the run until the specs could begin (cold: lab, throwaway, runbook). */
  setupMs?: number;
  /** The spec files, as Vitest timed them. */
  specsMs?: number;
  /** From the end of the specs until the cleanup check was recorded. */
  teardownMs?: number;
  provision?: ProvisionPhases;
  specFiles?: SpecFilePhase[];
  /** Cold teardown: deleting the throwaway. The rest of teardownMs is the cleanup check and the evidence. */
  deleteMs?: number;
  /** startedAt to finishedAt. */
  wallMs?: number;
  /** The time spent waiting on the system; see overheadOf. */
  waitingMs?: number;
  /** wallMs − waitingMs: the harness's own time. */
  overheadMs?: number;
}

/**
 * The harness's overhead. The time spent waiting on the system is the sum of Incus creating,
 * starting and booting the throwaway, every runbook step, every test (a test's time is its
 * requests to the host, forge and Drone, its builds and its polling, and the worker fixtures
 * it first takes, clones and decryption included) and Incus deleting the throwaway. The
 * overhead is the rest of the wall time from Vitest's start to the last moment recorded:
 * Vitest's start, transform and imports, global setup outside create, boot and runbook (config,
 * lab check, Incus connection, sweep, clone of the base repo, run record), each file's import
 * and collection, the reporters, the cleanup check and the evidence. A test's own computing
 * counts as waiting, so the overhead is a lower bound of what the harness costs. Node's start
 * and Vitest's config load come before the wall time starts; the bench times those from outside.
 */
export function overheadOf(phases: PhaseTimings, wallMs: number): Pick<PhaseTimings, 'wallMs' | 'waitingMs' | 'overheadMs'> {
  const provision = phases.provision;
  const steps = provision ? provision.steps.reduce((sum, step) => sum + step.durationMs, 0) : 0;
  const tests = (phases.specFiles ?? []).reduce((sum, file) => sum + file.testsMs, 0);
  const waitingMs = Math.round((provision ? provision.createMs + provision.bootMs + (provision.machinesMs ?? 0) : 0) + steps + tests + (phases.deleteMs ?? 0));
  return { wallMs: Math.round(wallMs), waitingMs, overheadMs: Math.max(0, Math.round(wallMs) - waitingMs) };
}

/** The record with wallMs, waitingMs and overheadMs computed from its times, once it has a finish and its spec files' times. */
export function withOverhead(record: RunRecord): RunRecord {
  if (!record.phases.specFiles) return record;
  const wallMs = record.finishedAt ? Date.parse(record.finishedAt) - Date.parse(record.startedAt) : NaN;
  if (!Number.isFinite(wallMs) || wallMs < 0) return record;
  return { ...record, phases: { ...record.phases, ...overheadOf(record.phases, wallMs) } };
}

export interface RunRecord {
  schemaVersion: typeof RUN_RECORD_SCHEMA_VERSION;
  runId: string;
  mode: 'cold' | 'warm' | 'unknown';
  target: RunTargetRecord;
  instance?: { name: string; project: string; createdAt?: string; expiresAt?: string };
  /** A warm run against a kept throwaway: the cold run that built it. */
  keptFrom?: string;
  baseRepo?: string;
  instanceRepo?: string;
  commits?: { base?: string; instance?: string; how: string };
  harnessVersion: string;
  node: string;
  startedAt: string;
  /** When global setup handed the run to the specs (cold runs). */
  setupFinishedAt?: string;
  /** The last moment recorded: the DoD reporter's end, then the cold teardown's. */
  finishedAt?: string;
  phases: PhaseTimings;
  /** Absent until the DoD reporter has recorded the items. */
  verdict?: RunVerdict;
  items: ItemRecord[];
  cleanup?: CleanupRecord;
}

// ---------------------------------------------------------------------------------------
// Building
// ---------------------------------------------------------------------------------------

const EVIDENCE_MAX = 300;

/** The first non-blank line, trimmed and cut to a length a summary row can hold. */
export function firstLine(text: string | undefined): string {
  const line =
    (text ?? '')
      .split('\n')
      .find((candidate) => candidate.trim() !== '')
      ?.trim() ?? '';
  return line.length > EVIDENCE_MAX ? `${line.slice(0, EVIDENCE_MAX)}…` : line;
}

/** A check's one line in the summary: its evidence, or `name: cause` when it did not pass. */
export function checkLine(check: CheckRecord): string {
  const line = check.verdict === 'FAIL' || check.verdict === 'ERROR' ? `${check.name}: ${check.cause ?? ''}` : (check.evidence ?? check.name);
  return withMachine(line, check.machine);
}

/** The line as it stands when it already names the machine (by its name); else the machine first. */
export function withMachine(line: string, machine: string | undefined): string {
  if (!machine) return line;
  const name = machine.split(' (')[0]!.split(':')[0]!;
  return line.includes(name) ? line : `[${machine}] ${line}`;
}

/** An item takes the worst verdict of its checks; one skipped check keeps it from PASS. */
export function itemRecord(id: DodItemId, checks: CheckRecord[]): ItemRecord {
  const passed = checks.filter((check) => check.verdict === 'PASS').length;
  const alsoPassed = passed ? ` (${passed} other check${passed > 1 ? 's' : ''} passed)` : '';
  const worst = worstVerdict(checks.map((check) => check.verdict)) ?? 'PASS';
  if (worst !== 'PASS') {
    const hit = checks.find((check) => check.verdict === worst)!;
    return { id, verdict: worst, evidence: `${checkLine(hit)}${alsoPassed}`, cause: hit.cause ?? hit.evidence, checks };
  }
  const more = checks.length > 1 ? ` (and ${checks.length - 1} more check${checks.length > 2 ? 's' : ''} passed)` : '';
  return { id, verdict: 'PASS', evidence: `${checks[0] ? checkLine(checks[0]) : ''}${more}`, checks };
}

/** The run's verdict: the worst of its items and its cleanup check; ERROR when nothing was checked. */
export function runVerdict(verdicts: readonly Verdict[], problem?: string, setupError?: string): RunVerdict {
  const counts = Object.fromEntries(VERDICTS.map((verdict) => [verdict, verdicts.filter((candidate) => candidate === verdict).length])) as Record<
    Verdict,
    number
  >;
  const why = setupError ? 'setup could not complete' : (problem ?? (verdicts.length === 0 ? 'no check ran' : undefined));
  const overall = why ? 'ERROR' : worstVerdict(verdicts)!;
  return { overall, counts, ...(why ? { problem: why } : {}), ...(setupError ? { setupError } : {}) };
}

function judged(record: RunRecord, problem: string | undefined, setupError: string | undefined): RunRecord {
  const verdicts = [...record.items.map((item) => item.verdict), ...(record.cleanup ? [record.cleanup.verdict] : [])];
  return { ...record, verdict: runVerdict(verdicts, problem, setupError) };
}

/** The DoD reporter's part: the items, in DoD order, and why the run is ERROR beyond them. */
export function withResults(
  record: RunRecord,
  results: { items: ItemRecord[]; setupError?: string; problem?: string; finishedAt: string; specsMs?: number; specFiles?: SpecFilePhase[] },
): RunRecord {
  const order = Object.keys(DOD_ITEMS);
  const items = [...results.items].sort((a, b) => order.indexOf(a.id) - order.indexOf(b.id));
  const phases = {
    ...record.phases,
    ...(results.specsMs === undefined ? {} : { specsMs: results.specsMs }),
    ...(results.specFiles ? { specFiles: results.specFiles } : {}),
  };
  return judged(withOverhead({ ...record, items, finishedAt: results.finishedAt, phases }), results.problem, results.setupError);
}

/** The cold teardown's part; counted in the run's verdict once the items are there. */
export function withCleanup(record: RunRecord, cleanup: CleanupRecord): RunRecord {
  const updated: RunRecord = { ...record, cleanup };
  if (!record.verdict) return updated;
  const problem = record.verdict.setupError ? undefined : record.verdict.problem === 'no check ran' ? undefined : record.verdict.problem;
  return judged(updated, problem, record.verdict.setupError);
}

/**
 * The cold teardown's timing, added the way the cleanup check is: it starts where the DoD
 * reporter ended (when the reporter ran first) and ends `now`; `deleteMs` is Incus deleting the
 * throwaway, absent when it was kept.
 */
export function withTeardown(record: RunRecord, now: number, deleteMs?: number): RunRecord {
  const teardownMs = record.finishedAt && record.verdict ? now - Date.parse(record.finishedAt) : undefined;
  const phases: PhaseTimings = {
    ...record.phases,
    ...(teardownMs !== undefined && teardownMs >= 0 ? { teardownMs } : {}),
    ...(deleteMs !== undefined ? { deleteMs: Math.round(deleteMs) } : {}),
  };
  return { ...record, finishedAt: new Date(now).toISOString(), phases };
}

/** The label a verdict goes by in the matrix and the sabotage catalogue: C1…D10, and `C6 cleanup`. */
export const CLEANUP_KEY = 'C6 cleanup';

/** Every verdict a run record holds, in order: each DoD item, then the cleanup check after teardown. */
export const VERDICT_KEYS: readonly string[] = [...Object.keys(DOD_ITEMS), CLEANUP_KEY];

export function verdictsByKey(record: RunRecord): Map<string, Verdict> {
  const verdicts = new Map<string, Verdict>(record.items.map((item) => [item.id, item.verdict]));
  if (record.cleanup) verdicts.set(CLEANUP_KEY, record.cleanup.verdict);
  return verdicts;
}

/** Worst first, then DoD order: the item to show first. */
export function itemsBySeverity(record: RunRecord): ItemRecord[] {
  return [...record.items].sort((a, b) => SEVERITY.indexOf(a.verdict) - SEVERITY.indexOf(b.verdict));
}
