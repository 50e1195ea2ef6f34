/**
 * Turns a run into its run record (reporting/run-record.ts): each DoD item with its verdict, cause,
 * evidence line and every check, under the run's verdict; then renders the DoD summary from it,
 * on the console and in reports/ (reporting/dod-summary.ts). Verdicts:
 *   PASS    every check of the item passed
 *   FAIL    a check found that the system does not meet the item (an assertion, see reporting/verdict.ts)
 *   ERROR   the harness could not find out (infrastructure or harness fault, or any other error)
 *   SKIPPED the checks do not apply to this target, with the reason
 * Allure gets the same verdicts through reporting/allure.ts; the per-run evidence copy is made here too.
 */
import { basename, join, relative } from 'node:path';
import type { Reporter, TestCase, TestModule, Vitest } from 'vitest/node';
import { loadConfig } from '../../helpers/common/config.ts';
import { redact } from '../../helpers/common/redact.ts';
import { recordVerdict, testKey, writeHarnessCheck } from '../../reporting/allure.ts';
import { DOD_ITEMS, itemIdOf, type DodItemId } from '../../reporting/dod-items.ts';
import { errorName, errorVerdict } from '../../reporting/verdict.ts';
import type { RunContext } from './context.ts';
import { newRunRecord, openRunRecord, resolveCommits, syncRunEvidence } from './evidence-dir.ts';
import { providedRun } from './junit-reporter.ts';
import { writeRunRecord } from '../../reporting/run-record-io.ts';
import {
  checkLine,
  firstLine,
  itemRecord,
  withResults,
  type CheckRecord,
  type ItemRecord,
  type RunRecord,
  type SpecFilePhase,
} from '../../reporting/run-record.ts';
import { renderSummary, writeSummary } from '../../reporting/dod-summary.ts';

interface SerializedErrorLike {
  name?: string;
  message?: string;
  stack?: string;
  verdict?: string;
}

/** One test as a check of the run record. */
export function checkOf(test: TestCase): CheckRecord {
  const result = test.result();
  const meta = test.meta() as { observation?: string; skipReason?: string; machine?: string };
  const duration = test.diagnostic()?.duration;
  const durationMs = { ...(meta.machine ? { machine: meta.machine } : {}), ...(duration === undefined ? {} : { durationMs: Math.round(duration) }) };
  if (result.state === 'passed') return { name: test.name, verdict: 'PASS', evidence: meta.observation ?? test.name, ...durationMs };
  if (result.state === 'skipped' || result.state === 'pending') {
    return {
      name: test.name,
      verdict: 'SKIPPED',
      evidence: meta.skipReason ?? ('note' in result ? result.note : undefined) ?? `${test.name}: skipped`,
      ...durationMs,
    };
  }
  const error = result.errors?.[0] as SerializedErrorLike | undefined;
  const errorClass = error ? errorName(error) : undefined;
  return { name: test.name, verdict: errorVerdict(error), cause: firstLine(error?.message), ...(errorClass ? { errorClass } : {}), ...durationMs };
}

/** A spec file's time as Vitest measured it, beside the sum of its tests' own. */
export function specFilePhase(module: TestModule): SpecFilePhase {
  const testsMs = [...module.children.allTests()].reduce((sum, test) => sum + (test.diagnostic()?.duration ?? 0), 0);
  return { file: relative(process.cwd(), module.moduleId), durationMs: Math.round(module.diagnostic().duration ?? 0), testsMs: Math.round(testsMs) };
}

function titlesOf(test: TestCase): string[] {
  const titles = [test.name];
  for (let parent = test.parent; parent.type === 'suite'; parent = parent.parent) titles.unshift(parent.name);
  return titles;
}

/** A spec file that could not run at all still speaks for its item: acceptance/c2-….spec.ts is C2. */
function itemOfFile(file: string): DodItemId | undefined {
  return itemIdOf(basename(file).toUpperCase().replace(/-.*$/, ''));
}

export default class DodReporter implements Reporter {
  private vitest: Vitest | undefined;

  /** When Vitest started: the run's start, before global setup. */
  private startedAt = Date.now();

  /** A warm run's commits, resolved while its specs run rather than after them (a clone of the base repo). */
  private commits: Promise<RunRecord['commits']> | undefined;

  onInit(vitest: Vitest): void {
    this.vitest = vitest;
    this.startedAt = Date.now();
  }

  /** A long-lived session's re-run is a run of its own: its own start, and the commits as they are now. */
  onWatcherRerun(): void {
    this.startedAt = Date.now();
    this.commits = undefined;
  }

  /** Global setup has provided the run by now; a cold run's record has its commits already. */
  onTestModuleQueued(): void {
    const context = this.providedRun();
    if (!this.commits && context?.mode === 'warm')
      this.commits = resolveCommits(context.baseRepo, { repo: context.instanceRepo, submodule: context.profile.instance.submodule }, loadConfig().stateDir);
  }

  /** Before allure-vitest writes its results: its listener (reporting/allure.ts) reads these verdicts. */
  onTestCaseResult(test: TestCase): void {
    const check = checkOf(test);
    recordVerdict(testKey(test.module.moduleId, titlesOf(test)), {
      verdict: check.verdict,
      reason: check.verdict === 'SKIPPED' ? redact(checkLine(check)) : undefined,
    });
  }

