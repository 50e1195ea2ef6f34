/**
 * Turns a run into the DoD summary: one line per item with its verdict and one line of evidence,
 * on the console and in reports/dod-summary.md, under one line with the run's verdict. Verdicts:
 *   PASS    every check of the item passed
 *   FAIL    a check found that the system does not meet the item (an assertion, see allure-meta.ts)
 *   ERROR   the harness could not find out (infrastructure or harness fault, or any other error)
 *   SKIPPED the checks do not apply to this target, with the reason
 * Allure gets the same verdicts through allure-meta.ts; the per-run evidence copy is made here too.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Reporter, TestCase, TestModule, Vitest } from 'vitest/node';
import { redact } from '../../helpers/common/redact.ts';
import { errorVerdict, recordVerdict, testKey, verdictLine, writeHarnessCheck, type Verdict } from './allure-meta.ts';
import type { RunContext } from './context.ts';
import { syncRunEvidence } from './evidence-dir.ts';
import { DOD_ITEMS, itemIdOf, itemLabel, type DodItemId } from './items.ts';

export type { Verdict } from './allure-meta.ts';

interface ItemResult {
  verdict: Verdict;
  evidence: string;
}

interface SerializedErrorLike {
  name?: string;
  message?: string;
  stack?: string;
  verdict?: string;
}

const EVIDENCE_MAX = 300;

function firstLine(text: string | undefined): string {
  const line = (text ?? '').split('\n').find((candidate) => candidate.trim() !== '')?.trim() ?? '';
  return line.length > EVIDENCE_MAX ? `${line.slice(0, EVIDENCE_MAX)}…` : line;
}

function classify(test: TestCase): { verdict: Verdict; evidence: string } {
  const result = test.result();
  const meta = test.meta() as { evidence?: string; skipReason?: string };
  if (result.state === 'passed') return { verdict: 'PASS', evidence: meta.evidence ?? test.name };
  if (result.state === 'skipped' || result.state === 'pending') {
    return { verdict: 'SKIPPED', evidence: meta.skipReason ?? ('note' in result ? result.note : undefined) ?? `${test.name}: skipped` };
  }
  const error = result.errors?.[0] as SerializedErrorLike | undefined;
  return { verdict: errorVerdict(error), evidence: `${test.name}: ${firstLine(error?.message)}` };
}

const SEVERITY: Verdict[] = ['ERROR', 'FAIL', 'SKIPPED', 'PASS'];

function titlesOf(test: TestCase): string[] {
  const titles = [test.name];
  for (let parent = test.parent; parent.type === 'suite'; parent = parent.parent) titles.unshift(parent.name);
  return titles;
}

/** A spec file that could not run at all still speaks for its item: acceptance/c2-….spec.ts is C2. */
function itemOfFile(file: string): DodItemId | undefined {
  return itemIdOf(basename(file).toUpperCase().replace(/-.*$/, ''));
}

function combine(results: { verdict: Verdict; evidence: string }[]): ItemResult {
  const passed = results.filter((result) => result.verdict === 'PASS').length;
  const alsoPassed = passed ? ` (${passed} other check${passed > 1 ? 's' : ''} passed)` : '';
  for (const verdict of SEVERITY) {
    const hit = results.find((result) => result.verdict === verdict);
    // An item passes only if every check passed: one skipped check makes it SKIPPED, never PASS.
    if (hit && verdict !== 'PASS') return { verdict, evidence: `${hit.evidence}${alsoPassed}` };
  }
  const more = results.length > 1 ? ` (and ${results.length - 1} more check${results.length > 2 ? 's' : ''} passed)` : '';
  return { verdict: 'PASS', evidence: `${results[0]?.evidence ?? ''}${more}` };
}

export function summaryMarkdown(items: Map<DodItemId, ItemResult>, setupError: string | undefined, run: { runId?: string; problem?: string } = {}): string {
  const rows = [...items].map(([id, item]) => `| ${itemLabel(id)} | ${item.verdict} | ${redact(item.evidence).replaceAll('|', '\\|')} |`);
  const uncovered = (Object.keys(DOD_ITEMS) as DodItemId[]).filter((id) => !items.has(id));
  const problem = setupError ? 'setup could not complete' : run.problem;
  const verdicts = [...items.values()].map((item) => item.verdict);
  const lines = ['# DoD summary', '', redact(verdictLine(run.runId, verdicts, problem)), '', '| item | verdict | evidence |', '| --- | --- | --- |', ...rows, ''];
  if (setupError) lines.push(`Setup could not complete, so no item could be checked: ${redact(setupError)}`, '');
  if (uncovered.length) lines.push(`Not checked in this run: ${uncovered.join(', ')}.`, '');
  return lines.join('\n');
}

export default class DodReporter implements Reporter {
  private vitest: Vitest | undefined;

  onInit(vitest: Vitest): void {
    this.vitest = vitest;
  }

  /** Before allure-vitest writes its results: its listener (allure-meta.ts) reads these verdicts. */
  onTestCaseResult(test: TestCase): void {
    const { verdict, evidence } = classify(test);
    recordVerdict(testKey(test.module.moduleId, titlesOf(test)), { verdict, reason: verdict === 'SKIPPED' ? redact(evidence) : undefined });
  }

  async onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<SerializedErrorLike>): Promise<void> {
    const perItem = new Map<DodItemId, { verdict: Verdict; evidence: string }[]>();
    const add = (id: DodItemId, result: { verdict: Verdict; evidence: string }) => perItem.set(id, [...(perItem.get(id) ?? []), result]);
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        let suite = test.parent;
        let id: DodItemId | undefined;
        while (suite && suite.type === 'suite' && !id) {
          id = itemIdOf(suite.name);
          suite = suite.parent;
        }
        if (id) add(id, classify(test));
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
        if (id && error) add(id, { verdict: 'ERROR', evidence: `${basename(module.moduleId)}: ${firstLine(error.message)}` });
      }
    }
    const items = new Map<DodItemId, ItemResult>();
    for (const id of Object.keys(DOD_ITEMS) as DodItemId[]) {
      const results = perItem.get(id);
      if (results) items.set(id, combine(results));
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
    const problem = !setupError && unhandledErrors.length ? `${unhandledErrors.length} error(s) outside any check: ${firstLine(unhandledErrors[0]!.message)}` : undefined;
    const dir = process.env.ACCEPT_REPORTS_DIR ?? 'reports';
    const runId = await syncRunEvidence(dir, { context }).catch((error: unknown) => {
      process.stderr.write(`! could not write the per-run evidence: ${redact(String(error))}\n`);
      return undefined;
    });
    const markdown = summaryMarkdown(items, setupError, { runId, problem });
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'dod-summary.md'), markdown);
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
    if ([...items.values()].some((item) => item.verdict === 'FAIL' || item.verdict === 'ERROR') || setupError || problem) process.exitCode = 1;
    // Copy again, now that the summary and the harness check exist.
    await syncRunEvidence(dir).catch(() => undefined);
  }

  /** The RunContext global setup provided, when it got that far. */
  private providedRun(): RunContext | undefined {
    for (const project of this.vitest?.projects ?? []) {
      if (project.name !== 'cold' && project.name !== 'warm') continue;
      const run = (project.getProvidedContext() as { run?: RunContext }).run;
      if (run) return run;
    }
    return undefined;
  }
}
