import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { TestResult } from 'allure-js-commons';
import { describe, expect, it, onTestFinished } from 'vitest';
import { ALLURE_CATEGORIES, applyVerdict, environmentProperties, keyOfFullName, recordVerdict, testKey } from '../reporting/allure.ts';
import { HARNESS_ERROR_NAMES, errorVerdict } from '../reporting/verdict.ts';
import { environmentEntries, finishRunEvidence, syncRunEvidence } from '../acceptance/support/evidence-dir.ts';
import { recordCleanup } from '../acceptance/support/reports.ts';
import { currentRunPath, readRunRecord, writeRunRecord } from '../reporting/run-record-io.ts';
import { withCleanup, type RunRecord } from '../reporting/run-record.ts';
import { sampleRecord } from '../reporting/run-record.fixture.ts';
import { renderSummary, SUMMARY_FILE, summaryPath } from '../reporting/dod-summary.ts';
import { exec } from '../helpers/common/exec.ts';
import { executorInfo, htmlText, missingFrom, pickTestCase, planHistory, recordItems, staticFile } from './report.ts';

const REPO_ROOT = resolve(import.meta.dirname, '..');

describe('verdicts', () => {
  it('FAIL only for an assertion or a declared product failure; ERROR for everything else', () => {
    expect(errorVerdict({ name: 'AssertionError', message: 'expected 1 to be 2' })).toBe('FAIL');
    expect(errorVerdict({ stack: 'TlsVerificationError: TLS verification of 127.0.0.1:443 failed\n    at x' })).toBe('FAIL');
    expect(errorVerdict({ name: 'PemError', message: 'no PEM certificate found' })).toBe('FAIL');
    // Serialised HarnessError: its verdict survives even if its name does not.
    expect(errorVerdict({ name: 'Error', message: 'assertion-looking words', verdict: 'ERROR' })).toBe('ERROR');
    expect(errorVerdict({ stack: 'IncusError: SOCKS5 proxy unreachable\n    at y' })).toBe('ERROR');
    expect(errorVerdict({ name: 'TypeError', message: "Cannot read properties of undefined (reading 'x')" })).toBe('ERROR');
    expect(errorVerdict({ name: 'Error', message: 'Test timed out in 120000ms.' })).toBe('ERROR');
    expect(errorVerdict({ message: 'connect ECONNREFUSED 127.0.0.1:9' })).toBe('ERROR');
    expect(errorVerdict(undefined)).toBe('ERROR');
  });

});

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
    const harness = allureResult({ status: 'failed' as TestResult['status'], statusDetails: { message: 'could not assert the proxy', trace: 'HarnessError: could not assert the proxy\n    at z' } });
    applyVerdict(harness);
    expect(harness.status).toBe('broken');
    expect(harness.labels).toContainEqual({ name: 'tag', value: 'ERROR' });
    const assertion = allureResult({ status: 'broken' as TestResult['status'], statusDetails: { trace: 'AssertionError: expected false to be true\n    at w' } });
    applyVerdict(assertion);
    expect(assertion.status).toBe('failed');
  });

  it('uses the verdict the DoD reporter recorded, with the reason of a skip', () => {
    const fullName = 'cc-ci-acceptance:acceptance/c4-live-rebuild.spec.ts#C4 live rebuild the machine was created blank in this run';
    expect(keyOfFullName(fullName)).toBe(testKey('/work/main/acceptance/c4-live-rebuild.spec.ts', ['C4 live rebuild', 'the machine was created blank in this run']));
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
    const anchors = [...plan.matchAll(/^## (.*)$/gm)].map((match) => match[1]!.toLowerCase().replace(/[^\w\s-]/g, '').trim().replace(/\s+/g, '-'));
    expect(anchors).toEqual(expect.arrayContaining(['phase-1c', 'phase-1-must-still-hold-after-the-refactor']));
  });
});

