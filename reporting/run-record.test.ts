import { describe, expect, it } from 'vitest';
import { checkLine, itemRecord, overheadOf, withMachine } from './run-record.ts';
import { PHASES, phasedRecord, sampleRecord } from './run-record.fixture.ts';

describe('the run record', () => {
  it('keeps each check: verdict, evidence or cause, class and duration; the item its cause', () => {
    const c2 = sampleRecord().items.find((item) => item.id === 'C2')!;
    expect(c2).toMatchObject({ verdict: 'FAIL', cause: 'served leaf fingerprint AA ≠ git cert BB' });
    expect(c2.checks[1]).toEqual({
      name: 'the served leaf is the wildcard_cert from git',
      verdict: 'FAIL',
      cause: 'served leaf fingerprint AA ≠ git cert BB',
      errorClass: 'AssertionError',
      durationMs: 35,
    });
    // ERROR outranks FAIL within an item; one skipped check keeps an item from PASS.
    expect(
      itemRecord('D1', [
        { name: 'a', verdict: 'FAIL', cause: 'x' },
        { name: 'b', verdict: 'ERROR', cause: 'proxy down' },
      ]).verdict,
    ).toBe('ERROR');
    expect(
      itemRecord('D1', [
        { name: 'a', verdict: 'PASS' },
        { name: 'b', verdict: 'SKIPPED', evidence: 'ssh target' },
      ]),
    ).toMatchObject({ verdict: 'SKIPPED', cause: 'ssh target' });
    expect(sampleRecord().phases.specsMs).toBe(987);
  });
});

describe('the phases of a run', () => {
  const { specFiles } = PHASES;
  const finished = () => phasedRecord();

  it('counts as waiting only create, boot, the runbook steps, the tests and the delete; the rest of the wall is overhead', () => {
    const { phases } = finished();
    // 23 s from Vitest's start to the teardown's end; 2 + 3 + (1 + 2.5) + (1.2 + 0.3) + 1.8 s waiting.
    expect(phases).toMatchObject({ wallMs: 23_000, waitingMs: 11_800, overheadMs: 11_200 });
    expect(overheadOf({ specFiles }, 2_000)).toEqual({ wallMs: 2_000, waitingMs: 1_500, overheadMs: 500 });
  });
});

describe('every check names the machine it observed', () => {
  it('puts the machine before a line that does not name it, and leaves one that does as it is', () => {
    expect(withMachine('served leaf = git wildcard_cert', 'accept-1 (the throwaway of this run)')).toBe(
      '[accept-1 (the throwaway of this run)] served leaf = git wildcard_cert',
    );
    expect(withMachine('cc-nix-test (the running cc-ci): /run/current-system = clean build', 'cc-nix-test (the running cc-ci)')).toBe(
      'cc-nix-test (the running cc-ci): /run/current-system = clean build',
    );
    expect(
      checkLine({ name: 'zero drift', verdict: 'FAIL', cause: 'clean-clone toplevel ≠ /run/current-system', machine: 'cc-nix-test (the running cc-ci)' }),
    ).toBe('[cc-nix-test (the running cc-ci)] zero drift: clean-clone toplevel ≠ /run/current-system');
    expect(checkLine({ name: 'x', verdict: 'PASS', evidence: 'no machine recorded' })).toBe('no machine recorded');
  });
});
