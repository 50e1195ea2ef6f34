/**
 * The run record's validator: every field a reader relies on, checked when a record is read back
 * (run-record-io.ts), so that a file of another version or a malformed one is refused by name.
 */
import { HarnessError } from '../helpers/common/errors.ts';
import { DOD_ITEMS } from './dod-items.ts';
import { RUN_RECORD_SCHEMA_VERSION, type RunRecord } from './run-record.ts';
import { VERDICTS, type Verdict } from './verdict.ts';

class RecordShape {
  constructor(readonly file: string) {}

  fail(path: string, expected: string, value: unknown): never {
    const seen = value === undefined ? 'missing' : `got ${JSON.stringify(value)?.slice(0, 80)}`;
    throw new HarnessError(`${this.file}: ${path} should be ${expected}, ${seen}; the file is not a run record this harness wrote (delete it, or run again)`);
  }

  object(value: unknown, path: string): Record<string, unknown> {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) this.fail(path, 'an object', value);
    return value as Record<string, unknown>;
  }

  string(value: unknown, path: string, optional = false): void {
    if (optional && value === undefined) return;
    if (typeof value !== 'string') this.fail(path, 'a string', value);
  }

  number(value: unknown, path: string, required = false): void {
    if (value === undefined && !required) return;
    if (typeof value !== 'number' || !Number.isFinite(value)) this.fail(path, 'a number', value);
  }

  verdict(value: unknown, path: string): void {
    if (!VERDICTS.includes(value as Verdict)) this.fail(path, `one of ${VERDICTS.join(', ')}`, value);
  }

  array(value: unknown, path: string, optional = false): unknown[] {
    if (optional && value === undefined) return [];
    if (!Array.isArray(value)) this.fail(path, 'an array', value);
    return value;
  }
}

/** Checks every field a reader relies on; throws a HarnessError naming the file and the field. */
export function validateRunRecord(value: unknown, file: string): RunRecord {
  const shape = new RecordShape(file);
  const record = shape.object(value, 'the record');
  if (record.schemaVersion === undefined) shape.fail('schemaVersion', `${RUN_RECORD_SCHEMA_VERSION}`, undefined);
  if (record.schemaVersion !== RUN_RECORD_SCHEMA_VERSION) {
    throw new HarnessError(
      `${file}: run record schemaVersion ${JSON.stringify(record.schemaVersion)}, but this harness reads version ${RUN_RECORD_SCHEMA_VERSION}; it was written by another version of the harness (run the acceptance run again to get a record this one reads)`,
    );
  }
  shape.string(record.runId, 'runId');
  if (!['cold', 'warm', 'unknown'].includes(record.mode as string)) shape.fail('mode', 'cold, warm or unknown', record.mode);
  const target = shape.object(record.target, 'target');
  shape.string(target.kind, 'target.kind');
  shape.string(target.label, 'target.label', true);
  for (const key of ['server', 'instanceType', 'incusUrl', 'project', 'socks']) shape.string(target[key], `target.${key}`, true);
  shape.array(target.standIns, 'target.standIns', true).forEach((standIn, index) => {
    shape.string(standIn, `target.standIns[${index}]`);
  });
  shape.array(target.notes, 'target.notes', true).forEach((note, index) => {
    shape.string(note, `target.notes[${index}]`);
  });
  shape.string(record.startedAt, 'startedAt');
  shape.string(record.finishedAt, 'finishedAt', true);
  const phases = shape.object(record.phases, 'phases');
  for (const key of ['setupMs', 'specsMs', 'teardownMs', 'deleteMs', 'wallMs', 'waitingMs', 'overheadMs']) shape.number(phases[key], `phases.${key}`);
  if (phases.provision !== undefined) {
    const provision = shape.object(phases.provision, 'phases.provision');
    for (const key of ['totalMs', 'createMs', 'bootMs', 'runbookMs']) shape.number(provision[key], `phases.provision.${key}`, true);
    shape.number(provision.machinesMs, 'phases.provision.machinesMs');
    shape.array(provision.steps, 'phases.provision.steps').forEach((entry, index) => {
      const step = shape.object(entry, `phases.provision.steps[${index}]`);
      shape.number(step.index, `phases.provision.steps[${index}].index`, true);
      shape.string(step.text, `phases.provision.steps[${index}].text`);
      shape.number(step.durationMs, `phases.provision.steps[${index}].durationMs`, true);
    });
  }
  shape.array(phases.specFiles, 'phases.specFiles', true).forEach((entry, index) => {
    const file = shape.object(entry, `phases.specFiles[${index}]`);
    shape.string(file.file, `phases.specFiles[${index}].file`);
    for (const key of ['durationMs', 'testsMs']) shape.number(file[key], `phases.specFiles[${index}].${key}`, true);
  });
  if (record.verdict !== undefined) {
    const verdict = shape.object(record.verdict, 'verdict');
    shape.verdict(verdict.overall, 'verdict.overall');
    const counts = shape.object(verdict.counts, 'verdict.counts');
    for (const key of VERDICTS) if (typeof counts[key] !== 'number') shape.fail(`verdict.counts.${key}`, 'a number', counts[key]);
    shape.string(verdict.problem, 'verdict.problem', true);
    shape.string(verdict.setupError, 'verdict.setupError', true);
  }
  shape.array(record.items, 'items').forEach((entry, index) => {
    const item = shape.object(entry, `items[${index}]`);
    if (typeof item.id !== 'string' || !(item.id in DOD_ITEMS)) shape.fail(`items[${index}].id`, 'a DoD item id (C1…D10)', item.id);
    shape.verdict(item.verdict, `items[${index}].verdict`);
    shape.string(item.evidence, `items[${index}].evidence`);
    shape.string(item.cause, `items[${index}].cause`, true);
    shape.array(item.checks, `items[${index}].checks`).forEach((checkEntry, checkIndex) => {
      const path = `items[${index}].checks[${checkIndex}]`;
      const check = shape.object(checkEntry, path);
      shape.string(check.name, `${path}.name`);
      shape.verdict(check.verdict, `${path}.verdict`);
      for (const key of ['evidence', 'cause', 'errorClass', 'machine']) shape.string(check[key], `${path}.${key}`, true);
      shape.number(check.durationMs, `${path}.durationMs`);
    });
  });
  if (record.cleanup !== undefined) {
    const cleanup = shape.object(record.cleanup, 'cleanup');
    shape.verdict(cleanup.verdict, 'cleanup.verdict');
    shape.string(cleanup.evidence, 'cleanup.evidence');
    shape.string(cleanup.at, 'cleanup.at');
    if (cleanup.reach !== undefined) shape.string(cleanup.reach, 'cleanup.reach');
  }
  return record as unknown as RunRecord;
}
