/**
 * D4 — the recipe repo's own tests run as a stage of the build, and their result counts: a
 * failing one, committed to the recipe repo on a branch of the harness's own, fails the build of
 * a pull request from that branch. It writes to the forge, so it needs the probe repo
 * (ACCEPT_FORGE_PROBE_REPO) against a real target; it never changes the host.
 */
import { expect } from 'vitest';
import type { DroneBuild } from '../helpers/drone/index.ts';
import { buildLogs, FAILING_RECIPE_TEST, failingTestPull, findStage, freshBuild, runStart, testmeBuild, WAITS, writeRefusal, type Ci } from './support/ci.ts';
import { attach, dodItem, observation, skipBecause, step, test, unlessWriteRefused, within, observes, ciFaces } from './support/dod.ts';

const localStage = (ci: Ci, build: DroneBuild) => findStage(ci, build, 'recipeTests');

dodItem('D4', () => {
  test(
    'the recipe-local tests ran as a stage of a !testme build, and the build agrees with their result',
    async ({ ci, run, task, skip }) => {
      observes(task, ciFaces());
      const { build } = await unlessWriteRefused({ task, skip }, () => testmeBuild(ci, ci.probeRecipe, runStart(run)));
      const stage = localStage(ci, build);
      expect(stage, `build #${build.number} has no recipe-local test stage (stages: ${(build.stages ?? []).map((s) => s.name).join(', ')})`).toBeDefined();
      const text = (await buildLogs(ci, build))
        .filter((log) => log.stage === stage!.name)
        .map((log) => log.text)
        .join('\n');
      await attach(`${stage!.name} log`, text);
      expect(text.trim(), `stage ${stage!.name} of build #${build.number} has an empty log: nothing ran`).not.toBe('');
      expect(
        stage!.status === 'success' ? build.status : 'failure',
        `stage ${stage!.name} ended ${stage!.status} but build #${build.number} ended ${build.status}`,
      ).toBe(build.status);
      observation(
        task,
        `build #${build.number}: stage ${stage!.name} ${stage!.status} (exit ${stage!.exit_code}); ${text.split('\n').filter((line) => /^(not )?ok \d/.test(line)).length} test results in its log`,
      );
    },
    within(...WAITS.build),
  );

  test(
    'a failing recipe-local test, committed to the recipe repo, fails the build',
    async ({ ci, task, skip }) => {
      observes(task, ciFaces());
      const recipe = ci.probeRecipe;
      // A commit on a branch of the harness's own and a pull request from it, then !testme there.
      for (const kind of ['file', 'pull', 'comment'] as const) {
        const refused = writeRefusal(ci, { kind, owner: ci.org, repo: recipe });
        if (refused) skipBecause({ task, skip }, refused);
      }
      const { branch, file } = FAILING_RECIPE_TEST;
      const path = `${ci.profile.recipes.localTests}/${file}`;
      const pull = await step(`a branch of ${ci.org}/${recipe} whose ${path} fails, and a pull request from it`, () => failingTestPull(ci, recipe));
      const { build } = await step(`!testme ${ci.org}/${recipe}#${pull.number} with a failing recipe-local test`, () => freshBuild(ci, recipe, pull));
      await attach(`build #${build.number}`, build);
      const stage = localStage(ci, build);
      expect(stage, `build #${build.number} has no recipe-local test stage`).toBeDefined();
      expect(stage!.status, `a failing recipe-local test left stage ${stage!.name} of build #${build.number} ${stage!.status}`).toBe('failure');
      expect(build.status, `a failing recipe-local test did not fail the build: build #${build.number} ended ${build.status}`).toBe('failure');
      const others = (build.stages ?? []).filter((s) => s !== stage && s.status !== 'success').map((s) => `${s.name} ${s.status}`);
      expect(others, `build #${build.number} failed elsewhere too, so it proves nothing about the recipe-local tests`).toEqual([]);
      const text = (await buildLogs(ci, build))
        .filter((log) => log.stage === stage!.name)
        .map((log) => log.text)
        .join('\n');
      await attach(`${stage!.name} log`, text);
      expect(text, `stage ${stage!.name} of build #${build.number} failed without running ${path} from ${ci.org}/${recipe}#${pull.number}`).toContain(file);
      observation(
        task,
        `with ${path} failing on ${ci.org}/${recipe}#${pull.number} (branch ${branch}), build #${build.number} ended ${build.status}: ${stage!.name} ${stage!.status} (exit ${stage!.exit_code}), every other stage success`,
      );
    },
    within(...WAITS.build),
  );
});
