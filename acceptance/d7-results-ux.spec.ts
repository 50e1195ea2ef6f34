/**
 * D7 — the Drone UI answers; the dashboard lists the run at /runs/<n>/ and serves the recipe's
 * badge, a valid SVG carrying the status; and the PR got the outcome back, with a link. Each
 * outcome in both directions: a passing run reported as passing, and a failing one (D4's
 * deliberately failing recipe-local test) as failing, so that a system that says "passed" of
 * every run is caught.
 */
import { expect } from 'vitest';
import { settingOf } from '../helpers/common/budget.ts';
import { waitFor } from '../helpers/common/wait.ts';
import { outcomeOfStatus, outcomeProblem, runListEntry, type Outcome } from '../helpers/dashboard/outcome.ts';
import { svgProblem } from '../helpers/dashboard/index.ts';
import type { DroneBuild } from '../helpers/drone/index.ts';
import type { ForgeComment } from '../helpers/forge/index.ts';
import {
  badgePath,
  BUILD_SEARCH_LIMIT,
  buildParam,
  DOD_RECIPES,
  failingTestBuild,
  FAILING_RECIPE_TEST,
  freshBuild,
  runPath,
  runStart,
  testmeBuild,
  WAITS,
  type Ci,
} from './support/ci.ts';
import type { RunContext } from './support/context.ts';
import { attach, dodItem, observation, expectNone, fill, step, system, test, unlessWriteRefused, within, observes, ciFaces } from './support/dod.ts';

/** The texts of a badge: what a person reads on it, and what a screen reader says. */
function badgeTexts(svg: string): string {
  return [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>|<title>([^<]*)<\/title>/g)].map((match) => match[1] ?? match[2]).join(' ');
}

/** The newest build of each recipe that Drone lists (a harness pull request's too: a badge shows the recipe's latest run). */
async function latestOfEach(ci: Ci, recipes: readonly string[]): Promise<Map<string, DroneBuild>> {
  const latest = new Map<string, DroneBuild>();
  const take = (listed: readonly DroneBuild[]) => {
    for (const build of listed) {
      const recipe = buildParam(ci, build, 'recipe');
      if (recipe && recipes.includes(recipe) && !latest.has(recipe)) latest.set(recipe, build);
    }
    return recipes.every((recipe) => latest.has(recipe));
  };
  take(await ci.drone.builds({ atMost: BUILD_SEARCH_LIMIT, enough: take }));
  return latest;
}

