/**
 * C6 — the project's running memory fits the guideline (12 GB by default) and the host's physical
 * memory. That the throwaway is gone afterwards is checked by the teardown itself, as the run's
 * last step, and reported in the DoD summary.
 */
import { beforeEach, expect } from 'vitest';
import { reservedBytes } from '../target/guard.ts';
import { NO_INCUS_API, hasIncusApi } from '../target/host.ts';
import { attach, dodItem, evidence, providedRun, skipBecause, test, expectNone } from './support/dod.ts';

const GiB = 2 ** 30;
const gib = (bytes: number) => `${(bytes / GiB).toFixed(1)} GiB`;

dodItem('C6', () => {
  // A hook, so that the skip comes before the `incus` fixture, which the ssh target cannot supply.
  beforeEach(({ task, skip }) => {
    if (!hasIncusApi(providedRun())) skipBecause({ task, skip }, NO_INCUS_API);
  });

  test('the running memory of the project is within the guideline and below physical memory', async ({ incus, run, config, task }) => {
    const resources = await incus.resources();
    const running = (await incus.listInstances()).filter((instance) => instance.status === 'Running');
    const rows = running.map((instance) => {
      const limit = instance.expanded_config['limits.memory'];
      return { name: instance.name, limit, bytes: limit ? reservedBytes(limit, resources.memory.total).bytes : undefined };
    });
    await attach('running instances', rows.map((row) => `${row.name}: ${row.limit ?? 'no limits.memory'}`).join('\n'));
    const unbounded = rows.filter((row) => row.bytes === undefined).map((row) => row.name);
    expectNone(unbounded, `running instances in ${run.instance.project} without limits.memory: they may take the whole host`);
    const total = rows.reduce((sum, row) => sum + (row.bytes ?? 0), 0);
    const summary = `${rows.map((row) => `${row.name} ${row.limit}`).join(' + ')} = ${gib(total)}`;
    expect(total <= config.ramGuidelineBytes, `${summary} exceeds the ${gib(config.ramGuidelineBytes)} guideline (ACCEPT_RAM_GUIDELINE)`).toBe(true);
    expect(total < resources.memory.total, `${summary} is not below the host's ${gib(resources.memory.total)} of physical memory`).toBe(true);
    evidence(task, `${summary} ≤ ${gib(config.ramGuidelineBytes)} guideline < ${gib(resources.memory.total)} physical`);
  });
});
