/**
 * C6 — the project's running memory fits the guideline (12 GB by default) and the host's physical
 * memory. That the throwaway is gone afterwards is checked by the teardown itself, as the run's
 * last step, and reported in the DoD summary.
 */
import { beforeEach, expect } from 'vitest';
import { recordedSizing, sameSize } from '../helpers/docs/decisions.ts';
import { holdsMemory, reservedBytes } from '../machines/guard.ts';
import { changedMachines, observeMachines } from '../machines/neighbours.ts';
import { NO_INCUS_API, hasIncusApi } from '../machines/host.ts';
import { attach, dodItem, observation, providedRun, skipBecause, system, test, expectNone, observes, runningCcci, decisionLog } from './support/dod.ts';

const GiB = 2 ** 30;
const gib = (bytes: number) => `${(bytes / GiB).toFixed(1)} GiB`;

dodItem('C6', () => {
  // A hook, so that the skip comes before the `incus` fixture, which the ssh target cannot supply.
  beforeEach(({ task, skip }) => {
    if (!hasIncusApi(providedRun())) skipBecause({ task, skip }, NO_INCUS_API);
  });

  test('the running memory of the project is within the guideline and below physical memory', async ({ incus, run, config, task }) => {
    observes(task, `the Incus project ${providedRun().instance.project}: every running instance`);
    const resources = await incus.resources();
    // As the guard counts them: a frozen instance keeps its memory while paused.
    const running = (await incus.listInstances()).filter(holdsMemory);
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
    observation(task, `${summary} ≤ ${gib(config.ramGuidelineBytes)} guideline < ${gib(resources.memory.total)} physical`);
  });

  test('the running cc-ci is sized as the seed resized it (ACCEPT_PRODUCTION_MEMORY), and the neighbours are as they were before the run', async ({
    incus,
    run,
    task,
    skip,
  }) => {
    observes(task, `${runningCcci()} and the neighbours ${providedRun().machines.neighbours.join(', ') || '(none named)'}`);
    const production = run.machines.production;
    if (!('name' in production)) skipBecause({ task, skip }, production.unreachable);
    const instance = await incus.getInstance(production.name);
    expect(instance, `${production.name} (ACCEPT_PRODUCTION) is not in project ${run.instance.project}`).toBeDefined();
    const limit = instance!.expanded_config['limits.memory'];
    await attach(`${production.name}: limits.memory`, limit ?? 'none');
    const physical = (await incus.resources()).memory.total;
    const sized = limit === undefined ? undefined : reservedBytes(limit, physical).bytes;
    expect(
      sized,
      `${production.name}, the running cc-ci, has limits.memory ${limit ?? 'unset'}, not the ${production.memory} it was resized to (ACCEPT_PRODUCTION_MEMORY)`,
    ).toBe(reservedBytes(production.memory, physical).bytes);
    const changed = run.machinesBefore ? changedMachines(run.machinesBefore, await observeMachines(incus, run.machines)) : [];
    expectNone(changed, 'the run has changed what it must leave alone');
    observation(
      task,
      `${production.name} (the running cc-ci) limits.memory ${limit}${run.machinesBefore ? `; unchanged since the run began: ${run.machinesBefore.map((machine) => machine.name).join(', ')} (checked again after teardown)` : ''}`,
    );
  });

  test("the final sizing of the running cc-ci recorded in the base repo's decision log is the one it runs with", async ({
    incus,
    run,
    baseRepo,
    task,
    skip,
  }) => {
    observes(task, `${runningCcci()}, against ${system().docs.decisions} in the base repo`);
    const { decisions } = system().docs;
    const production = run.machines.production;
    if (!('name' in production)) skipBecause({ task, skip }, production.unreachable);
    const text = await decisionLog(baseRepo, `the final sizing of ${production.name}`);
    const recorded = recordedSizing(text, production.name);
    expect(
      recorded,
      `${decisions} records no final sizing of ${production.name}: no line naming it (or under a heading naming it or "sizing") with a decision word (decided, final, keep, restore, …) followed by a size`,
    ).toBeDefined();
    await attach(`${decisions}: the sizing decision`, `line ${recorded!.lineNumber}: ${recorded!.line}`);
    const instance = await incus.getInstance(production.name);
    const limit = instance?.expanded_config['limits.memory'];
    const physical = (await incus.resources()).memory.total;
    const bytes = limit === undefined ? undefined : reservedBytes(limit, physical).bytes;
    expect(
      bytes !== undefined && sameSize(recorded!.bytes, bytes),
      `${decisions} line ${recorded!.lineNumber} records ${production.name} at ${recorded!.size}, but it runs with limits.memory ${limit ?? 'unset'}: "${recorded!.line}"`,
    ).toBe(true);
    observation(task, `${decisions} line ${recorded!.lineNumber} records ${recorded!.size}; ${production.name} runs with limits.memory ${limit}`);
  });
});
