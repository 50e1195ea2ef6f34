/**
 * The DoD summary, reports/dod-summary.md: one rendering of the run record (run-record.ts), for
 * people. The only code that writes it or knows its name; nothing reads it back.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { redact } from '../helpers/common/redact.ts';
import { DOD_ITEMS, itemLabel, type DodItemId } from './dod-items.ts';
import { describeTargetRecord, type CleanupRecord, type RunRecord, type RunVerdict } from './run-record.ts';

export const SUMMARY_FILE = 'dod-summary.md';

export function summaryPath(dir: string): string {
  return join(dir, SUMMARY_FILE);
}

export const CLEANUP_CHECK = 'C6 cleanup after teardown';

const cell = (text: string) => redact(text).replaceAll('|', '\\|');

/** The run's one line, at the top of the summary: `**Run <id>: FAIL** (7 PASS, 1 FAIL, 0 ERROR, 0 SKIPPED)`. */
export function verdictLine(runId: string | undefined, verdict: RunVerdict): string {
  const counts = (['PASS', 'FAIL', 'ERROR', 'SKIPPED'] as const).map((name) => `${verdict.counts[name]} ${name}`).join(', ');
  return redact(`**Run ${runId ?? '(no run id)'}: ${verdict.overall}** (${counts})${verdict.problem ? `: ${verdict.problem}` : ''}`);
}

/** The cleanup check's row, as the summary and the console show it. */
export function cleanupRow(cleanup: Pick<CleanupRecord, 'verdict' | 'evidence'>): string {
  return `| ${CLEANUP_CHECK} | ${cleanup.verdict} | ${cell(cleanup.evidence)} |`;
}

export function renderSummary(record: RunRecord): string {
  const rows = record.items.map((item) => `| ${itemLabel(item.id)} | ${item.verdict} | ${cell(item.evidence)} |`);
  const checked = new Set(record.items.map((item) => item.id));
  const uncovered = (Object.keys(DOD_ITEMS) as DodItemId[]).filter((id) => !checked.has(id));
  const lines = ['# DoD summary', ''];
  if (record.verdict) lines.push(verdictLine(record.runId, record.verdict), '');
  else lines.push(`**Run ${record.runId}: not finished**: the DoD reporter has not recorded its items yet`, '');
  // A lab PASS must never read like a real one: the header says what the run faced.
  if (record.target.kind !== 'unknown')
    lines.push(`target: ${redact(describeTargetRecord(record.target))}`, ...(record.target.notes ?? []).map((note) => `note: ${redact(note)}`), '');
  lines.push('| item | verdict | evidence |', '| --- | --- | --- |', ...rows, '');
  if (record.verdict?.setupError) lines.push(`Setup could not complete, so no item could be checked: ${redact(record.verdict.setupError)}`, '');
  if (uncovered.length) lines.push(`Not checked in this run: ${uncovered.join(', ')}.`, '');
  if (record.cleanup) lines.push('Last step of the run:', '', '| check | verdict | evidence |', '| --- | --- | --- |', cleanupRow(record.cleanup), '');
  if (record.cleanup?.reach) lines.push(`The throwaway's reach, as observed before it was deleted: ${record.cleanup.reach}`, '');
  return lines.join('\n');
}

/** Writes `dir`/dod-summary.md from the record; returns the Markdown. */
export async function writeSummary(dir: string, record: RunRecord): Promise<string> {
  const markdown = renderSummary(record);
  await mkdir(dir, { recursive: true });
  await writeFile(summaryPath(dir), markdown);
  return markdown;
}