describe('categories', () => {
  const matches = (category: (typeof ALLURE_CATEGORIES)[number], trace: string) =>
    !('traceRegex' in category) || new RegExp(`^${category.traceRegex!.replace('(?s)', '')}$`, 's').test(trace);

  it('file every HarnessError-family trace under harness errors, and other breakage after it', () => {
    const [harness, other, defects, skipped] = ALLURE_CATEGORIES;
    for (const name of HARNESS_ERROR_NAMES) expect(matches(harness!, `${name}: boom\n    at x`), name).toBe(true);
    expect(matches(harness!, 'TypeError: x is undefined\n    at y')).toBe(false);
    expect(other!.matchedStatuses).toEqual(['broken']);
    expect(defects!.matchedStatuses).toEqual(['failed']);
    expect(skipped!.matchedStatuses).toEqual(['skipped']);
  });

  it('name every subclass of HarnessError in the repository', async () => {
    const found = await exec('grep', ['-rhoE', '--include=*.ts', 'class [A-Za-z]+ extends [A-Za-z]+', 'helpers', 'lab', 'acceptance', 'cli'], { cwd: REPO_ROOT });
    const parents = new Map(found.stdout.trim().split('\n').map((line) => line.split(/ extends |class /).filter(Boolean) as [string, string]));
    const family = (name: string): boolean => name === 'HarnessError' || (parents.has(name) && family(parents.get(name)!));
    const subclasses = [...parents.keys()].filter(family);
    expect(subclasses.length).toBeGreaterThan(3);
    expect(HARNESS_ERROR_NAMES).toEqual(expect.arrayContaining(subclasses));
  });
});

describe('environment.properties', () => {
  it('escapes as Java properties and leaves out unset values', () => {
    expect(environmentProperties([['run.id', 'r1'], ['incus.url', 'https://127.0.0.1:8443'], ['unset', undefined], ['toplevel', ' /nix/store/x'], ['über key', 'ä\\b']])).toBe(
      'run.id=r1\nincus.url=https://127.0.0.1:8443\ntoplevel=\\ /nix/store/x\n\\u00fcber\\ key=\\u00e4\\\\b\n',
    );
  });

  it('shows the run, target, instance, commits, toplevel and versions', () => {
    const record: RunRecord = {
      ...sampleRecord('r1'),
      mode: 'warm',
      keptFrom: 'r0',
      target: { kind: 'lab', label: 'lab (stand-ins: nginx, not Traefik)', server: 'https://127.0.0.1:8443', instanceType: 'container', standIns: ['nginx, not Traefik'], project: 'terraform-ci' },
      instance: { name: 'accept-r0', project: 'terraform-ci' },
      baseRepo: 'http://b',
      instanceRepo: 'http://i',
      commits: { base: 'a'.repeat(40), instance: 'b'.repeat(40), how: 'x' },
      harnessVersion: '0.1.0',
      node: 'v20.20.2',
    };
    const entries = Object.fromEntries(environmentEntries(record, { running: { toplevel: '/nix/store/t' } } as never));
    expect(entries).toMatchObject({
      'run.id': 'r1',
      'run.mode': 'warm (host kept from run r0)',
      target: 'lab (stand-ins: nginx, not Traefik)',
      'target.kind': 'lab',
      'target.server': 'https://127.0.0.1:8443',
      'target.instance-type': 'container',
      'target.stand-ins': 'nginx, not Traefik',
      'incus.project': 'terraform-ci',
      'instance.name': 'accept-r0',
      'base.commit': 'a'.repeat(40),
      'instance.commit': 'b'.repeat(40),
      toplevel: '/nix/store/t',
      'harness.version': '0.1.0',
      'node.version': 'v20.20.2',
    });
    const ssh = Object.fromEntries(environmentEntries({ ...record, target: { kind: 'ssh', server: 'root@cc-nix-test:22', standIns: [] } }, undefined));
    expect([ssh.target, ssh['target.stand-ins']]).toEqual(['ssh root@cc-nix-test:22', 'none']);
  });
});

