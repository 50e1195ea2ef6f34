import { describe, expect, it } from 'vitest';
import { RUN_DONE, RUN_PHASES, parsePhases, runDoneLine } from './session-line.ts';

describe("the session's closing line", () => {
  it('is what the bench and the scenario tests read: the run, its milliseconds and its verdict', () => {
    const line = runDoneLine(3, 412.6, 'FAIL', 'rerun test');
    expect(line).toBe('accept watch: run 3 took 413 ms: FAIL (rerun test; 413 ms). Enter re-runs, q quits.\n');
    expect(RUN_DONE.exec(`earlier output\n${line}`)?.slice(1, 4)).toEqual(['3', '413', 'FAIL']);
  });

  it("is preceded by the run's phases, which the bench reads", () => {
    const text = runDoneLine(2, 1240, 'PASS', 'rerun test', { attach: 350, worker: 33, import: 128, fixtures: 176, tests: 534, reports: 20 });
    const line = RUN_PHASES.exec(text);
    expect(line?.[1]).toBe('2');
    expect(parsePhases(line![2]!)).toEqual({ attach: 350, worker: 33, import: 128, fixtures: 176, tests: 534, reports: 20 });
    expect(RUN_DONE.exec(text)?.slice(1, 4)).toEqual(['2', '1240', 'PASS']);
  });
});
