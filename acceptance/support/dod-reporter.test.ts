import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import type { TestModule } from 'vitest/node';
import DodReporter from './dod-reporter.ts';
import { latestRunRecord } from '../../reporting/run-record-io.ts';
import { renderSummary, summaryPath } from '../../reporting/dod-summary.ts';

type Outcome = { state: 'passed' } | { state: 'failed'; errors: object[] } | { state: 'skipped'; note?: string };

/** Just enough of Vitest's TestModule and TestCase for the reporter. */
function fakeModule(file: string, suiteName: string, tests: [string, Outcome, object?][], errors: object[] = []): TestModule {
  const module = {
    type: 'module',
    moduleId: `/work/acceptance/${file}`,
    project: { name: 'cold' },
    errors: () => errors,
    diagnostic: () => ({ duration: 100 }),
    children: { allTests: () => cases[Symbol.iterator]() },
  };
  const suite = { type: 'suite', name: suiteName, parent: module };
  const cases = tests.map(([name, outcome, meta]) => ({
    name,
    parent: suite,
    module,
    result: () => outcome,
    meta: () => meta ?? {},
    diagnostic: () => ({ duration: 7.4 }),
  }));
  return module as unknown as TestModule;
}

describe('the DoD reporter', () => {
  it('records each item with its verdict, cause and every check, and renders the summary from the record', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'accept-reporter-test-'));
    onTestFinished(() => rm(dir, { recursive: true, force: true }));
    vi.stubEnv('ACCEPT_REPORTS_DIR', dir);
    const exitCode = process.exitCode;
    onTestFinished(() => {
      vi.unstubAllEnvs();
      process.exitCode = exitCode;
    });
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    onTestFinished(() => {
      vi.restoreAllMocks();
    });

    await new DodReporter().onTestRunEnd(
      [
        fakeModule('c2-cert-in-git.spec.ts', 'C2 cert in git', [
          ['the served chain verifies', { state: 'passed' }, { observation: 'chain verifies to the lab root' }],
          [
            'the served leaf is the wildcard_cert from git',
            { state: 'failed', errors: [{ name: 'AssertionError', message: 'served leaf fingerprint AA ≠ git cert BB\n- expected\n+ received' }] },
          ],
        ]),
        fakeModule('c4-live-rebuild.spec.ts', 'C4 live rebuild', [['the machine was created blank', { state: 'skipped' }, { skipReason: 'warm run' }]]),
        fakeModule('d1-testme-trigger.spec.ts', 'D1 !testme trigger', [
          [
            'a member starts a build',
            { state: 'failed', errors: [{ name: 'SshError', verdict: 'ERROR', message: 'SSH to accept-r1 through 127.0.0.1:1055 refused' }] },
          ],
        ]),
        fakeModule('c7-docs.spec.ts', 'C7 docs', [['docs exist', { state: 'passed' }]], [{ name: 'TypeError', message: 'afterAll: x is undefined' }]),
      ],
      [],
    );

    const record = await latestRunRecord(dir);
    expect(record.items.map((item) => [item.id, item.verdict])).toEqual([
      ['C2', 'FAIL'],
      ['C4', 'SKIPPED'],
      ['C7', 'ERROR'],
      ['D1', 'ERROR'],
    ]);
    const [c2, c4, c7, d1] = record.items;
    expect(c2).toMatchObject({
      cause: 'served leaf fingerprint AA ≠ git cert BB',
      evidence: 'the served leaf is the wildcard_cert from git: served leaf fingerprint AA ≠ git cert BB (1 other check passed)',
    });
    expect(c2!.checks).toEqual([
      { name: 'the served chain verifies', verdict: 'PASS', evidence: 'chain verifies to the lab root', durationMs: 7 },
      {
        name: 'the served leaf is the wildcard_cert from git',
        verdict: 'FAIL',
        cause: 'served leaf fingerprint AA ≠ git cert BB',
        errorClass: 'AssertionError',
        durationMs: 7,
      },
    ]);
    expect(c4).toMatchObject({ cause: 'warm run', evidence: 'warm run' });
    // A spec file that failed outside its tests makes its item ERROR, though every test passed.
    expect(c7!.checks.at(-1)).toEqual({ name: 'c7-docs.spec.ts', verdict: 'ERROR', cause: 'afterAll: x is undefined', errorClass: 'TypeError' });
    // A HarnessError is ERROR, never FAIL, whatever its words.
    expect(d1!.checks[0]).toMatchObject({ verdict: 'ERROR', errorClass: 'SshError', cause: 'SSH to accept-r1 through 127.0.0.1:1055 refused' });
    expect(record).toMatchObject({
      mode: 'unknown',
      verdict: { overall: 'ERROR', counts: { PASS: 0, FAIL: 1, ERROR: 2, SKIPPED: 1 } },
      phases: { specsMs: 400 },
    });
    // Each spec file with Vitest's time for it and its tests' own; the wall beyond the tests is overhead.
    expect(record.phases.specFiles?.map(({ file, durationMs, testsMs }) => [file.replace(/^.*acceptance\//, ''), durationMs, testsMs])).toEqual([
      ['c2-cert-in-git.spec.ts', 100, 15],
      ['c4-live-rebuild.spec.ts', 100, 7],
      ['d1-testme-trigger.spec.ts', 100, 7],
      ['c7-docs.spec.ts', 100, 7],
    ]);
    expect(record.phases.waitingMs).toBe(36);
    expect(record.phases.overheadMs).toBe(Math.max(0, record.phases.wallMs! - 36));
    expect(record.finishedAt).toBeDefined();
    expect(await readFile(summaryPath(dir), 'utf8')).toBe(renderSummary(record));
    expect(await readFile(summaryPath(join(dir, 'evidence', record.runId)), 'utf8')).toBe(renderSummary(record));
    expect(process.exitCode).toBe(1);
  });
});