describe('report helpers', () => {
  it('feeds Allure the history from before this run, so a run reported twice counts once', () => {
    expect(planHistory('r1', { hasLatest: false, hasPrevious: false, buildOrder: 0 })).toEqual({ source: 'none', roll: false, buildOrder: 1 });
    expect(planHistory('r2', { latestRunId: 'r1', hasLatest: true, hasPrevious: false, buildOrder: 1 })).toEqual({ source: 'latest', roll: true, buildOrder: 2 });
    expect(planHistory('r2', { latestRunId: 'r2', hasLatest: true, hasPrevious: true, buildOrder: 2 })).toEqual({ source: 'previous', roll: false, buildOrder: 2 });
    expect(planHistory('r1', { latestRunId: 'r1', hasLatest: true, hasPrevious: false, buildOrder: 1 })).toEqual({ source: 'none', roll: false, buildOrder: 1 });
  });

  it('takes the items of the run record, not its cleanup check', () => {
    const record = withCleanup(sampleRecord(), { verdict: 'PASS', evidence: 'gone', at: 'x' });
    expect(recordItems(record)).toEqual(['C1 repo split', 'C2 cert in git', 'C4 live rebuild', 'D8 reproducible server']);
  });

  it('finds names in the visible text of a rendered page', () => {
    const text = htmlText('<div class="node__title"><span>C2 cert in git</span></div><script>"C1 repo split"</script><b>D10 six recipes via real !testme</b> &amp;');
    expect(missingFrom(text, ['C2 cert in git', 'D10 six recipes via real !testme', 'C1 repo split'])).toEqual(['C1 repo split']);
  });

  it('serves only files under the report', () => {
    expect(staticFile('/r/report', '/index.html#suites')).toBe('/r/report/index.html');
    expect(staticFile('/r/report', '/')).toBe('/r/report/index.html');
    expect(staticFile('/r/report', '/data/suites.json?x=1')).toBe('/r/report/data/suites.json');
    expect(staticFile('/r/report', '/../secret')).toBeUndefined();
    expect(staticFile('/r/report', '/%2e%2e/secret')).toBeUndefined();
    expect(staticFile('/r/report', '/%')).toBeUndefined();
  });

  it('shows the worst test of the worst item', () => {
    const suites = {
      uid: 'root',
      name: 'suites',
      children: [
        { uid: 'g1', name: 'C1 repo split', children: [{ uid: 't1', name: 'a', status: 'passed' }] },
        { uid: 'g4', name: 'C4 live rebuild', children: [{ uid: 't4', name: 'b', status: 'skipped' }] },
        { uid: 'g2', name: 'C2 cert in git', children: [{ uid: 't2a', name: 'c', status: 'passed' }, { uid: 't2b', name: 'd', status: 'failed' }] },
      ],
    };
    expect(pickTestCase(suites, sampleRecord())).toEqual({ item: 'C2 cert in git', route: 'suites/g2/t2b/' });
    expect(pickTestCase({ uid: 'root', name: 'suites', children: [] }, sampleRecord())).toBeUndefined();
  });

  it('names the build in the trend after the run', () => {
    expect(executorInfo('r7', 7)).toMatchObject({ buildName: 'run r7', buildOrder: 7, reportName: 'cc-ci Definition of Done' });
  });
});

