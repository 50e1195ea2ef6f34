/**
 * The scenarios that hold more of the lab than one worker, in one file so that they run one
 * after the other: first the other composition layout, which regenerates the repos and keys
 * every run reads and so holds the whole lab for its minute or two; then the slow lab, which
 * sleeps for about twelve minutes in the project kept for it, beside the busy workers. In
 * separate files they would race for the sleeper, and the loser would wait out the other.
 *
 * A slow lab: its rebuild and each recipe build take longer than 130 s (ACCEPT_LAB_SLOW), longer
 * than any limit the harness once had (120 s a test, 60 s a wait). The run still passes, so no
 * wait and no timeout has a ceiling of its own: each comes from the durations in force.
 * Only the specs that rebuild and build run, to keep it short (about a quarter of an hour).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import type { LedgerEntry } from '../../helpers/common/ledger.ts';
import { latestRunRecord } from '../../reporting/run-record-io.ts';
import type { CheckRecord } from '../../reporting/run-record.ts';
import { leaseSleeperWorker, leaseWholeLab, leftoversOf, readText, runAccept, throwawaysOf, type ChildRun } from './support.ts';

const SLOW_S = 135;
const SPECS = ['acceptance/c4-live-rebuild.spec.ts', 'acceptance/d2-install-upgrade-backup.spec.ts', 'acceptance/d5-per-recipe-tree.spec.ts'];
/** C1 and D8 build the toplevel from the layout (and write d8.json's composition); C2 reads the cert through it. */
const LAYOUT_SPECS = ['acceptance/c1-repo-split.spec.ts', 'acceptance/c2-cert-in-git.spec.ts', 'acceptance/d8-reproducible-server.spec.ts'];

/** How long the runbook's rebuild step took, from the provisioning ledger of the run's evidence. */
async function runbookRebuildMs(reportsDir: string, runId: string): Promise<number | undefined> {
  const ledger = JSON.parse(await readFile(join(reportsDir, 'evidence', runId, 'ledger.json'), 'utf8')) as LedgerEntry[];
  const rebuild = ledger.find((entry) => entry.kind === 'exec' && entry.purpose.startsWith('runbook step') && entry.command.includes('nixos-rebuild switch'));
  return rebuild?.kind === 'exec' ? rebuild.durationMs : undefined;
}

describe('both composition layouts', () => {
  test('the flake-input layout builds and passes C1, C2 and D8 as the submodule layout does', async () => {
    // Another layout regenerates the lab's repos and keys, which every concurrent run reads: this
    // test holds the whole lab, and puts the default layout back before it lets go.
    const lab = await leaseWholeLab();
    let run: ChildRun;
    try {
      // Only the specs that read the layout: the rest do not, and every minute here holds every worker.
      run = await runAccept(['run', ...LAYOUT_SPECS], { env: { ACCEPT_LAB_LAYOUT: 'input', ACCEPT_INCUS_PROJECT: lab.project } });
    } finally {
      const back = await runAccept(['lab', 'up']);
      await lab.release();
      expect(back.exitCode, back.output).toBe(0);
    }
    expect(run.exitCode, run.output).toBe(0);
    expect(run.output).toContain('nixos-rebuild switch --flake /root/cc-ci#cc-ci');
    expect(run.stdout).toMatch(/\| C1 repo split \| PASS \|/);
    expect(run.stdout).toMatch(/\| C2 cert in git \| PASS \|/);
    expect(run.stdout).toMatch(/\| D8 reproducible server \| PASS \|/);
    expect(await readText(join(run.reportsDir, 'evidence', 'd8.json'))).toContain('"composition": "input"');
    // It made a throwaway, as the test it came from checked, and that throwaway is gone.
    expect(throwawaysOf(run).length, `the run created no throwaway:\n${run.output}`).toBeGreaterThan(0);
    expect(await leftoversOf(run)).toEqual([]);
  });
});

describe('a slow lab', () => {
  test(`a cold run passes when the rebuild and each recipe build take ${SLOW_S} s longer`, async () => {
    // Mostly asleep: it runs beside the busy workers, in the project kept for such runs.
    const lease = await leaseSleeperWorker();
    const run = await runAccept(['run', ...SPECS], {
      env: { ACCEPT_LAB_SLOW: `${SLOW_S}s`, ACCEPT_INCUS_PROJECT: lease.project },
      timeoutMs: 45 * 60_000,
    }).finally(() => lease.release());
    expect(run.exitCode, run.output).toBe(0);

    const record = await latestRunRecord(run.reportsDir);
    // The lab really was slow: the runbook's rebuild, D2's build, and D5's two rebuilds around a build.
    expect(await runbookRebuildMs(run.reportsDir, record.runId), 'the runbook rebuild step took no longer than 130 s').toBeGreaterThan(130_000);
    const items = new Map(record.items.map((item) => [item.id, item]));
    for (const id of ['C4', 'D2', 'D5'] as const) expect(items.get(id)?.verdict, `${id}: ${items.get(id)?.cause ?? 'not in the run record'}`).toBe('PASS');
    const checks: CheckRecord[] = record.items.flatMap((item) => item.checks);
    // D2's evidence gives each stage's time: the install stage holds the slow first step.
    const stages = checks.map((check) => /install success \(exit 0, (\d+) s\)/.exec(check.evidence ?? '')).find(Boolean);
    expect(Number(stages?.[1]), 'no D2 evidence shows the install stage taking longer than 130 s').toBeGreaterThan(130);
    const longest = Math.max(...checks.map((check) => check.durationMs ?? 0));
    expect(longest, 'no check lasted longer than 130 s').toBeGreaterThan(130_000);
    const enrolling = checks.find((check) => check.name.includes('enrolling a new recipe touches only its tree'));
    expect(enrolling?.verdict).toBe('PASS');
    // Two rebuilds (the enrolment and putting it back) and a fresh build, each slowed.
    expect(enrolling?.durationMs ?? 0).toBeGreaterThan(3 * SLOW_S * 1000);

    expect(await leftoversOf(run)).toEqual([]);
  });
});
