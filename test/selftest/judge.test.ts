import { describe, expect, it } from 'vitest';
import type { Verdict } from '../../reporting/verdict.ts';
import { judgeRun, renderMatrix, type MatrixRow } from './judge.ts';

const impostorCert = { guards: ['C2'], alsoFails: { items: ['D6'] }, cause: /served leaf fingerprint \S+ ≠ git cert \S+/ };
const output = 'C2 cert in git FAIL: served leaf fingerprint AA ≠ git cert BB';
const verdicts = (entries: Record<string, Verdict>) => new Map(Object.entries(entries));
const ITEMS = ['C1', 'C2', 'D1', 'D6', 'C6 cleanup'];

describe('the sabotage matrix judgement', () => {
  it('counts a guard that is FAIL as caught, with the cause named', () => {
    const judgement = judgeRun(impostorCert, verdicts({ C1: 'PASS', C2: 'FAIL', D1: 'PASS', D6: 'PASS', 'C6 cleanup': 'PASS' }), output);
    expect(judgement).toEqual({ caught: true, misses: [], causeNamed: true, collateral: [], unrelatedPassed: true });
  });

  it('counts a guard that is ERROR as a miss, naming the class', () => {
    // The cause may even be in the output: an ERROR still means no check saw the breakage.
    const judgement = judgeRun(impostorCert, verdicts({ C1: 'PASS', C2: 'ERROR', D1: 'PASS', D6: 'PASS' }), output);
    expect(judgement.caught).toBe(false);
    expect(judgement.misses).toEqual(['C2=ERROR (an ERROR is a miss: the harness could not find out, so no check saw the breakage)']);
    expect(judgement.causeNamed).toBe(true);
  });

  it('counts a guard that passed, was skipped or has no verdict as a miss', () => {
    const guards = { guards: ['C1', 'C5', 'D8'], cause: /x/ };
    const judgement = judgeRun(guards, verdicts({ C1: 'PASS', C5: 'SKIPPED' }), 'y');
    expect(judgement.misses).toEqual([
      'C1=PASS (no check saw the breakage)',
      'C5=SKIPPED (the check did not run)',
      'D8=missing (no verdict in the run record)',
    ]);
    expect(judgement.causeNamed).toBe(false);
  });

  it('needs every guard to FAIL, not just one', () => {
    expect(judgeRun({ guards: ['C3', 'C4'], cause: /x/ }, verdicts({ C3: 'FAIL', C4: 'ERROR' }), 'x').misses).toEqual([expect.stringMatching(/^C4=ERROR/)]);
  });

  it('counts an unrelated item that did not pass as collateral, and leaves the alsoFails items alone', () => {
    const judgement = judgeRun(impostorCert, verdicts({ C1: 'FAIL', C2: 'FAIL', D1: 'ERROR', D6: 'ERROR' }), output, ITEMS);
    expect(judgement.caught).toBe(true);
    expect(judgement.collateral).toEqual(['C1=FAIL', 'D1=ERROR', 'C6 cleanup=missing']);
    expect(judgement.unrelatedPassed).toBe(false);
    expect(judgeRun(impostorCert, verdicts({ C1: 'PASS', C2: 'FAIL', D1: 'PASS', D6: 'FAIL', 'C6 cleanup': 'PASS' }), output, ITEMS).collateral).toEqual([]);
  });

  it('judges the cleanup check after teardown like an item', () => {
    const leak = { guards: ['C6 cleanup'], cause: /still present after teardown/ };
    expect(judgeRun(leak, verdicts({ C6: 'PASS', 'C6 cleanup': 'FAIL' }), 'still present after teardown: accept-r1').caught).toBe(true);
    expect(judgeRun(leak, verdicts({ C6: 'PASS', 'C6 cleanup': 'ERROR' }), '').misses).toEqual([
      expect.stringMatching(/^C6 cleanup=ERROR \(an ERROR is a miss/),
    ]);
  });
});

describe('the matrix table', () => {
  const row = (name: string, guards: string[], entries: Record<string, Verdict>): MatrixRow => ({
    name,
    guards,
    verdicts: verdicts(entries),
    ...judgeRun({ guards, alsoFails: { items: ['D6'] }, cause: /fingerprint/ }, verdicts(entries), output, ITEMS),
  });

  it('shows a guard that is ERROR as a miss, and an unrelated item that is not PASS', () => {
    const table = renderMatrix(
      [
        row('impostor-cert', ['C2'], { C1: 'PASS', C2: 'FAIL', D1: 'PASS', D6: 'ERROR', 'C6 cleanup': 'PASS' }),
        row('wrong-key', ['C2'], { C1: 'PASS', C2: 'ERROR', D1: 'FAIL', D6: 'PASS', 'C6 cleanup': 'PASS' }),
      ],
      ITEMS,
    );
    expect(table).toContain('1 of 2 sabotages caught with the cause named (50%)');
    expect(table).toContain('| sabotage | guards | caught | cause named | unrelated pass | C1 | C2 | D1 | D6 | C6 cleanup |');
    expect(table).toContain('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
    expect(table).toContain('| impostor-cert | C2 | yes | yes | yes | PASS | FAIL | PASS | ERROR | PASS |');
    expect(table).toContain('| wrong-key | C2 | **NO**: C2=ERROR | yes | **NO** | PASS | **ERROR (miss)** | **FAIL** | PASS | PASS |');
  });

  it('keeps its columns for one row, with a dash where a verdict is missing', () => {
    const table = renderMatrix([row('wrong-key', ['C2'], { C2: 'FAIL' })], ['C1', 'C2']);
    expect(table).toContain('| wrong-key | C2 | yes | yes | **NO** | — | FAIL |');
    expect(renderMatrix([], [])).toContain('0 of 0 sabotages caught with the cause named (0%)');
  });
});
