/**
 * Verdicts in Allure. An Allure listener (wired in vitest.config.ts) applies the verdict model's
 * classification (verdict.ts) to every result before it is written, so the run record and Allure
 * can never disagree: FAIL is Allure's "failed", ERROR its "broken". Also the Allure side files:
 * categories.json, environment.properties and the results the harness writes itself (checks that
 * run outside Vitest's tests).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Label, Link, TestResult } from 'allure-js-commons';
import { DOD_ITEMS, itemLabel, type DodItemId } from './dod-items.ts';
import { HARNESS_ERROR_NAMES, errorVerdict, type Verdict } from './verdict.ts';

type AllureStatus = 'passed' | 'failed' | 'broken' | 'skipped';

export const ALLURE_STATUS: Record<Verdict, AllureStatus> = { PASS: 'passed', FAIL: 'failed', ERROR: 'broken', SKIPPED: 'skipped' };

// ---------------------------------------------------------------------------------------
// Allure results
// ---------------------------------------------------------------------------------------

/**
 * categories.json. The first match wins, so the named harness errors come before the rest. Allure 3
 * tests a regex with JavaScript's RegExp (flag s) anywhere in the trace, so it is anchored here: a
 * harness error named further down a trace (a cause) does not make it one.
 */
export const ALLURE_CATEGORIES = [
  {
    name: 'Harness/infrastructure errors (ERROR: the harness could not find out)',
    matchedStatuses: ['broken'],
    traceRegex: `^\\s*(?:${HARNESS_ERROR_NAMES.join('|')})\\b`,
  },
  { name: 'Harness bugs and other unexpected errors (ERROR)', matchedStatuses: ['broken'] },
  { name: 'Product defects (FAIL: the system does not meet the item)', matchedStatuses: ['failed'] },
  { name: 'Skipped (does not apply to this target; the reason is the message)', matchedStatuses: ['skipped'] },
];

/** The plan's own headings (docs/dod.md), as GitHub anchors them. */
export const PLAN_ANCHORS: Record<string, string> = {
  'Phase-1c': 'phase-1c',
  'Phase-1': 'phase-1-must-still-hold-after-the-refactor',
};

export function planLink(id: DodItemId): Link {
  return { name: itemLabel(id), url: `dod.md#${PLAN_ANCHORS[DOD_ITEMS[id].phase] ?? ''}`, type: 'link' };
}

/**
 * Verdicts the DoD reporter has computed, shared with the listener through globalThis: both run in
 * Vitest's main process, but vitest.config.ts is bundled on its own, so module state is not shared.
 */
const REGISTRY = Symbol.for('cc-ci-acceptance.verdicts');

interface KnownVerdict {
  verdict: Verdict;
  reason?: string;
}

function registry(): Map<string, KnownVerdict> {
  const global = globalThis as { [REGISTRY]?: Map<string, KnownVerdict> };
  return (global[REGISTRY] ??= new Map());
}

/** A test's key, the same from Vitest's side (file and titles) and Allure's (fullName). */
export function testKey(file: string, titles: readonly string[]): string {
  return `${file.slice(file.lastIndexOf('/') + 1)}#${titles.join(' ')}`;
}

/** allure-vitest's fullName is `project:path/to/file.spec.ts#suite … test`. */
export function keyOfFullName(fullName: string | undefined): string | undefined {
  const hash = fullName?.indexOf('#') ?? -1;
  if (!fullName || hash < 0) return undefined;
  const file = fullName.slice(0, hash);
  return `${file.slice(Math.max(file.lastIndexOf('/'), file.lastIndexOf(':')) + 1)}#${fullName.slice(hash + 1)}`;
}

export function recordVerdict(key: string, known: KnownVerdict): void {
  registry().set(key, known);
}

function verdictOfResult(result: Pick<TestResult, 'status' | 'statusDetails'>): Verdict | undefined {
  switch (result.status) {
    case 'passed':
      return 'PASS';
    case 'skipped':
      return 'SKIPPED';
    case 'failed':
    case 'broken':
      return errorVerdict({ message: result.statusDetails?.message, stack: result.statusDetails?.trace });
    default:
      return undefined;
  }
}

