/**
 * D10 — custom-html, keycloak, matrix-synapse, n8n, cryptpad and lasuite-docs each go green
 * through a real `!testme`, in all three stages. Cold runs trigger fresh builds; against an
 * existing host the latest ones are read (never one of the harness's own pull requests, as D4's
 * deliberately failing build), unless ACCEPT_D10_TRIGGER=1.
 */
import { expect } from 'vitest';
import type { DroneBuild } from '../helpers/drone/index.ts';
import {
  buildFor,
  buildParam,
  commentTestme,
  DOD_RECIPES,
  finished,
  HARNESS_BRANCH_PREFIX,
  latestSystemTestmeBuilds,
  MATRIX,
  matrixStages,
  testmeRefusal,
  WAITS,
  type Ci,
} from './support/ci.ts';
import type { Config } from '../helpers/common/config.ts';
import type { RunContext } from './support/context.ts';
import { attach, dodItem, observation, expectNone, skipBecause, step, test, within, observes, ciFaces } from './support/dod.ts';

/** A recipe's build and how it was found; `refused` when the run may not comment on that recipe. */
type Outcome = { build?: DroneBuild; how: string; refused?: string };

dodItem('D10', () => {
  let all: Promise<Map<string, Outcome>> | undefined;
  const outcomes = (ci: Ci, run: RunContext, config: Config) =>
    (all ??= (async () => {
      const fresh = run.instance.createdInThisRun || config.ci.d10Trigger;
      const found = new Map<string, Outcome>();
      if (!fresh) {
        // The system's own: a build on the harness's pull requests (D4's failing one) is not the recipe's.
        const latest = await latestSystemTestmeBuilds(ci, DOD_RECIPES);
        for (const recipe of DOD_RECIPES) {
          const build = latest.get(recipe);
          found.set(recipe, {
            build: build && (await finished(ci, build.number)),
            how: build
              ? `latest !testme build, on ${recipe}#${buildParam(ci, build, 'pull')}`
              : `latest !testme build, none on a pull request other than the harness's ${HARNESS_BRANCH_PREFIX}… ones`,
          });
        }
        return found;
      }
      // Against a real target these are recipes' real PRs: only those the run may write to.
      const allowed = DOD_RECIPES.filter((recipe) => {
        const refused = testmeRefusal(ci, recipe);
        if (refused) found.set(recipe, { how: 'no comment', refused });
        return !refused;
      });
      // All at once: the runner takes them in parallel.
      const triggers = await step(
        `comment !testme on ${allowed.length === DOD_RECIPES.length ? 'each of the six recipes' : allowed.join(', ') || 'none of the six recipes'}`,
        () => Promise.all(allowed.map((recipe) => commentTestme(ci, recipe))),
      );
      await Promise.all(
        triggers.map(async (trigger) => {
          const started = await buildFor(ci, trigger, ci.durations.buildStart);
          found.set(trigger.recipe, { build: started && (await finished(ci, started.build.number)), how: `fresh !testme (comment ${trigger.comment.id})` });
        }),
      );
      return found;
    })());

  for (const recipe of DOD_RECIPES) {
    test(
      `${recipe}: green through !testme, in all three stages`,
      async ({ ci, run, config, task, skip }) => {
        observes(task, ciFaces());
        const { build, how, refused } = (await outcomes(ci, run, config)).get(recipe)!;
        if (refused) skipBecause({ task, skip }, refused);
        expect(build, `${recipe}: no !testme build (${how})`).toBeDefined();
        await attach(`${recipe} build #${build!.number}`, build!);
        const stages = matrixStages(ci, build!);
        expectNone(
          MATRIX.filter(({ label }) => stages.get(label)?.status !== 'success').map(({ label }) => `${label} ${stages.get(label)?.status ?? 'missing'}`),
          `${recipe}: build #${build!.number} (${how}) is not green in all three stages`,
        );
        expect(build!.status, `${recipe}: build #${build!.number} (${how}) ended ${build!.status}`).toBe('success');
        observation(
          task,
          `${recipe}: build #${build!.number} (${how}) success; ${MATRIX.map(({ label }) => `${stages.get(label)!.name} ${stages.get(label)!.status}`).join(', ')}`,
        );
        // The six builds run at once, so the first test waits for all of them as for one.
      },
      within(...WAITS.build),
    );
  }
});
