/**
 * Proves that every check can fail: each sabotage in lab/sabotage.ts breaks a lab run on purpose;
 * the specs guarding against it must FAIL (an ERROR is a miss) with the cause named, and every
 * unrelated item must still PASS. Verdicts come from each child run's record (run.json); the
 * judgement is judge.ts. Writes reports/sabotage-matrix.md.
 *
 * The baseline, an unbroken lab passing every item, is the e2e cold run (test/e2e/cold-run.test.ts),
 * which runs beside these rows in the same `accept selftest`: one cold run fewer than its own here.
 *
 * The rows run concurrently: each cold run leases one of the lab's worker projects
 * (ACCEPT_SELFTEST_WORKERS), so at most that many run at once and none sees another's instances.
 *
 * Each row runs every spec but those driven by recipe builds and rebuilds (BUILD_DRIVEN), which
 * run only in the rows that guard them: they are most of a cold run's
 * time on this 2-core machine (Chromium in each build), and the e2e cold run shows them PASS
 * on the unbroken lab. Their columns read "-" in the other rows.
 */
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, test } from 'vitest';
import type { Verdict } from '../../reporting/verdict.ts';
import { latestRunRecord } from '../../reporting/run-record-io.ts';
import { VERDICT_KEYS, verdictsByKey } from '../../reporting/run-record.ts';
import { errorMessage } from '../../helpers/common/errors.ts';
import { SABOTAGES } from '../../lab/sabotage.ts';
import { leftoversOf, REPO_ROOT, runCold, type ChildRun } from '../e2e/support.ts';
import { judgeRun, renderMatrix, type MatrixRow } from './judge.ts';

/** Item → verdict (the cleanup check as `C6 cleanup`) from the child run's record, or why there is none. */
async function verdictsOf(run: ChildRun): Promise<{ verdicts: Map<string, Verdict>; problem?: string }> {
  try {
    return { verdicts: verdictsByKey(await latestRunRecord(run.reportsDir)) };
  } catch (error) {
    return { verdicts: new Map(), problem: errorMessage(error) };
  }
}

const rows = new Map<string, MatrixRow>();

/**
 * Items whose specs drive recipe builds or rebuild the host: run only where a row needs them.
 * D7's failing side tests D4's failing pull request afresh where D4 did not run.
 */
const BUILD_DRIVEN = ['D4', 'D5', 'D6', 'D7', 'D10'];

const specFiles = (await readdir(join(REPO_ROOT, 'acceptance'))).filter((file) => file.endsWith('.spec.ts')).sort();
const specOf = (item: string) => specFiles.find((file) => file.startsWith(`${item.toLowerCase()}-`));

/** The spec files a row runs, and the verdicts it therefore judges. */
function rowScope(sabotage: { guards: readonly string[] }): { specs: string[]; keys: string[] } {
  // An item the row only expects to break (alsoFails) is not judged, so it need not run either.
  const needed = new Set(sabotage.guards);
  const skipped = BUILD_DRIVEN.filter((item) => !needed.has(item));
  const specs = specFiles.filter((file) => !skipped.some((item) => specOf(item) === file)).map((file) => `acceptance/${file}`);
  return { specs, keys: VERDICT_KEYS.filter((key) => !skipped.includes(key)) };
}

describe.concurrent('sabotage matrix', () => {
  for (const [name, sabotage] of Object.entries(SABOTAGES)) {
    test(`${name}: ${sabotage.description}`, async ({ expect, onTestFinished }) => {
      const scope = rowScope(sabotage);
      const run = await runCold({ env: { ACCEPT_LAB_SABOTAGE: name }, specs: scope.specs, onTestFinished });
      const { verdicts, problem } = await verdictsOf(run);
      const judgement = judgeRun(sabotage, verdicts, run.output, scope.keys);
      // Keyed by name: a run with --retry keeps only a sabotage's last attempt.
      rows.set(name, { name, guards: sabotage.guards, verdicts, ...judgement });

      expect(run.exitCode, 'a sabotaged run must exit non-zero').not.toBe(0);
      // A run that could not set up says why on stderr (Vitest prints its error there): show both.
      expect(
        judgement.misses,
        `${sabotage.guards.join(', ')} should FAIL${problem ? ` (${problem})` : ''}\n${problem ? run.output.slice(-6000) : run.stdout}`,
      ).toEqual([]);
      expect(judgement.causeNamed, `the failure output does not name the cause (${sabotage.cause})\n${run.output.slice(-4000)}`).toBe(true);
      expect(judgement.collateral, `unrelated items did not pass\n${run.stdout}`).toEqual([]);
      expect(await leftoversOf(run)).toEqual([]);
    });
  }
});

afterAll(async () => {
  // In catalogue order, whichever row finished first.
  const table = Object.keys(SABOTAGES).flatMap((name) => rows.get(name) ?? []);
  const text = renderMatrix(table, VERDICT_KEYS);
  const dir = process.env.ACCEPT_REPORTS_DIR ?? join(REPO_ROOT, 'reports');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'sabotage-matrix.md'), text);
  process.stdout.write(`\n${text}\n`);
});