describe('evidence of a run', () => {
  async function reportsDir(): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'accept-evidence-test-'));
    onTestFinished(() => rm(dir, { recursive: true, force: true }));
    await mkdir(join(dir, 'allure-results'));
    await mkdir(join(dir, 'evidence'));
    await writeFile(join(dir, 'allure-results', 'x-result.json'), '{}');
    await writeFile(join(dir, 'evidence', 'd8.json'), JSON.stringify({ runId: 'r9', static: { toplevel: '/nix/store/s' }, running: { toplevel: '/nix/store/r' } }));
    await writeFile(join(dir, 'evidence', 'd8.md'), '# D8\n');
    return dir;
  }

  it('collects the record, summary, D8, ledger and Allure results under one run id, again and again', async () => {
    const dir = await reportsDir();
    await writeFile(currentRunPath(dir), 'r9\n');
    await writeRunRecord(dir, sampleRecord('r9'));
    await finishRunEvidence(dir, { runId: 'r9', ledger: [{ at: 't', kind: 'exec', command: 'nixos-rebuild switch', exitCode: 0, durationMs: 5, purpose: 'runbook step 3', outputTail: '' }] });
    const run = join(dir, 'evidence', 'r9');
    expect((await readdir(run)).sort()).toEqual(['allure-results', 'd8.json', 'd8.md', SUMMARY_FILE, 'index.md', 'ledger.json', 'ledger.txt', 'run.json'].sort());
    expect(await readFile(summaryPath(run), 'utf8')).toBe(renderSummary(sampleRecord('r9')));
    expect(await readFile(join(run, 'index.md'), 'utf8')).toContain('**Run r9: FAIL** (2 PASS, 1 FAIL, 0 ERROR, 1 SKIPPED)');
    expect(await readFile(join(run, 'ledger.txt'), 'utf8')).toContain('exec [exit 0, 5 ms] nixos-rebuild switch (runbook step 3)');
    expect(await readdir(join(run, 'allure-results'))).toEqual(expect.arrayContaining(['x-result.json', 'categories.json', 'environment.properties']));
    expect(await readFile(join(run, 'allure-results', 'environment.properties'), 'utf8')).toMatch(/^run\.id=r9$/m);
    expect(await readFile(join(run, 'allure-results', 'environment.properties'), 'utf8')).toMatch(/^toplevel=\/nix\/store\/r$/m);
    // A later moment of the same run adds to the same directory.
    await writeFile(join(dir, 'allure-results', 'y-result.json'), '{}');
    expect(await syncRunEvidence(dir)).toBe('r9');
    expect(await readdir(join(run, 'allure-results'))).toContain('y-result.json');
  });

  it('records the cleanup check, makes it an Allure result and counts it in the verdict, for this run only', async () => {
    const dir = await reportsDir();
    await writeFile(currentRunPath(dir), 'r9\n');
    await writeRunRecord(dir, sampleRecord('r9'));
    await recordCleanup(dir, 'r9', { verdict: 'FAIL', evidence: 'still present after teardown: accept-r9', at: '2026-11-25T20:21:00.000Z' });
    await finishRunEvidence(dir, { runId: 'r9', ledger: [] });
    const record = await readRunRecord(dir, 'r9');
    expect(record.cleanup).toEqual({ verdict: 'FAIL', evidence: 'still present after teardown: accept-r9', at: '2026-11-25T20:21:00.000Z' });
    expect(record.verdict).toMatchObject({ overall: 'FAIL', counts: { PASS: 2, FAIL: 2, ERROR: 0, SKIPPED: 1 } });
    expect(record.phases.teardownMs).toBeGreaterThanOrEqual(0);
    const summary = await readFile(summaryPath(dir), 'utf8');
    expect(summary).toContain('**Run r9: FAIL** (2 PASS, 2 FAIL, 0 ERROR, 1 SKIPPED)');
    expect(summary).toContain('| C6 cleanup after teardown | FAIL | still present after teardown: accept-r9 |');
    const results = (await readdir(join(dir, 'allure-results'))).filter((name) => name.endsWith('-result.json') && name !== 'x-result.json');
    expect(results).toHaveLength(1);
    const cleanup = JSON.parse(await readFile(join(dir, 'allure-results', results[0]!), 'utf8')) as TestResult;
    expect(cleanup).toMatchObject({ name: 'C6 cleanup after teardown', status: 'failed', statusDetails: { message: 'still present after teardown: accept-r9' } });
    expect(cleanup.labels).toContainEqual({ name: 'dod-item', value: 'C6' });

    // When setup failed before any record of its own, another run's record and summary stay as they are.
    const other = await reportsDir();
    await writeRunRecord(other, withCleanup(sampleRecord('r9'), record.cleanup!));
    await writeFile(summaryPath(other), renderSummary(record));
    await finishRunEvidence(other, { runId: 'r10', ledger: [] });
    expect(await readFile(summaryPath(other), 'utf8')).toBe(renderSummary(record));
    expect((await readdir(join(other, 'allure-results'))).filter((name) => name.endsWith('-result.json'))).toEqual(['x-result.json']);
  });

  it('keeps a cleanup check made before the reporter ran (setup failed), and the reporter\'s items after it', async () => {
    const dir = await reportsDir();
    await recordCleanup(dir, 'r11', { verdict: 'PASS', evidence: 'accept-r11 deleted', at: 'x' });
    const started = await readRunRecord(dir, 'r11');
    expect(started).toMatchObject({ runId: 'r11', mode: 'cold', items: [], cleanup: { verdict: 'PASS' } });
    expect(started.verdict).toBeUndefined();
    expect(await readFile(summaryPath(dir), 'utf8')).toContain('| C6 cleanup after teardown | PASS | accept-r11 deleted |');
  });
});
