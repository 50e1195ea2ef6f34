import { describe, expect, it } from 'vitest';
import { RUN_DONE, runDoneLine } from './session-reporter.ts';

describe("the session's closing line", () => {
  it('is what the bench and the scenario tests read: the run, its milliseconds and its verdict', () => {
    const line = runDoneLine(3, 412.6, 'FAIL', 'rerun test');
    expect(line).toBe('accept watch: run 3 took 413 ms: FAIL (rerun test; 413 ms). Enter re-runs, q quits.\n');
    expect(RUN_DONE.exec(`earlier output\n${line}`)?.slice(1, 4)).toEqual(['3', '413', 'FAIL']);
  });
});
