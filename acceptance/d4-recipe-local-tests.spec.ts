/**
 * D4 — the recipe's own tests run as a stage of the build, and their result counts: a failing
 * one fails the build. The failing half changes the host, so it runs on cold throwaways (or when
 * ACCEPT_ALLOW_HOST_CHANGES=1).
 */
import { expect } from 'vitest';
import type { DroneBuild } from '../helpers/drone/index.ts';
import { buildLogs, findStage, freshBuild, HOST_CHANGES_SKIP, hostCheckout, mayChangeHost, runStart, testmeBuild, testmeRefusal, WAITS, withHostChange, type Ci } from './support/ci.ts';
import { shellWord } from '../helpers/common/host.ts';
import { attach, dodItem, evidence, fill, skipBecause, step, test, unlessWriteRefused, within } from './support/dod.ts';

const localStage = (ci: Ci, build: DroneBuild) => findStage(ci, build, 'recipeTests');

dodItem('D4', () => {
  test('the recipe-local tests ran as a stage of a !testme build, and the build agrees with their result', async ({ ci, run, task, skip }) => {
    const { build } = await unlessWriteRefused({ task, skip }, () => testmeBuild(ci, ci.probeRecipe, runStart(run)));
    const stage = localStage(ci, build);
    expect(stage, `build #${build.number} has no recipe-local test stage (stages: ${(build.stages ?? []).map((s) => s.name).join(', ')})`).toBeDefined();
    const text = (await buildLogs(ci, build)).filter((log) => log.stage === stage!.name).map((log) => log.text).join('\n');
    await attach(`${stage!.name} log`, text);
    expect(text.trim(), `stage ${stage!.name} of build #${build.number} has an empty log: nothing ran`).not.toBe('');
    expect(stage!.status === 'success' ? build.status : 'failure', `stage ${stage!.name} ended ${stage!.status} but build #${build.number} ended ${build.status}`).toBe(build.status);
    evidence(task, `build #${build.number}: stage ${stage!.name} ${stage!.status} (exit ${stage!.exit_code}); ${text.split('\n').filter((line) => /^(not )?ok \d/.test(line)).length} test results in its log`);
  }, within(...WAITS.build));

  test('a failing recipe-local test fails the build', async ({ ci, run, config, host, baseRepo, task, skip }) => {
    if (!mayChangeHost(run, config)) skipBecause({ task, skip }, HOST_CHANGES_SKIP);
    // Checked before the host is touched: the fresh build below needs a !testme comment.
    const refused = testmeRefusal(ci, ci.probeRecipe);
    if (refused) skipBecause({ task, skip }, refused);
    const recipe = ci.probeRecipe;
    const checkout = await hostCheckout(baseRepo.dir, run.durations);
    const failing = await withHostChange(
      host,
      checkout,
      `make ${recipe}'s recipe-local tests fail`,
      // First line of each test file, so that nothing before it can end the test early.
      () => host.succeed(`cd ${checkout.dir} && for f in ${shellWord(fill(ci.profile.recipes.localTests, { recipe }))}/test*.py; do sed -i '1i raise SystemExit("acceptance: this recipe-local test fails on purpose")' "$f"; done`),
      () => step(`!testme ${recipe} with a failing recipe-local test`, () => freshBuild(ci, recipe)),
    );
    const { build } = failing;
    await attach(`build #${build.number}`, build);
    const stage = localStage(ci, build);
    expect(stage, `build #${build.number} has no recipe-local test stage`).toBeDefined();
    expect(stage!.status, `a failing recipe-local test left stage ${stage!.name} of build #${build.number} ${stage!.status}`).toBe('failure');
    expect(build.status, `a failing recipe-local test did not fail the build: build #${build.number} ended ${build.status}`).toBe('failure');
    const others = (build.stages ?? []).filter((s) => s !== stage && s.status !== 'success').map((s) => `${s.name} ${s.status}`);
    expect(others, `build #${build.number} failed elsewhere too, so it proves nothing about the recipe-local tests`).toEqual([]);
    evidence(task, `with a failing recipe-local test, build #${build.number} ended ${build.status}: ${stage!.name} ${stage!.status} (exit ${stage!.exit_code}), every other stage success`);
  }, within(...WAITS.hostChange, ...WAITS.build));
});
