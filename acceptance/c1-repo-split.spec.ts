/**
 * C1 — the base repo is generic; the instance lives in a second repo, composed as a flake input
 * or as the submodule secrets/; and the composed flake builds the running system byte for byte.
 */
import { expect } from 'vitest';
import { recordedComposition } from '../helpers/docs/decisions.ts';
import { countOccurrences, describeLeak } from '../helpers/git/leak.ts';
import { formatClosureDiff } from '../helpers/nix/index.ts';
import {
  attach,
  dodItem,
  observation,
  step,
  system,
  test,
  expectNone,
  useReproduction,
  observes,
  OPERATOR_SIDE,
  runHost,
  runningCcci,
  decisionLog,
} from './support/dod.ts';
import { judgeRunningCcci } from './support/running-ccci.ts';
import { judgeSystems } from './support/systems.ts';

dodItem('C1', () => {
  useReproduction();

  test('the base repo holds neither the instance domain nor any secret value, in any commit', async ({ run, baseRepo, gitSecrets, task }) => {
    observes(task, OPERATOR_SIDE);
    const needles: Record<string, string> = { 'instance domain': run.domain };
    for (const [key, value] of Object.entries(gitSecrets.values)) needles[`sops value ${key}`] = value;
    const results = await step(`scan every object of every commit of ${run.baseRepo} for ${Object.keys(needles).length} values`, () =>
      countOccurrences(baseRepo.dir, needles),
    );
    const lines = [...results].map(([label, result]) => describeLeak(String(label), result));
    await attach('leak probe (base repo, all history)', lines.join('\n'));
    const leaks = [...results].filter(([, result]) => result.count > 0).map(([label, result]) => describeLeak(String(label), result));
    expectNone(leaks, 'the base repo is not generic');
    const scanned = [...results.values()][0]?.scanned;
    observation(
      task,
      `0 occurrences of the domain and ${Object.keys(needles).length - 1} sops values in ${scanned?.commits ?? '?'} commits (${scanned?.objects ?? '?'} objects) of the base repo`,
    );
  });

  test(`the instance repo is composed as a flake input or as the git submodule ${system().instance.submodule}/`, async ({ reproduction, task }) => {
    observes(task, OPERATOR_SIDE);
    const { submodule } = system().instance;
    expect(
      reproduction.composition,
      `the base repo composes no instance repo: no ${submodule}/ submodule in .gitmodules and no \`instance\` input in flake.lock`,
    ).toBeDefined();
    observation(
      task,
      `composition: ${reproduction.composition === 'submodule' ? `git submodule ${submodule}/ (?submodules=1)` : 'flake input `instance` pinned in flake.lock'}`,
    );
  });

  test(`the base repo's ${system().docs.decisions} records the composition it uses`, async ({ reproduction, baseRepo, task }) => {
    observes(task, OPERATOR_SIDE);
    const { decisions } = system().docs;
    const text = await decisionLog(baseRepo, `the instance repo's linkage (flake input or submodule)`);
    const recorded = recordedComposition(text);
    expect(
      recorded,
      `${decisions} records no decision on how the instance repo is composed: no line about it (or under a heading about the instance repo or its linkage) with a decision word followed by "flake input" or "submodule"`,
    ).toBeDefined();
    const { submodule } = system().instance;
    const named = (composition: string | undefined) =>
      composition === 'submodule' ? `the git submodule ${submodule}/` : composition === 'input' ? 'the flake input `instance`' : 'nothing';
    expect(
      recorded!.composition,
      `${decisions} line ${recorded!.lineNumber} records ${named(recorded!.composition)}, but the base repo composes ${named(reproduction.composition)}: "${recorded!.line}"`,
    ).toBe(reproduction.composition);
    observation(task, `${decisions} line ${recorded!.lineNumber} records ${named(recorded!.composition)}, as the base repo composes it`);
  });

  test("zero drift: the toplevel built from a clean clone is the running cc-ci's /run/current-system, with every narHash equal", async ({
    reproduction,
    production,
    run,
    task,
    skip,
  }) => {
    observes(task, runningCcci());
    const observed = await judgeRunningCcci(
      { task, skip },
      { reproduction, production, run },
      {
        narHashes: true,
        failure: (machine) => `the running cc-ci ${machine} has drifted from git: the composed flake does not build the system it runs`,
      },
    );
    observation(
      task,
      `${observed.machine} (the running cc-ci): /run/current-system = clean build ${observed.built}; ${observed.diff.sizeA} paths, ${observed.diff.hashA} on both sides`,
    );
  });

  test("live half: the toplevel built from a clean clone is the run's host's /run/current-system, with every narHash equal", async ({
    reproduction,
    host,
    run,
    task,
  }) => {
    observes(task, runHost());
    const { diff } = reproduction;
    await attach(`closure comparison on ${host.name}`, formatClosureDiff(diff, { labels: ['clean-clone build', `running system on ${host.name}`] }));
    const verdict = await judgeSystems(reproduction, host, { narHashes: true, nix: { nixConfig: run.nixConfig } });
    await attach(`expected, current and booted systems on ${host.name}`, verdict.record);
    for (const { name, text } of verdict.attachments) await attach(name, text);
    expectNone(verdict.mismatches, `the composed flake does not build the system ${host.name} runs`);
    observation(
      task,
      `${host.name}${run.instance.createdInThisRun ? ' (the throwaway, rebuilt from git in this run)' : ''}: /run/current-system = clean build ${reproduction.built}; ${diff.sizeA} paths, ${diff.hashA} on both sides`,
    );
  });
});
