import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { runRecordPath, writeRunRecord } from '../../reporting/run-record-io.ts';
import { withCleanup, withResults } from '../../reporting/run-record.ts';
import { emptyRecord, sampleRecord } from '../../reporting/run-record.fixture.ts';
import { runPassed } from './reports.ts';

async function scratch(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'accept-run-record-test-'));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

describe('runPassed (ACCEPT_KEEP=on-failure)', () => {
  it("is true only when this run's record says PASS", async () => {
    const dir = await scratch();
    const passing = withResults(emptyRecord('p1'), { items: sampleRecord().items.filter((item) => item.verdict === 'PASS'), finishedAt: 'x' });
    await writeRunRecord(dir, passing);
    expect(await runPassed(dir, 'p1')).toBe(true);
    // A leak after teardown makes the run fail.
    await writeRunRecord(dir, withCleanup(passing, { verdict: 'FAIL', evidence: 'still present after teardown: accept-p1', at: 'x' }));
    expect(await runPassed(dir, 'p1')).toBe(false);
    await writeRunRecord(dir, sampleRecord('f1'));
    expect(await runPassed(dir, 'f1')).toBe(false);
    // No record, a record with no verdict yet, or one that is not valid: no pass.
    expect(await runPassed(dir, 'absent')).toBe(false);
    await writeRunRecord(dir, emptyRecord('unfinished'));
    expect(await runPassed(dir, 'unfinished')).toBe(false);
    await writeFile(runRecordPath(dir, 'p1'), '{}');
    expect(await runPassed(dir, 'p1')).toBe(false);
  });
});
