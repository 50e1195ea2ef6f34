/**
 * The run record on disk: reports/evidence/<run-id>/run.json and reports/evidence/current-run.
 * Written redacted; read back validated (run-record-validate.ts), never trusted as it stands.
 */
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { displayUrl } from '../helpers/common/credentials.ts';
import { HarnessError } from '../helpers/common/errors.ts';
import { redact } from '../helpers/common/redact.ts';
import type { RunRecord } from './run-record.ts';
import { validateRunRecord } from './run-record-validate.ts';

export const RUN_RECORD_FILE = 'run.json';
/** reports/evidence/current-run: the id of the run that reports/ describes. */
export const CURRENT_RUN_FILE = 'current-run';

export function runRecordPath(reportsDir: string, runId: string): string {
  return join(reportsDir, 'evidence', runId, RUN_RECORD_FILE);
}

export function currentRunPath(reportsDir: string): string {
  return join(reportsDir, 'evidence', CURRENT_RUN_FILE);
}

export async function currentRunId(reportsDir: string): Promise<string | undefined> {
  const text = await readFile(currentRunPath(reportsDir), 'utf8').catch(() => undefined);
  return text?.trim() || undefined;
}

export async function writeRunRecord(reportsDir: string, record: RunRecord): Promise<string> {
  const file = runRecordPath(reportsDir, record.runId);
  await mkdir(dirname(file), { recursive: true });
  // Evidence and causes come from error messages; redact, as everything that leaves does. Each
  // string before it is escaped, so a secret with a quote or backslash in it is still found.
  const recorded = {
    ...record,
    baseRepo: record.baseRepo && displayUrl(record.baseRepo),
    instanceRepo: record.instanceRepo && displayUrl(record.instanceRepo),
  };
  await writeFile(file, `${JSON.stringify(recorded, (_key, value: unknown) => (typeof value === 'string' ? redact(value) : value), 2)}\n`);
  return file;
}

/** The record in `file`, validated; a missing, unparsable or foreign file is a HarnessError naming it. */
export async function readRunRecordFile(file: string): Promise<RunRecord> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new HarnessError(
      `no run record at ${file} (${(error as NodeJS.ErrnoException).code ?? String(error)}): the DoD reporter writes it at the end of an acceptance run; run one first`,
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new HarnessError(`${file}: not JSON (${(error as Error).message}); the run record was cut short or edited by hand (delete it, or run again)`);
  }
  return validateRunRecord(value, file);
}

export function readRunRecord(reportsDir: string, runId: string): Promise<RunRecord> {
  return readRunRecordFile(runRecordPath(reportsDir, runId));
}

/** The record of run `runId` if there is one; a file that is there but not valid still throws. */
export async function findRunRecord(reportsDir: string, runId: string): Promise<RunRecord | undefined> {
  const file = runRecordPath(reportsDir, runId);
  const exists = await readFile(file).then(
    () => true,
    () => false,
  );
  return exists ? readRunRecordFile(file) : undefined;
}

/** The record of the run reports/ describes: current-run's, else the newest under evidence/. */
export async function latestRunRecord(reportsDir: string): Promise<RunRecord> {
  const current = await currentRunId(reportsDir);
  if (current) return readRunRecord(reportsDir, current);
  const root = join(reportsDir, 'evidence');
  const entries = await readdir(root, { withFileTypes: true }).catch(() => []);
  const records = await Promise.all(
    entries.filter((entry) => entry.isDirectory()).map((entry) => findRunRecord(reportsDir, entry.name).catch(() => undefined)),
  );
  const newest = records.filter((record) => record !== undefined).sort((a, b) => (b.finishedAt ?? b.startedAt).localeCompare(a.finishedAt ?? a.startedAt))[0];
  if (!newest)
    throw new HarnessError(`no run record under ${root}: neither ${CURRENT_RUN_FILE} nor any <run-id>/${RUN_RECORD_FILE}; run an acceptance run first`);
  return newest;
}
