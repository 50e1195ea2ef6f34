import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestResult } from 'allure-js-commons';
import { describe, expect, it, onTestFinished } from 'vitest';
import { renderSummary, SUMMARY_FILE, summaryPath } from '../../reporting/dod-summary.ts';
import { currentRunPath, readRunRecord, writeRunRecord } from '../../reporting/run-record-io.ts';
import { withCleanup, type RunRecord } from '../../reporting/run-record.ts';
import { sampleRecord } from '../../reporting/run-record.fixture.ts';
import { environmentEntries, finishRunEvidence, syncRunEvidence } from './evidence-dir.ts';
import { recordCleanup } from './reports.ts';

describe('environment.properties', () => {
  it('shows the run, target, instance, commits, toplevel and versions', () => {
    const record: RunRecord = {
      ...sampleRecord('r1'),
      mode: 'warm',
      keptFrom: 'r0',
      target: {
        kind: 'lab',
        label: 'lab (stand-ins: nginx, not Traefik)',
        server: 'https://127.0.0.1:8443',
        instanceType: 'container',
        standIns: ['nginx, not Traefik'],
        project: 'terraform-ci',
      },
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

describe('evidence of a run', () => {
  async function reportsDir(): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'accept-evidence-test-'));
    onTestFinished(() => rm(dir, { recursive: true, force: true }));
    await mkdir(join(dir, 'allure-results'));
    await mkdir(join(dir, 'evidence'));
    await writeFile(join(dir, 'allure-results', 'x-result.json'), '{}');
    await writeFile(
      join(dir, 'evidence', 'd8.json'),
      JSON.stringify({ runId: 'r9', static: { toplevel: '/nix/store/s' }, running: { toplevel: '/nix/store/r' } }),
    );
    await writeFile(join(dir, 'evidence', 'd8.md'), '# D8\n');
    return dir;
  }

  it('collects the record, summary, D8, ledger and Allure results under one run id, again and again', async () => {
    const dir = await reportsDir();
    await writeFile(currentRunPath(dir), 'r9\n');
    await writeRunRecord(dir, sampleRecord('r9'));
    await finishRunEvidence(dir, {
      runId: 'r9',
      ledger: [{ at: 't', kind: 'exec', command: 'nixos-rebuild switch', exitCode: 0, durationMs: 5, purpose: 'runbook step 3', outputTail: '' }],
    });
    const run = join(dir, 'evidence', 'r9');
    expect((await readdir(run)).sort()).toEqual(
      ['allure-results', 'd8.json', 'd8.md', SUMMARY_FILE, 'index.md', 'ledger.json', 'ledger.txt', 'run.json'].sort(),
    );
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
    expect(cleanup).toMatchObject({
      name: 'C6 cleanup after teardown',
      status: 'failed',
      statusDetails: { message: 'still present after teardown: accept-r9' },
    });
    expect(cleanup.labels).toContainEqual({ name: 'dod-item', value: 'C6' });

    // When setup failed before any record of its own, another run's record and summary stay as they are.
    const other = await reportsDir();
    await writeRunRecord(other, withCleanup(sampleRecord('r9'), record.cleanup!));
    await writeFile(summaryPath(other), renderSummary(record));
    await finishRunEvidence(other, { runId: 'r10', ledger: [] });
    expect(await readFile(summaryPath(other), 'utf8')).toBe(renderSummary(record));
    expect((await readdir(join(other, 'allure-results'))).filter((name) => name.endsWith('-result.json'))).toEqual(['x-result.json']);
  });

  it("keeps a cleanup check made before the reporter ran (setup failed), and the reporter's items after it", async () => {
    const dir = await reportsDir();
    await recordCleanup(dir, 'r11', { verdict: 'PASS', evidence: 'accept-r11 deleted', at: 'x' });
    const started = await readRunRecord(dir, 'r11');
    expect(started).toMatchObject({ runId: 'r11', mode: 'cold', items: [], cleanup: { verdict: 'PASS' } });
    expect(started.verdict).toBeUndefined();
    expect(await readFile(summaryPath(dir), 'utf8')).toContain('| C6 cleanup after teardown | PASS | accept-r11 deleted |');
  });
});
