/**
 * Turns a run into the DoD summary: one line per item with its verdict and one line of evidence,
 * on the console and in reports/dod-summary.md. Verdicts:
 *   PASS    every check of the item passed
 *   FAIL    a check found that the system does not meet the item
 *   ERROR   the harness could not find out (infrastructure or harness fault)
 *   SKIPPED the checks do not apply to this target, with the reason
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Reporter, TestCase, TestModule } from 'vitest/node';
import { redact } from '../../helpers/common/redact.ts';
import { DOD_ITEMS, itemIdOf, itemLabel, type DodItemId } from './items.ts';

export type Verdict = 'PASS' | 'FAIL' | 'ERROR' | 'SKIPPED';

interface ItemResult {
  verdict: Verdict;
  evidence: string;
}

interface SerializedErrorLike {
  name?: string;
  message?: string;
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
  const error = (result.errors?.[0] ?? {}) as SerializedErrorLike;
  const verdict: Verdict = error.verdict === 'ERROR' ? 'ERROR' : 'FAIL';
  return { verdict, evidence: `${test.name}: ${firstLine(error.message)}` };
}

const SEVERITY: Verdict[] = ['ERROR', 'FAIL', 'SKIPPED', 'PASS'];

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

export function summaryMarkdown(items: Map<DodItemId, ItemResult>, setupError: string | undefined): string {
  const rows = [...items].map(([id, item]) => `| ${itemLabel(id)} | ${item.verdict} | ${redact(item.evidence).replaceAll('|', '\\|')} |`);
  const uncovered = (Object.keys(DOD_ITEMS) as DodItemId[]).filter((id) => !items.has(id));
  const lines = ['# DoD summary', '', '| item | verdict | evidence |', '| --- | --- | --- |', ...rows, ''];
  if (setupError) lines.push(`Setup could not complete, so no item could be checked: ${redact(setupError)}`, '');
  if (uncovered.length) lines.push(`Not checked in this run: ${uncovered.join(', ')}.`, '');
  return lines.join('\n');
}

export default class DodReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<SerializedErrorLike>): void {
    const perItem = new Map<DodItemId, { verdict: Verdict; evidence: string }[]>();
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        let suite = test.parent;
        let id: DodItemId | undefined;
        while (suite && suite.type === 'suite' && !id) {
          id = itemIdOf(suite.name);
          suite = suite.parent;
        }
        if (!id) continue;
        const list = perItem.get(id) ?? [];
        list.push(classify(test));
        perItem.set(id, list);
      }
    }
    const moduleErrors = testModules.flatMap((module) => module.errors() as SerializedErrorLike[]);
    const setupErrors = [...unhandledErrors, ...moduleErrors];
    const acceptanceRun = perItem.size > 0 || testModules.some((module) => module.project.name === 'cold' || module.project.name === 'warm');
    if (!acceptanceRun && setupErrors.length === 0) return;
    if (!acceptanceRun && !testModules.length) return;

    const items = new Map<DodItemId, ItemResult>();
    for (const id of Object.keys(DOD_ITEMS) as DodItemId[]) {
      const results = perItem.get(id);
      if (results) items.set(id, combine(results));
    }
    const setupError = perItem.size === 0 && setupErrors.length ? firstLine(setupErrors[0]!.message) : undefined;
    const markdown = summaryMarkdown(items, setupError);
    const dir = process.env.ACCEPT_REPORTS_DIR ?? 'reports';
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'dod-summary.md'), markdown);
    process.stdout.write(`\n${markdown}\n`);
  }
}
