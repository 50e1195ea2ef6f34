import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { TestResult } from 'allure-js-commons';
import { describe, expect, it } from 'vitest';
import { exec } from '../helpers/common/exec.ts';
import { ALLURE_CATEGORIES, applyVerdict, environmentProperties, keyOfFullName, recordVerdict, testKey } from './allure.ts';
import { HARNESS_ERROR_NAMES } from './verdict.ts';

const REPO_ROOT = resolve(import.meta.dirname, '..');

function allureResult(overrides: Partial<TestResult>): TestResult {
  return {
    uuid: 'u',
    name: 'the served leaf is the wildcard_cert from git',
    fullName: 'cc-ci-acceptance:acceptance/c2-cert-in-git.spec.ts#C2 cert in git the served leaf is the wildcard_cert from git',
    historyId: 'h',
    status: 'failed' as TestResult['status'],
    statusDetails: {},
    stage: 'finished' as TestResult['stage'],
    steps: [],
    attachments: [],
    parameters: [],
    labels: [{ name: 'dod-item', value: 'C2' }],
    links: [],
    ...overrides,
  } as TestResult;
}

describe('the Allure listener', () => {
  it('never lets a harness error read as failed, nor an assertion as broken', () => {
    // allure-vitest calls an error "failed" when its message says "assert"; the harness says ERROR.
    const harness = allureResult({
      status: 'failed' as TestResult['status'],
      statusDetails: { message: 'could not assert the proxy', trace: 'HarnessError: could not assert the proxy\n    at z' },
    });
    applyVerdict(harness);
    expect(harness.status).toBe('broken');
    expect(harness.labels).toContainEqual({ name: 'tag', value: 'ERROR' });
    const assertion = allureResult({
      status: 'broken' as TestResult['status'],
      statusDetails: { trace: 'AssertionError: expected false to be true\n    at w' },
    });
    applyVerdict(assertion);
    expect(assertion.status).toBe('failed');
  });

  it('uses the verdict the DoD reporter recorded, with the reason of a skip', () => {
    const fullName = 'cc-ci-acceptance:acceptance/c4-live-rebuild.spec.ts#C4 live rebuild the machine was created blank in this run';
    expect(keyOfFullName(fullName)).toBe(
      testKey('/work/main/acceptance/c4-live-rebuild.spec.ts', ['C4 live rebuild', 'the machine was created blank in this run']),
    );
    recordVerdict(keyOfFullName(fullName)!, { verdict: 'SKIPPED', reason: 'warm run: this host was not created by this run' });
    const skipped = allureResult({ fullName, status: 'skipped' as TestResult['status'], labels: [{ name: 'dod-item', value: 'C4' }] });
    applyVerdict(skipped);
    expect(skipped.status).toBe('skipped');
    expect(skipped.statusDetails.message).toBe('warm run: this host was not created by this run');
  });

  it('links each result to its plan item, once', () => {
    const result = allureResult({ status: 'passed' as TestResult['status'] });
    applyVerdict(result);
    applyVerdict(result);
    expect(result.links).toEqual([{ name: 'C2 cert in git', url: 'dod.md#phase-1c', type: 'link' }]);
    const d1 = allureResult({ status: 'passed' as TestResult['status'], labels: [{ name: 'dod-item', value: 'D1' }] });
    applyVerdict(d1);
    expect(d1.links[0]).toEqual({ name: 'D1 !testme trigger', url: 'dod.md#phase-1-must-still-hold-after-the-refactor', type: 'link' });
  });

  it('points its links at headings the plan really has', async () => {
    const plan = await readFile(join(REPO_ROOT, 'docs', 'dod.md'), 'utf8').catch(() => undefined);
    if (!plan) return;
    const anchors = [...plan.matchAll(/^## (.*)$/gm)].map((match) =>
      match[1]!
        .toLowerCase()
        .replace(/[^\w\s-]/g, '')
        .trim()
        .replace(/\s+/g, '-'),
    );
    expect(anchors).toEqual(expect.arrayContaining(['phase-1c', 'phase-1-must-still-hold-after-the-refactor']));
  });
});

describe('categories', () => {
  // As Allure 3 (its allure2 plugin) matches a category: RegExp with flag s, tested anywhere in the trace.
  const matches = (category: (typeof ALLURE_CATEGORIES)[number], trace: string) =>
    !('traceRegex' in category) || new RegExp(category.traceRegex!, 's').test(trace);

  it('file every HarnessError-family trace under harness errors, and other breakage after it', () => {
    const [harness, other, defects, skipped] = ALLURE_CATEGORIES;
    for (const name of HARNESS_ERROR_NAMES) expect(matches(harness!, `${name}: boom\n    at x`), name).toBe(true);
    expect(matches(harness!, 'TypeError: x is undefined\n    at y')).toBe(false);
    expect(matches(harness!, 'TypeError: x is undefined\n    at y\nCaused by: HarnessError: z')).toBe(false);
    expect(other!.matchedStatuses).toEqual(['broken']);
    expect(defects!.matchedStatuses).toEqual(['failed']);
    expect(skipped!.matchedStatuses).toEqual(['skipped']);
  });

  it('name every subclass of HarnessError in the repository', async () => {
    const found = await exec(
      'grep',
      ['-rhoE', '--include=*.ts', 'class [A-Za-z]+ extends [A-Za-z]+', 'helpers', 'machines', 'lab', 'acceptance', 'reporting', 'cli'],
      { cwd: REPO_ROOT },
    );
    const parents = new Map(
      found.stdout
        .trim()
        .split('\n')
        .map((line) => line.split(/ extends |class /).filter(Boolean) as [string, string]),
    );
    const family = (name: string): boolean => name === 'HarnessError' || (parents.has(name) && family(parents.get(name)!));
    const subclasses = [...parents.keys()].filter(family);
    expect(subclasses.length).toBeGreaterThan(3);
    expect(HARNESS_ERROR_NAMES).toEqual(expect.arrayContaining(subclasses));
  });
});

describe('environment.properties', () => {
  it('escapes as Java properties and leaves out unset values', () => {
    expect(
      environmentProperties([
        ['run.id', 'r1'],
        ['incus.url', 'https://127.0.0.1:8443'],
        ['unset', undefined],
        ['toplevel', ' /nix/store/x'],
        ['über key', 'ä\\b'],
      ]),
    ).toBe('run.id=r1\nincus.url=https://127.0.0.1:8443\ntoplevel=\\ /nix/store/x\n\\u00fcber\\ key=\\u00e4\\\\b\n');
  });
});
