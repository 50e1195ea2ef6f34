import { describe, expect, it } from 'vitest';
import { budgetMs, settingOf, wholeDuration, withinDuration } from './budget.ts';
import { realTargetDurations, type Durations } from './config.ts';
import { HarnessError } from './errors.ts';

const durations: Durations = { boot: 1_000, rebuild: 20_000, converge: 300, buildStart: 4_000, buildFinish: 50_000, check: 7 };

describe('budgetMs', () => {
  it('is the check alone for a test without waits', () => {
    expect(budgetMs(durations)).toBe(7);
  });

  it('adds each wait, counting one named twice twice', () => {
    expect(budgetMs(durations, ['rebuild', 'converge', 'rebuild', 'buildStart', 'buildFinish'])).toBe(20_000 + 300 + 20_000 + 4_000 + 50_000 + 7);
  });

  it('gives a D test that changes the host and waits for a build more than the waits it contains, with the real defaults', () => {
    const real = realTargetDurations({ durations: {} });
    const waits = 2 * real.rebuild + real.converge + real.buildStart + real.buildFinish;
    expect(budgetMs(real, ['rebuild', 'converge', 'rebuild', 'buildStart', 'buildFinish'])).toBeGreaterThan(waits);
  });
});

describe('wholeDuration and settingOf', () => {
  it.each([
    [60_000, '60 s'],
    [90_000, '90 s'],
    [120_000, '2 min'],
    [2_700_000, '45 min'],
    [435_000, '435 s'],
  ])('%d ms is %s', (ms, text) => {
    expect(wholeDuration(ms)).toBe(text);
  });

  it('names the variable and its value', () => {
    expect(settingOf(realTargetDurations({ durations: {} }), 'buildFinish')).toBe('ACCEPT_BUILD_FINISH_TIMEOUT, 40 min');
  });
});

describe('withinDuration', () => {
  it('hands the work its limit and returns its result', async () => {
    expect(await withinDuration(durations, 'converge', 'a wait', async (limit) => limit)).toBe(300);
  });

  it('passes an early error through unchanged', async () => {
    const early = new Error('refused');
    await expect(withinDuration(durations, 'rebuild', 'the rebuild', () => Promise.reject(early))).rejects.toBe(early);
  });

  it('turns an error once the limit is spent into an ERROR naming the setting to raise', async () => {
    const error = await withinDuration({ rebuild: 30 }, 'rebuild', 'the rebuild after X on host-1', async (limit) => {
      await new Promise((resolve) => setTimeout(resolve, limit + 5));
      throw new Error('operation timed out');
    }).catch((caught: unknown) => caught as Error);
    expect(error).toBeInstanceOf(HarnessError);
    expect(error.message).toMatch(
      /^the rebuild after X on host-1 did not finish within 0 s \(ACCEPT_REBUILD_TIMEOUT; it ran \d+ ms\): if it is only slow on this target, raise ACCEPT_REBUILD_TIMEOUT; operation timed out$/,
    );
    expect(error.cause).toBeInstanceOf(Error);
  });
});
