/**
 * The sabotage matrix's judgement of one sabotaged run, from the verdicts of its run record.
 * A sabotage is caught only when every item guarding against it is FAIL: the harness saw the
 * system not meet the item. ERROR means the harness could not find out, so it is a miss, and so
 * is PASS, SKIPPED or no verdict at all. Every item the sabotage has nothing to do with must PASS.
 */
import type { Verdict } from '../../reporting/verdict.ts';

/** What the matrix needs of a sabotage (lab/sabotage.ts). */
export interface SabotageExpectation {
  /** Items that must FAIL: C1…D10, or `C6 cleanup` for the check after teardown. */
  guards: readonly string[];
  /** Items that rightly break too (FAIL or ERROR, or even PASS): not judged. */
  alsoFails?: { items: readonly string[] };
  /** Words the run's failure output must contain. */
  cause: RegExp;
}

export interface Judgement {
  caught: boolean;
  /** Guards that are not FAIL, with what they were instead: `C2=ERROR (an ERROR is a miss)`. */
  misses: string[];
  causeNamed: boolean;
  /** Unrelated items that did not PASS: `D1=ERROR`. */
  collateral: string[];
  unrelatedPassed: boolean;
}

const WHY_MISSED: Record<Verdict | 'missing', string> = {
  FAIL: '',
  ERROR: 'an ERROR is a miss: the harness could not find out, so no check saw the breakage',
  PASS: 'no check saw the breakage',
  SKIPPED: 'the check did not run',
  missing: 'no verdict in the run record',
};

export function judgeRun(
  sabotage: SabotageExpectation,
  verdicts: ReadonlyMap<string, Verdict>,
  output: string,
  items: Iterable<string> = verdicts.keys(),
): Judgement {
  const misses = sabotage.guards.flatMap((item) => {
    const verdict = verdicts.get(item);
    return verdict === 'FAIL' ? [] : [`${item}=${verdict ?? 'missing'} (${WHY_MISSED[verdict ?? 'missing']})`];
  });
  const exempt = new Set([...sabotage.guards, ...(sabotage.alsoFails?.items ?? [])]);
  const collateral = [...new Set(items)]
    .filter((item) => !exempt.has(item) && verdicts.get(item) !== 'PASS')
    .map((item) => `${item}=${verdicts.get(item) ?? 'missing'}`);
  return { caught: misses.length === 0, misses, causeNamed: sabotage.cause.test(output), collateral, unrelatedPassed: collateral.length === 0 };
}

export interface MatrixRow extends Judgement {
  name: string;
  guards: readonly string[];
  verdicts: ReadonlyMap<string, Verdict>;
}

/** The matrix cell of one item: a guard that is not FAIL, and an unrelated item that is not PASS, stand out. */
function verdictCell(row: MatrixRow, item: string): string {
  const verdict = row.verdicts.get(item);
  if (row.guards.includes(item)) return verdict === 'FAIL' ? 'FAIL' : `**${verdict ?? '—'} (miss)**`;
  if (!verdict) return '—';
  return row.collateral.some((entry) => entry.startsWith(`${item}=`)) ? `**${verdict}**` : verdict;
}

/** reports/sabotage-matrix.md, from the rows' data; `items` are the columns. */
export function renderMatrix(rows: readonly MatrixRow[], items: readonly string[]): string {
  const cells = (values: readonly string[]) => values.map((value) => ` ${value} |`).join('');
  const mark = (ok: boolean) => (ok ? 'yes' : '**NO**');
  const caughtCell = (row: MatrixRow) => (row.caught ? 'yes' : `**NO**: ${row.misses.map((miss) => miss.replace(/ \(.*$/, '')).join(', ')}`);
  const lines = rows.map(
    (row) =>
      `| ${row.name} | ${row.guards.join(', ')} | ${caughtCell(row)} | ${mark(row.causeNamed)} | ${mark(row.unrelatedPassed)} |${cells(items.map((item) => verdictCell(row, item)))}`,
  );
  const caught = rows.filter((row) => row.caught && row.causeNamed).length;
  return [
    '# Sabotage matrix',
    '',
    `Each row breaks the lab in one way (lab/sabotage.ts) and runs the cold suite. ${caught} of ${rows.length} sabotages caught with the cause named (${rows.length ? Math.round((caught / rows.length) * 100) : 0}%).`,
    'Caught means every guarding item is FAIL; an ERROR (the harness could not find out) is a miss.',
    'A dash: that item did not run in the row. The items driven by recipe builds and rebuilds (D4, D5, D6, D7, D10) run only in the rows that guard them; the e2e cold run shows them PASS on the unbroken lab.',
    '',
    `| sabotage | guards | caught | cause named | unrelated pass |${cells(items)}`,
    `| --- | --- | --- | --- | --- |${cells(items.map(() => '---'))}`,
    ...lines,
    '',
  ].join('\n');
}
