import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { HarnessError } from '../helpers/common/errors.ts';
import { registerSecret } from '../helpers/common/redact.ts';
import { currentRunPath, findRunRecord, latestRunRecord, readRunRecord, runRecordPath, writeRunRecord } from './run-record-io.ts';
import { itemRecord, verdictsByKey, withCleanup, withOverhead, withResults, type RunRecord } from './run-record.ts';
import { PHASES, emptyRecord, phasedRecord, sampleRecord } from './run-record.fixture.ts';

async function scratch(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'accept-run-record-test-'));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

describe('the run record', () => {
  it('reads back what was written', async () => {
    const dir = await scratch();
    const record = withCleanup(sampleRecord(), { verdict: 'PASS', evidence: 'accept-r9 deleted', at: '2026-11-25T20:21:00.000Z' });
    expect(await writeRunRecord(dir, record)).toBe(join(dir, 'evidence', 'r9', 'run.json'));
    expect(await readRunRecord(dir, 'r9')).toEqual(record);
    expect(verdictsByKey(record)).toEqual(
      new Map([
        ['C1', 'PASS'],
        ['C2', 'FAIL'],
        ['C4', 'SKIPPED'],
        ['D8', 'PASS'],
        ['C6 cleanup', 'PASS'],
      ]),
    );
  });

  it('is redacted when written', async () => {
    const dir = await scratch();
    registerSecret('hunter2-run-record-secret');
    // A secret JSON would escape must be found too.
    registerSecret('quote"and\\backslash-secret');
    const record = withResults(emptyRecord(), {
      items: [itemRecord('D6', [{ name: 'no leak', verdict: 'FAIL', cause: 'found hunter2-run-record-secret and quote"and\\backslash-secret in the log' }])],
      finishedAt: 'x',
    });
    await writeRunRecord(dir, record);
    const read = JSON.stringify(await readRunRecord(dir, 'r9'));
    expect(read).not.toContain('hunter2-run-record-secret');
    expect((await readRunRecord(dir, 'r9')).items[0]!.cause).not.toContain('backslash-secret');
    expect(read).toContain('found ');
  });

  it('refuses another schema version, naming the file and the version', async () => {
    const dir = await scratch();
    const file = runRecordPath(dir, 'r9');
    await mkdir(join(dir, 'evidence', 'r9'), { recursive: true });
    await writeFile(file, JSON.stringify({ ...sampleRecord(), schemaVersion: 2 }));
    const error = await readRunRecord(dir, 'r9').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(HarnessError);
    expect((error as Error).message).toContain(file);
    expect((error as Error).message).toMatch(/schemaVersion 2, but this harness reads version 1/);
  });

  it('refuses a malformed file, naming the file and the field', async () => {
    const dir = await scratch();
    const file = runRecordPath(dir, 'r9');
    await mkdir(join(dir, 'evidence', 'r9'), { recursive: true });
    const record = sampleRecord();
    const cases: [unknown, RegExp][] = [
      [{ ...record, items: [{ ...record.items[0], verdict: 'MAYBE' }] }, /items\[0\]\.verdict should be one of PASS, FAIL, ERROR, SKIPPED, got "MAYBE"/],
      [{ ...record, items: [{ ...record.items[0], id: 'X1' }] }, /items\[0\]\.id should be a DoD item id/],
      [{ ...record, target: { standIns: ['forge'] } }, /target\.kind should be a string, missing/],
      [{ ...record, verdict: { ...record.verdict, counts: {} } }, /verdict\.counts\.PASS should be a number/],
      [{ ...record, cleanup: { verdict: 'PASS' } }, /cleanup\.evidence should be a string/],
      [[], /the record should be an object/],
    ];
    for (const [value, expected] of cases) {
      await writeFile(file, JSON.stringify(value));
      await expect(readRunRecord(dir, 'r9')).rejects.toThrow(expected);
      await expect(readRunRecord(dir, 'r9')).rejects.toThrow(file);
    }
    await writeFile(file, '{"schemaVersion": 1, "runId": ');
    await expect(readRunRecord(dir, 'r9')).rejects.toThrow(new RegExp(`${file.replaceAll('.', '\\.')}: not JSON`));
    await expect(readRunRecord(dir, 'r10')).rejects.toThrow(/no run record at .*evidence\/r10\/run\.json/);
    expect(await findRunRecord(dir, 'r10')).toBeUndefined();
  });

  it('is found through current-run, else as the newest record', async () => {
    const dir = await scratch();
    await expect(latestRunRecord(dir)).rejects.toThrow(/no run record under/);
    await writeRunRecord(dir, { ...sampleRecord('older'), finishedAt: '2026-11-25T20:00:00.000Z' });
    await writeRunRecord(dir, { ...sampleRecord('newer'), finishedAt: '2026-11-25T21:00:00.000Z' });
    expect((await latestRunRecord(dir)).runId).toBe('newer');
    await writeFile(currentRunPath(dir), 'older\n');
    expect((await latestRunRecord(dir)).runId).toBe('older');
  });
});

describe('the phases of a run', () => {
  const { provision, specFiles } = PHASES;
  const finished = () => phasedRecord();

  it('round-trips create, boot, each runbook step, each spec file, the delete and the overhead', async () => {
    const dir = await scratch();
    const record = finished();
    await writeRunRecord(dir, record);
    const read = await readRunRecord(dir, 'r9');
    expect(read.phases).toEqual(record.phases);
    expect(read.phases).toMatchObject({ provision, specFiles, deleteMs: 1_800, teardownMs: 3_000 });
  });

  it('reads a record of an older run, which has no phases beyond setup, specs and teardown', async () => {
    const dir = await scratch();
    const older = { ...sampleRecord(), phases: { setupMs: 15_818, specsMs: 32_445 } };
    await writeRunRecord(dir, older);
    expect((await readRunRecord(dir, 'r9')).phases).toEqual({ setupMs: 15_818, specsMs: 32_445 });
    // Without the spec files' times there is no overhead to give.
    expect(withOverhead(older).phases).toEqual(older.phases);
  });

  it('refuses malformed phases, naming the field', async () => {
    const dir = await scratch();
    const broken = { ...finished(), phases: { ...finished().phases, provision: { ...provision, steps: [{ index: 1, text: 'x', durationMs: 'slow' }] } } };
    await writeRunRecord(dir, broken as unknown as RunRecord);
    await expect(readRunRecord(dir, 'r9')).rejects.toThrow(/phases\.provision\.steps\[0\]\.durationMs should be a number/);
    await writeRunRecord(dir, { ...finished(), phases: { specFiles: [{ file: 'a.spec.ts' }] } } as unknown as RunRecord);
    await expect(readRunRecord(dir, 'r9')).rejects.toThrow(/phases\.specFiles\[0\]\.durationMs should be a number, missing/);
  });
});