/** Makes one Allure result say what the DoD summary says, and links it to its plan item. */
export function applyVerdict(result: TestResult): void {
  const known = registry().get(keyOfFullName(result.fullName) ?? '');
  const verdict = known?.verdict ?? verdictOfResult(result);
  if (verdict) {
    result.status = ALLURE_STATUS[verdict] as TestResult['status'];
    if (verdict === 'SKIPPED' && known?.reason && !result.statusDetails?.message) {
      result.statusDetails = { ...result.statusDetails, message: known.reason };
    }
    if (!result.labels.some((label) => label.name === 'tag' && label.value === verdict)) result.labels.push({ name: 'tag', value: verdict });
  }
  const id = result.labels.find((label) => label.name === 'dod-item')?.value;
  if (id && id in DOD_ITEMS) {
    const link = planLink(id as DodItemId);
    if (!result.links.some((existing) => existing.url === link.url && existing.name === link.name)) result.links.push(link);
  }
}

/** For allure-vitest's `listeners` option. */
export const allureVerdictListener = { beforeTestResultWrite: applyVerdict };

function md5(text: string): string {
  return createHash('md5').update(text).digest('hex');
}

/** Deterministic, so that writing the same check twice replaces it instead of adding a second. */
function uuidFrom(text: string): string {
  const hex = md5(text);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

export interface HarnessCheck {
  runId: string;
  /** Stable across runs: Allure's history and trend follow it. */
  name: string;
  verdict: Verdict;
  message: string;
  trace?: string;
  item?: DodItemId;
  start: number;
  stop: number;
}

/**
 * A result for a check that is not a Vitest test (the cleanup after teardown, a setup that could
 * not complete), so that Allure shows every verdict the summary shows.
 */
export function harnessCheckResult(check: HarnessCheck): TestResult {
  const suite = check.item ? itemLabel(check.item) : 'Run';
  const labels: Label[] = [
    { name: 'parentSuite', value: suite },
    { name: 'framework', value: 'cc-ci-acceptance' },
    { name: 'tag', value: check.verdict },
  ];
  if (check.item) {
    labels.push({ name: 'epic', value: DOD_ITEMS[check.item].phase }, { name: 'feature', value: suite }, { name: 'dod-item', value: check.item });
  }
  const fullName = `cc-ci-acceptance:harness#${suite} ${check.name}`;
  return {
    uuid: uuidFrom(`${check.runId}:${fullName}`),
    name: check.name,
    fullName,
    historyId: md5(fullName),
    testCaseId: md5(fullName),
    status: ALLURE_STATUS[check.verdict] as TestResult['status'],
    statusDetails: { message: check.message, trace: check.trace },
    stage: 'finished' as TestResult['stage'],
    steps: [],
    attachments: [],
    parameters: [],
    labels,
    links: check.item ? [planLink(check.item)] : [],
    titlePath: ['cc-ci-acceptance', 'harness', suite],
    start: check.start,
    stop: check.stop,
  };
}

export function writeHarnessCheck(resultsDir: string, check: HarnessCheck): void {
  const result = harnessCheckResult(check);
  mkdirSync(resultsDir, { recursive: true });
  writeFileSync(join(resultsDir, `${result.uuid}-result.json`), JSON.stringify(result));
}

/** Java properties, the format of environment.properties: ISO-8859-1 with \u escapes (Allure 3 reads them too). */
export function environmentProperties(entries: readonly (readonly [string, string | undefined])[]): string {
  const escapeProperty = (text: string, key: boolean): string =>
    text.replace(/[\\\n\r\t\f=:#! ]|[^\x20-\x7e]/g, (char: string, offset: number) => {
      const control: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\f': '\\f' };
      if (control[char]) return control[char];
      // Separators and comment marks matter in keys; in values only a leading space does.
      if ('=:#! '.includes(char)) return key || (char === ' ' && offset === 0) ? `\\${char}` : char;
      return `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`;
    });
  return entries
    .filter((entry): entry is readonly [string, string] => entry[1] !== undefined && entry[1] !== '')
    .map(([key, value]) => `${escapeProperty(key, true)}=${escapeProperty(value, false)}`)
    .join('\n')
    .concat('\n');
}

/** categories.json and environment.properties, which every generated report reads. */
export function writeAllureMeta(resultsDir: string, environment: readonly (readonly [string, string | undefined])[]): void {
  mkdirSync(resultsDir, { recursive: true });
  writeFileSync(join(resultsDir, 'categories.json'), `${JSON.stringify(ALLURE_CATEGORIES, null, 2)}\n`);
  writeFileSync(join(resultsDir, 'environment.properties'), environmentProperties(environment));
}