  async onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<SerializedErrorLike>): Promise<void> {
    const perItem = new Map<DodItemId, CheckRecord[]>();
    const add = (id: DodItemId, check: CheckRecord) => perItem.set(id, [...(perItem.get(id) ?? []), check]);
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        let suite = test.parent;
        let id: DodItemId | undefined;
        while (suite && suite.type === 'suite' && !id) {
          id = itemIdOf(suite.name);
          suite = suite.parent;
        }
        if (id) add(id, checkOf(test));
      }
    }
    const moduleErrors = testModules.flatMap((module) => module.errors() as SerializedErrorLike[]);
    const setupErrors = [...unhandledErrors, ...moduleErrors];
    const projects = this.vitest?.projects.map((project) => project.name) ?? [];
    // When global setup fails there are no modules at all; the run's projects still tell.
    const acceptanceRun =
      perItem.size > 0 ||
      testModules.some((module) => module.project.name === 'cold' || module.project.name === 'warm') ||
      (projects.length > 0 && projects.every((name) => name === 'cold' || name === 'warm'));
    if (!acceptanceRun && setupErrors.length === 0) return;
    if (!acceptanceRun && !testModules.length) return;

    // A spec file that failed outside its tests (import, beforeAll, afterAll) makes its item ERROR.
    if (perItem.size > 0) {
      for (const module of testModules) {
        const id = itemOfFile(module.moduleId);
        const error = (module.errors() as SerializedErrorLike[])[0];
        const errorClass = error ? errorName(error) : undefined;
        if (id && error) add(id, { name: basename(module.moduleId), verdict: 'ERROR', cause: firstLine(error.message), ...(errorClass ? { errorClass } : {}) });
      }
    }
    const items: ItemRecord[] = [];
    for (const id of Object.keys(DOD_ITEMS) as DodItemId[]) {
      const checks = perItem.get(id);
      if (checks) items.push(itemRecord(id, checks));
    }
    const context = this.providedRun();
    // A global setup that throws never reaches reporters: Vitest prints its error after this.
    const setupError =
      perItem.size === 0 && setupErrors.length
        ? firstLine(setupErrors[0]!.message)
        : perItem.size === 0 && !context
          ? 'global setup did not complete (Vitest prints its error below)'
          : undefined;
    // An error outside every test fails the Vitest run; the summary must not read PASS then.
    const problem =
      !setupError && unhandledErrors.length ? `${unhandledErrors.length} error(s) outside any check: ${firstLine(unhandledErrors[0]!.message)}` : undefined;
    const dir = process.env.ACCEPT_REPORTS_DIR ?? 'reports';
    const mode = context?.mode ?? (projects.includes('cold') ? 'cold' : projects.includes('warm') ? 'warm' : 'unknown');
    const opened = await openRunRecord(dir, { context, mode, commits: this.commits, write: false }).catch(async (error: unknown) => {
      process.stderr.write(`! could not open the run record: ${redact(String(error))}\n`);
      return undefined;
    });
    const base: RunRecord = opened?.record ?? (await newRunRecord('(no run id)', undefined, mode));
    const record = withResults(this.timed(base), {
      items,
      setupError,
      problem,
      finishedAt: new Date().toISOString(),
      specsMs: testModules.length ? Math.round(testModules.reduce((sum, module) => sum + (module.diagnostic().duration ?? 0), 0)) : undefined,
      specFiles: testModules.length ? testModules.map(specFilePhase) : undefined,
    });
    const runId = opened ? record.runId : undefined;
    if (opened) {
      await writeRunRecord(dir, record).catch((error: unknown) => process.stderr.write(`! could not write the run record: ${redact(String(error))}\n`));
    }
    // A cold run that got as far as its specs ends in its teardown, which adds the cleanup check and
    // writes the summary and the per-run evidence once; here the summary is only printed.
    const teardownWrites = context?.mode === 'cold' && Boolean(opened);
    const markdown = teardownWrites ? renderSummary(record) : await writeSummary(dir, record);
    process.stdout.write(`\n${markdown}\n`);
    if (setupError || problem) {
      const error: SerializedErrorLike = setupErrors[0] ?? {};
      const now = Date.now();
      writeHarnessCheck(join(dir, 'allure-results'), {
        runId: runId ?? 'unknown',
        name: setupError ? 'global setup' : 'errors outside any check',
        verdict: 'ERROR',
        message: redact(setupError ?? problem!),
        trace: error.stack ? redact(error.stack) : undefined,
        start: now,
        stop: now,
      });
    }
    if (record.verdict!.overall === 'FAIL' || record.verdict!.overall === 'ERROR') process.exitCode = 1;
    if (teardownWrites) return;
    // A record made just now (warm and ssh runs) has no ledger beside it yet: the context's.
    await syncRunEvidence(dir, { ledger: opened?.created ? context?.ledger : undefined, record: opened ? record : undefined }).catch((error: unknown) => {
      process.stderr.write(`! could not write the per-run evidence: ${redact(String(error))}\n`);
    });
  }

  /** The run started when Vitest did; setup lasted until global setup recorded its end. */
  private timed(record: RunRecord): RunRecord {
    const startedAt = Math.min(Date.parse(record.startedAt) || this.startedAt, this.startedAt);
    const setupMs = record.setupFinishedAt ? Date.parse(record.setupFinishedAt) - startedAt : undefined;
    return {
      ...record,
      startedAt: new Date(startedAt).toISOString(),
      phases: { ...record.phases, ...(setupMs !== undefined && setupMs >= 0 ? { setupMs } : {}) },
    };
  }

  /** The RunContext global setup provided, when it got that far. */
  private providedRun(): RunContext | undefined {
    return providedRun(this.vitest);
  }
}