dodItem('D7', () => {
  let found: Promise<{ build: DroneBuild }> | undefined;
  const build = (ci: Ci, run: RunContext) =>
    (found ??= step(`a finished !testme build of ${ci.probeRecipe}`, () => testmeBuild(ci, ci.probeRecipe, runStart(run))));
  let failed: Promise<DroneBuild> | undefined;
  /** The failing side's run: D4's build of the failing pull request in this run, else a fresh one; it must have failed. */
  const failingRun = (ci: Ci, run: RunContext) =>
    (failed ??= step(`a finished !testme build of ${ci.org}/${ci.probeRecipe}'s pull request from ${FAILING_RECIPE_TEST.branch}`, async () => {
      const { build: b, pull, reused } = await failingTestBuild(ci, ci.probeRecipe, runStart(run));
      expect(
        outcomeOfStatus(b.status),
        `build #${b.number} of ${ci.org}/${ci.probeRecipe}#${pull.number}, whose recipe-local test fails on purpose, ended ${b.status}: there is no failing run to see reported (D4 says why)`,
      ).toBe('failing');
      await attach(`failing run: build #${b.number} (${reused ? "D4's" : 'fresh'})`, b);
      return b;
    }));

  /** Why the run list and the run's page do not report build `b` as it ended, or undefined. */
  const dashboardProblems = async (ci: Ci, b: DroneBuild): Promise<{ problems: string[]; entry: string }> => {
    const path = runPath(ci, b.number);
    const recipe = buildParam(ci, b, 'recipe')!;
    const index = await ci.apex.get('/');
    expect(index.status, `the dashboard ${ci.apex.baseUrl}/ answered ${index.status}`).toBe(200);
    const entry = runListEntry(index.text, path);
    expect(entry, `the dashboard's run list does not link ${path}`).toBeDefined();
    const page = await ci.apex.get(path);
    expect(page.status, `${ci.apex.baseUrl}${path} answered ${page.status}`).toBe(200);
    const problems: string[] = [];
    if (!page.text.includes(recipe)) problems.push(`${path} does not name the recipe ${recipe}`);
    if (!page.text.includes(b.status)) problems.push(`${path} does not show the status ${b.status}`);
    const outcome = outcomeOfStatus(b.status);
    const problem = outcome && outcomeProblem(entry!, outcome);
    if (problem) problems.push(`the run list's entry for build #${b.number} (${b.status}) reads "${entry}": ${problem}`);
    return { problems, entry: entry! };
  };

  /** The badge of `recipe` as served: valid SVG, and its texts. */
  const badge = async (ci: Ci, recipe: string): Promise<string> => {
    const path = badgePath(ci, recipe);
    const served = await ci.apex.get(path);
    expect(served.status, `GET ${path} answered ${served.status}`).toBe(200);
    expect(String(served.headers['content-type']), `${path} is served as ${served.headers['content-type']}, not image/svg+xml`).toMatch(/^image\/svg\+xml/);
    const problem = svgProblem(served.text);
    expect(problem, `${path} is not a valid SVG: ${problem}`).toBeUndefined();
    await attach(`badge ${recipe}`, served.text);
    return badgeTexts(served.text);
  };

  /** The bridge's comment on the build's PR reporting it, with a link; waited for up to ACCEPT_BUILD_START_TIMEOUT. */
  const outcomeComment = async (ci: Ci, b: DroneBuild): Promise<{ comment: ForgeComment; where: string; asked?: number }> => {
    const recipe = buildParam(ci, b, 'recipe')!;
    const pull = Number(buildParam(ci, b, 'pull'));
    const trigger = Number(buildParam(ci, b, 'comment'));
    const pattern = new RegExp(`#${b.number}\\b|/${b.number}/?\\b`);
    let asked: number | undefined;
    // The forge answering without it until the deadline is the FAIL; a refused token is an ERROR.
    const comment = await waitFor<ForgeComment>(
      `a comment on ${ci.org}/${recipe}#${pull} reporting build #${b.number} with a link (${settingOf(ci.durations, 'buildStart')})`,
      async () => {
        const comments = await ci.forge.comments(ci.org, recipe, pull);
        asked = Date.parse(comments.find((candidate) => candidate.id === trigger)?.created_at ?? '') / 1000;
        const reported = comments.find((candidate) => candidate.id > trigger && pattern.test(candidate.body) && /https?:\/\/\S+/.test(candidate.body));
        return (
          reported ?? {
            done: false as const,
            saw: `${comments.filter((candidate) => candidate.id > trigger).length} comments after the !testme, none reporting #${b.number} with a link`,
          }
        );
      },
      { timeoutMs: ci.durations.buildStart, intervalMs: 500, observes: 'system' },
    );
    return { comment, where: `${ci.org}/${recipe}#${pull}`, asked };
  };

  test('the Drone UI answers', async ({ ci, task }) => {
    observes(task, ciFaces());
    const page = await ci.drone.ui();
    expect(page.status, `${ci.drone.baseUrl}/ answered ${page.status}`).toBe(200);
    expect(String(page.headers['content-type']), `${ci.drone.baseUrl}/ is not an HTML page`).toMatch(/text\/html/);
    expect(page.text, `${ci.drone.baseUrl}/ does not look like Drone`).toMatch(/drone/i);
    observation(task, `${ci.drone.baseUrl}/ → 200 text/html, ${page.body.length} bytes`);
  });

  test(
    `the dashboard lists the run and serves its page at ${fill(system().dashboard.runPath, { n: '<n>' })}`,
    async ({ ci, run, task, skip }) => {
      observes(task, ciFaces());
      const { build: b } = await unlessWriteRefused({ task, skip }, () => build(ci, run));
      const { problems, entry } = await dashboardProblems(ci, b);
      expectNone(problems, `the dashboard does not report build #${b.number} as it ended (${b.status})`);
      observation(task, `${ci.apex.baseUrl}/ lists ${runPath(ci, b.number)} as "${entry}", and that page shows ${buildParam(ci, b, 'recipe')} ${b.status}`);
    },
    within(...WAITS.build),
  );

  test(
    "the badge is a valid SVG carrying the status of the recipe's latest run",
    async ({ ci, run, task, skip }) => {
      observes(task, ciFaces());
      const { build: b } = await unlessWriteRefused({ task, skip }, () => build(ci, run));
      const recipe = buildParam(ci, b, 'recipe')!;
      const texts = await badge(ci, recipe);
      const latest = (await latestOfEach(ci, [recipe])).get(recipe);
      const outcome = latest && outcomeOfStatus(latest.status);
      const problem = outcome && outcomeProblem(texts, outcome);
      expect(
        problem,
        `${badgePath(ci, recipe)} says "${texts}", not the status of the latest build #${latest?.number} (${latest?.status}): ${problem}`,
      ).toBeUndefined();
      observation(task, `${badgePath(ci, recipe)}: image/svg+xml, well-formed, says "${texts}" for build #${latest?.number} (${latest?.status})`);
    },
    within(...WAITS.build),
  );

  test(
    "after a passing run, the recipe's badge says passing",
    async ({ ci, task, skip }) => {
      observes(task, ciFaces());
      // Before the failing side's tests, which may make a failing run the probe recipe's latest. Any
      // recipe of the DoD whose latest run passed (D1's build, or the last run's D10); else a fresh run.
      const recipes = [...new Set([ci.probeRecipe, ...DOD_RECIPES])];
      const latest = await latestOfEach(ci, recipes);
      let passing = recipes.map((recipe) => latest.get(recipe)).find((candidate) => candidate && outcomeOfStatus(candidate.status) === 'passing');
      passing ??= await unlessWriteRefused({ task, skip }, () =>
        step(`no recipe's latest run passed: a fresh !testme of ${ci.probeRecipe}`, async () => (await freshBuild(ci, ci.probeRecipe)).build),
      );
      expect(
        outcomeOfStatus(passing.status),
        `the fresh !testme of ${ci.probeRecipe} ran as build #${passing.number} but ended ${passing.status}: there is no passing run to see reported`,
      ).toBe('passing');
      const recipe = buildParam(ci, passing, 'recipe')!;
      const texts = await badge(ci, recipe);
      const problem = outcomeProblem(texts, 'passing');
      expect(
        problem,
        `after passing build #${passing.number}, the latest run of ${recipe}, ${badgePath(ci, recipe)} says "${texts}": ${problem}`,
      ).toBeUndefined();
      observation(task, `latest run of ${recipe}: build #${passing.number} (${passing.status}); ${badgePath(ci, recipe)} says "${texts}"`);
    },
    within(...WAITS.build),
  );

  test(
    'a failing run is reported as failing on the dashboard: in the run list and on its page',
    async ({ ci, run, task, skip }) => {
      observes(task, ciFaces());
      const b = await unlessWriteRefused({ task, skip }, () => failingRun(ci, run));
      const { problems, entry } = await dashboardProblems(ci, b);
      expectNone(problems, `the dashboard does not report failing build #${b.number} as failing`);
      observation(
        task,
        `failing build #${b.number} (${b.status}): ${ci.apex.baseUrl}/ lists ${runPath(ci, b.number)} as "${entry}", and that page shows ${b.status}`,
      );
    },
    within(...WAITS.build),
  );

  test(
    "after a failing run, the recipe's badge says failing",
    async ({ ci, run, task, skip }) => {
      observes(task, ciFaces());
      const recipe = ci.probeRecipe;
      let failing = await unlessWriteRefused({ task, skip }, () => failingRun(ci, run));
      // The badge shows the latest run: when a later one passed, fail the recipe again first.
      let latest = (await latestOfEach(ci, [recipe])).get(recipe);
      if (!latest || outcomeOfStatus(latest.status) !== 'failing') {
        failing = await step(
          `!testme the failing pull request again: the latest run of ${recipe} is #${latest?.number} (${latest?.status})`,
          async () => (await freshBuild(ci, recipe, await ci.forge.pull(ci.org, recipe, Number(buildParam(ci, failing, 'pull'))))).build,
        );
        latest = (await latestOfEach(ci, [recipe])).get(recipe);
      }
      expect(
        outcomeOfStatus(latest?.status ?? ''),
        `the latest run of ${recipe} is #${latest?.number} (${latest?.status}), not the failing build #${failing.number}`,
      ).toBe('failing');
      const texts = await badge(ci, recipe);
      const problem = outcomeProblem(texts, 'failing');
      expect(
        problem,
        `after failing build #${latest!.number} (${latest!.status}), the latest run of ${recipe}, ${badgePath(ci, recipe)} says "${texts}": ${problem}`,
      ).toBeUndefined();
      observation(task, `latest run of ${recipe}: build #${latest!.number} (${latest!.status}); ${badgePath(ci, recipe)} says "${texts}"`);
    },
    within(...WAITS.build, ...WAITS.build),
  );

  test(
    'the PR got its outcome comment, with a link',
    async ({ ci, run, task, skip }) => {
      observes(task, ciFaces());
      const { build: b } = await unlessWriteRefused({ task, skip }, () => build(ci, run));
      const { comment, where, asked } = await outcomeComment(ci, b);
      const outcome: Outcome | undefined = outcomeOfStatus(b.status);
      const problem = outcome && outcomeProblem(comment.body, outcome);
      expect(problem, `the outcome comment of build #${b.number} (${b.status}) on ${where}: ${problem}: ${comment.body}`).toBeUndefined();
      const link = /https?:\/\/\S+/.exec(comment.body)![0];
      const took = asked && b.finished ? `, ${Math.round(b.finished - asked)} s after the !testme` : '';
      observation(task, `${where}: ${comment.user.login} commented the outcome of build #${b.number} (${b.status}${took}) with ${link}`);
    },
    within(...WAITS.build, 'buildStart'),
  );

  test(
    'the PR of a failing run gets the failing outcome back',
    async ({ ci, run, task, skip }) => {
      observes(task, ciFaces());
      const b = await unlessWriteRefused({ task, skip }, () => failingRun(ci, run));
      const { comment, where } = await outcomeComment(ci, b);
      const problem = outcomeProblem(comment.body, 'failing');
      expect(problem, `the outcome comment of failing build #${b.number} (${b.status}) on ${where}: ${problem}: ${comment.body}`).toBeUndefined();
      observation(
        task,
        `${where}: ${comment.user.login} commented the outcome of failing build #${b.number} (${b.status}): "${comment.body.replace(/https?:\/\/\S+/g, '<link>')}"`,
      );
    },
    within(...WAITS.build, 'buildStart'),
  );
});
