/**
 * Proves that every check can fail: each sabotage in lab/sabotage.ts breaks a lab run on purpose;
 * the specs guarding against it must FAIL with the cause named, and every unrelated item must
 * still PASS. Writes reports/sabotage-matrix.md.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { SABOTAGES } from '../../lab/sabotage.ts';
import { leftoversOf, readText, REPO_ROOT, runAccept } from '../e2e/support.ts';

type Verdicts = Map<string, string>;

/** Item → verdict, from the DoD summary table (including the teardown row). */
function parseSummary(markdown: string): Verdicts {
  const verdicts: Verdicts = new Map();
  for (const match of markdown.matchAll(/^\| ((?:[CD]\d+)(?: cleanup)?)[^|]* \| (PASS|FAIL|ERROR|SKIPPED) \|/gm)) {
    verdicts.set(match[1]!, match[2]!);
  }
  return verdicts;
}

interface Row {
  name: string;
  guards: string[];
  caught: boolean;
  causeNamed: boolean;
  unrelatedPassed: boolean;
  verdicts: Verdicts;
}

const rows = new Map<string, Row>();
let baseline: Verdicts | undefined;

describe('sabotage matrix', () => {
  test('baseline: an unbroken lab passes every item', async () => {
    const run = await runAccept(['run']);
    baseline = parseSummary(await readText(join(run.reportsDir, 'dod-summary.md')));
    const failing = [...baseline].filter(([, verdict]) => verdict !== 'PASS');
    expect(failing, run.output).toEqual([]);
    expect(run.exitCode).toBe(0);
  });

  for (const [name, sabotage] of Object.entries(SABOTAGES)) {
    test(`${name}: ${sabotage.description}`, async () => {
      const run = await runAccept(['run'], { env: { ACCEPT_LAB_SABOTAGE: name } });
      const verdicts = parseSummary(await readText(join(run.reportsDir, 'dod-summary.md')).catch(() => ''));
      const caught = sabotage.guards.every((item) => verdicts.get(item) === 'FAIL');
      const causeNamed = sabotage.cause.test(run.output);
      const allowed = new Set([...sabotage.guards, ...(sabotage.alsoFails?.items ?? [])]);
      const wrongly = [...(baseline ?? verdicts).keys()].filter((item) => !allowed.has(item) && verdicts.get(item) !== 'PASS');
      // Keyed by name: a run with --retry keeps only a sabotage's last attempt.
      rows.set(name, { name, guards: sabotage.guards, caught, causeNamed, unrelatedPassed: wrongly.length === 0, verdicts });

      expect(run.exitCode, 'a sabotaged run must exit non-zero').not.toBe(0);
      expect(caught, `${sabotage.guards.join(', ')} should FAIL; got ${sabotage.guards.map((item) => `${item}=${verdicts.get(item) ?? 'missing'}`).join(', ')}\n${run.stdout}`).toBe(true);
      expect(causeNamed, `the failure output does not name the cause (${sabotage.cause})\n${run.output.slice(-4000)}`).toBe(true);
      expect(wrongly.map((item) => `${item}=${verdicts.get(item) ?? 'missing'}`), `unrelated items did not pass\n${run.stdout}`).toEqual([]);
      expect(await leftoversOf(run)).toEqual([]);
    });
  }
});

afterAll(async () => {
  const table = [...rows.values()];
  // Run with -t for one row, there is no baseline: its own verdicts name the columns.
  const items = [...(baseline ?? table[0]?.verdicts ?? new Map()).keys()];
  const cells = (values: string[]) => values.map((value) => ` ${value} |`).join('');
  const header = `| sabotage | guards | caught | cause named | unrelated pass |${cells(items)}`;
  const rule = `| --- | --- | --- | --- | --- |${cells(items.map(() => '---'))}`;
  const mark = (ok: boolean) => (ok ? 'yes' : '**NO**');
  const lines = table.map((row) => `| ${row.name} | ${row.guards.join(', ')} | ${mark(row.caught)} | ${mark(row.causeNamed)} | ${mark(row.unrelatedPassed)} |${cells(items.map((item) => row.verdicts.get(item) ?? '—'))}`);
  const caught = table.filter((row) => row.caught && row.causeNamed).length;
  const text = [
    '# Sabotage matrix',
    '',
    `Each row breaks the lab in one way (lab/sabotage.ts) and runs the cold suite. ${caught} of ${table.length} sabotages caught with the cause named (${table.length ? Math.round((caught / table.length) * 100) : 0}%).`,
    '',
    header,
    rule,
    ...lines,
    '',
  ].join('\n');
  const dir = process.env.ACCEPT_REPORTS_DIR ?? join(REPO_ROOT, 'reports');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'sabotage-matrix.md'), text);
  process.stdout.write(`\n${text}\n`);
});
