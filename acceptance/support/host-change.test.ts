import { describe, expect, it } from 'vitest';
import { budgetMs } from '../../helpers/common/budget.ts';
import { realTargetDurations } from '../../helpers/common/config.ts';
import { limitRecordingHost } from '../../helpers/common/testing/recording-host.ts';
import { WAITS } from './ci.ts';
import { withHostChange, type HostCheckout } from './host-change.ts';

describe('withHostChange', () => {
  it('rebuilds within ACCEPT_REBUILD_TIMEOUT as often as WAITS.hostChange counts, so a test budgeted with it covers its rebuilds', async () => {
    const { host, limits: calls } = limitRecordingHost('host-1', async (script) => ({ stdout: script.includes('rev-parse') ? 'abc\n' : '' }));
    const checkout: HostCheckout = { dir: '/root/cc-ci', rebuild: 'nixos-rebuild switch --flake /root/cc-ci#cc-ci', durations: { rebuild: 1234 } };
    await withHostChange(
      host,
      checkout,
      'a change',
      async () => undefined,
      async () => undefined,
    );
    const limits = calls.filter((call) => call.script.startsWith('nixos-rebuild')).map((call) => call.timeoutMs);
    expect(limits).toEqual([1234, 1234]);
    expect(WAITS.hostChange.filter((wait) => wait === 'rebuild')).toHaveLength(limits.length);
    const durations = { ...realTargetDurations({ durations: {} }), rebuild: 1234 };
    expect(budgetMs(durations, [...WAITS.hostChange, ...WAITS.build])).toBeGreaterThanOrEqual(
      2 * 1234 + durations.converge + durations.buildStart + durations.buildFinish,
    );
  });
});
