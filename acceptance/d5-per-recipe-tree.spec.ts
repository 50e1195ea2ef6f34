/**
 * D5 — recipes live in a tree of their own, and enrolling one needs no change to the shared
 * harness: a new recipe enrolled on the host touches only its tree and the enrolment list, and
 * its first `!testme` runs. Enrolling changes the host: cold runs, or ACCEPT_ALLOW_HOST_CHANGES=1.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';
import { shellWord } from '../helpers/common/host.ts';
import { markedShellBlocks } from '../helpers/runbook/index.ts';
import { DOD_RECIPES, freshBuild, harnessBranch, MATRIX, matrixStages, pullWithFile, WAITS, writeRefusal } from './support/ci.ts';
import { HOST_CHANGES_SKIP, hostCheckout, mayChangeHost, withHostChange } from './support/host-change.ts';
import {
  attach,
  dodItem,
  observation,
  expectNone,
  fill,
  skipBecause,
  step,
  system,
  test,
  within,
  observes,
  OPERATOR_SIDE,
  hostFacesOf,
} from './support/dod.ts';

const NEW_RECIPE = 'accept-probe';
/** A port no enrolled recipe uses. */
const NEW_PORT = 9190;
/** The new recipe repo's own test (a build runs its tests/): one that passes, as a recipe's own would. */
const PROBE_TEST = 'test_enrolled.py';
const PROBE_TEST_TEXT = [
  '"""Added by the acceptance harness (D5): the enrolled probe recipe\'s own test."""',
  'print("ok 1 - accept-probe is enrolled", flush=True)',
  '',
].join('\n');

function enrolledIn(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'));
}

dodItem('D5', () => {
  const { docs, recipes } = system();
  /** The enrolment list: one recipe a line. */
  const ENROLLED = recipes.enrolled;
  /** `tests/<recipe>/`: a recipe's tree, in the base repo. */
  const tree = (recipe: string) => fill(recipes.tree, { recipe });

  test(`each enrolled recipe has a tree of its own, ${tree('<recipe>')}`, async ({ baseRepo, task }) => {
    observes(task, OPERATOR_SIDE);
    const list = await readFile(join(baseRepo.dir, ENROLLED), 'utf8').catch(() => '');
    const enrolled = enrolledIn(list);
    expectNone(
      DOD_RECIPES.filter((recipe) => !enrolled.includes(recipe)),
      `recipes of the DoD missing from the enrolment list ${ENROLLED}`,
    );
    const trees = await Promise.all(
      enrolled.map(async (recipe) => [recipe, await readdir(join(baseRepo.dir, tree(recipe)), { recursive: true }).catch(() => [])] as const),
    );
    await attach('recipe trees', trees.map(([recipe, files]) => `${tree(recipe)}: ${files.join(', ')}`).join('\n'));
    expectNone(
      trees.filter(([, files]) => files.length === 0).map(([recipe]) => tree(recipe)),
      'enrolled recipes without a tree of their own',
    );
    observation(
      task,
      `${enrolled.length} recipes in ${ENROLLED}, each with its tree ${tree('<recipe>')} (${trees.map(([recipe, files]) => `${recipe}: ${files.length}`).join(', ')})`,
    );
  });

  test(
    'enrolling a new recipe touches only its tree and the enrolment list, and its first !testme runs',
    async ({ hostCi: ci, run, config, host, baseRepo, task, skip }) => {
      observes(task, hostFacesOf());
      // It changes the host, so it acts on the run's host (never the running cc-ci), through that host's own faces.
      if (!mayChangeHost(run, config)) skipBecause({ task, skip }, HOST_CHANGES_SKIP);
      // The new recipe needs a repo of its own on the forge: only where the run may make one.
      const refused = writeRefusal(ci, { kind: 'repo', owner: ci.org, repo: NEW_RECIPE });
      if (refused) skipBecause({ task, skip }, refused);
      // Enrolled as the system's own enrolment document says, and by nothing the harness knows.
      const enrollDoc = await readFile(join(baseRepo.dir, docs.enroll), 'utf8').catch(() => '');
      const procedure = markedShellBlocks(enrollDoc, docs.enroll, recipes.enrolMarker);
      expect(
        procedure.length,
        `${docs.enroll} in the base repo holds no \`\`\`sh ${recipes.enrolMarker} block: no enrolment procedure a person or a harness can follow step by step`,
      ).toBeGreaterThan(0);
      await attach(`enrolment procedure (${docs.enroll})`, procedure.map(({ line, script }) => `## ${docs.enroll}:${line}\n${script}`).join('\n\n'));
      const checkout = await hostCheckout(run, baseRepo.dir);
      const names = recipes.enrolVariables;
      const values = `${names.recipe}=${shellWord(NEW_RECIPE)} ${names.from}=${shellWord(ci.probeRecipe)} ${names.port}=${NEW_PORT}`;
      const enrol = () =>
        host.succeed(procedure.map(({ script }) => `cd ${shellWord(checkout.dir)} && ${values} sh -eu -c ${shellWord(script)}`).join(' && '), {
          purpose: `enrol ${NEW_RECIPE} as ${docs.enroll} says`,
        });
      const outcome = await withHostChange(host, checkout, `enrol ${NEW_RECIPE}`, enrol, async () => {
        const changed = (await host.succeed(`cd ${checkout.dir} && git diff --name-only HEAD~1 HEAD`)).stdout.trim().split('\n').filter(Boolean);
        if (!(await ci.forge.repoExists(ci.org, NEW_RECIPE))) await ci.forge.createOrgRepo(ci.org, NEW_RECIPE);
        // A head branch of its own, which Gitea needs to exist (404) and not to be the base (422),
        // holding the recipe repo's own test that the build runs.
        const pull = await pullWithFile(ci, NEW_RECIPE, {
          branch: harnessBranch(`enrol-${NEW_RECIPE}`),
          path: `${recipes.localTests}/${PROBE_TEST}`,
          text: PROBE_TEST_TEXT,
          title: `Enrol ${NEW_RECIPE}`,
        });
        const first = await step(`the first !testme on ${ci.org}/${NEW_RECIPE}#${pull.number}`, () => freshBuild(ci, NEW_RECIPE, pull));
        return { changed, first };
      });
      await attach('files changed by the enrolment', outcome.changed.join('\n'));
      const outside = outcome.changed.filter((file) => file !== ENROLLED && !file.startsWith(tree(NEW_RECIPE)));
      expectNone(outside, `enrolling ${NEW_RECIPE} changed files outside ${tree(NEW_RECIPE)} and ${ENROLLED}`);
      const { build } = outcome.first;
      await attach(`first build of ${NEW_RECIPE}`, build);
      const stages = matrixStages(ci, build);
      expectNone(
        MATRIX.filter(({ label }) => stages.get(label)?.status !== 'success').map(({ label }) => `${label}: ${stages.get(label)?.status ?? 'missing'}`),
        `the first !testme of ${NEW_RECIPE} (build #${build.number}) did not run the matrix`,
      );
      expect(build.status, `the first !testme of ${NEW_RECIPE} ran as build #${build.number} but ended ${build.status}`).toBe('success');
      observation(
        task,
        `enrolled ${NEW_RECIPE} by changing ${outcome.changed.length} files, all in ${tree(NEW_RECIPE)} or ${ENROLLED}; its first !testme ran as build #${build.number}: ${build.status}`,
      );
    },
    within(...WAITS.hostChange, ...WAITS.build),
  );
});
