/**
 * D7 — the Drone UI answers; the dashboard lists the run at /runs/<n>/ and serves the recipe's
 * badge, a valid SVG carrying the status; and the PR got the outcome back, with a link.
 */
import { expect } from 'vitest';
import { svgProblem } from '../helpers/dashboard/index.ts';
import { settingOf } from '../helpers/common/budget.ts';
import { waitFor } from '../helpers/common/wait.ts';
import type { DroneBuild } from '../helpers/drone/index.ts';
import type { ForgeComment } from '../helpers/forge/index.ts';
import { badgePath, buildParam, runPath, runStart, searchBuilds, testmeBuild, WAITS, type Ci } from './support/ci.ts';
import type { RunContext } from './support/context.ts';
import { attach, dodItem, evidence, fill, step, system, test, unlessWriteRefused, within, observes, ciFaces } from './support/dod.ts';

const OUTCOME = { success: /pass|success|green/i, failure: /fail|red|error/i } as Record<string, RegExp>;

dodItem('D7', () => {
  let found: Promise<{ build: DroneBuild }> | undefined;
  const build = (ci: Ci, run: RunContext) => (found ??= step(`a finished !testme build of ${ci.probeRecipe}`, () => testmeBuild(ci, ci.probeRecipe, runStart(run))));

  test('the Drone UI answers', async ({ ci, task }) => {
    observes(task, ciFaces());
    const page = await ci.drone.ui();
    expect(page.status, `${ci.drone.baseUrl}/ answered ${page.status}`).toBe(200);
    expect(String(page.headers['content-type']), `${ci.drone.baseUrl}/ is not an HTML page`).toMatch(/text\/html/);
    expect(page.text, `${ci.drone.baseUrl}/ does not look like Drone`).toMatch(/drone/i);
    evidence(task, `${ci.drone.baseUrl}/ → 200 text/html, ${page.body.length} bytes`);
  });

  test(`the dashboard lists the run and serves its page at ${fill(system().dashboard.runPath, { n: '<n>' })}`, async ({ ci, run, task, skip }) => {
    observes(task, ciFaces());
    const { build: b } = await unlessWriteRefused({ task, skip }, () => build(ci, run));
    const path = runPath(ci, b.number);
    const recipe = buildParam(ci, b, 'recipe')!;
    const index = await ci.apex.get('/');
    expect(index.status, `the dashboard ${ci.apex.baseUrl}/ answered ${index.status}`).toBe(200);
    expect(index.text.includes(`href="${path}"`), `the dashboard's run list does not link ${path}`).toBe(true);
    const page = await ci.apex.get(path);
    expect(page.status, `${ci.apex.baseUrl}${path} answered ${page.status}`).toBe(200);
    expect(page.text, `${path} does not name the recipe ${recipe}`).toContain(recipe);
    expect(page.text, `${path} does not show the status ${b.status}`).toContain(b.status);
    evidence(task, `${ci.apex.baseUrl}/ links ${path}, which shows ${recipe} ${b.status}`);
  }, within(...WAITS.build));

  test('the badge is a valid SVG carrying the recipe\'s status', async ({ ci, run, task, skip }) => {
    observes(task, ciFaces());
    const { build: b } = await unlessWriteRefused({ task, skip }, () => build(ci, run));
    const recipe = buildParam(ci, b, 'recipe')!;
    const badge = badgePath(ci, recipe);
    const served = await ci.apex.get(badge);
    expect(served.status, `GET ${badge} answered ${served.status}`).toBe(200);
    expect(String(served.headers['content-type']), `${badge} is served as ${served.headers['content-type']}, not image/svg+xml`).toMatch(/^image\/svg\+xml/);
    const problem = svgProblem(served.text);
    expect(problem, `${badge} is not a valid SVG: ${problem}`).toBeUndefined();
    const ofRecipe = (candidate: DroneBuild) => buildParam(ci, candidate, 'recipe') === recipe;
    const latest = (await searchBuilds(ci, { matches: ofRecipe })).find(ofRecipe);
    const word = OUTCOME[latest?.status ?? ''] ?? /./;
    const texts = [...served.text.matchAll(/<text[^>]*>([^<]*)<\/text>|<title>([^<]*)<\/title>/g)].map((match) => match[1] ?? match[2]).join(' ');
    expect(texts, `${badge} says "${texts}", not the status of the latest build #${latest?.number} (${latest?.status})`).toMatch(word);
    await attach(`badge ${recipe}`, served.text);
    evidence(task, `${badge}: image/svg+xml, well-formed, says "${texts}" for build #${latest?.number} (${latest?.status})`);
  }, within(...WAITS.build));

  test('the PR got its outcome comment, with a link', async ({ ci, run, task, skip }) => {
    observes(task, ciFaces());
    const { build: b } = await unlessWriteRefused({ task, skip }, () => build(ci, run));
    const recipe = buildParam(ci, b, 'recipe')!;
    const pull = Number(buildParam(ci, b, 'pull'));
    const trigger = Number(buildParam(ci, b, 'comment'));
    const pattern = new RegExp(`#${b.number}\\b|/${b.number}/?\\b`);
    let asked: number | undefined;
    // The forge answering without it until the deadline is the FAIL; a refused token is an ERROR.
    const outcome = await waitFor<ForgeComment>(
      `a comment on ${ci.org}/${recipe}#${pull} reporting build #${b.number} with a link (${settingOf(ci.durations, 'buildStart')})`,
      async () => {
        const comments = await ci.forge.comments(ci.org, recipe, pull);
        asked = Date.parse(comments.find((comment) => comment.id === trigger)?.created_at ?? '') / 1000;
        const found = comments.find((comment) => comment.id > trigger && pattern.test(comment.body) && /https?:\/\/\S+/.test(comment.body));
        return found ?? { done: false as const, saw: `${comments.filter((comment) => comment.id > trigger).length} comments after the !testme, none reporting #${b.number} with a link` };
      },
      { timeoutMs: ci.durations.buildStart, intervalMs: 500, observes: 'system' },
    );
    expect(outcome.body, `the outcome comment does not say ${b.status}: ${outcome.body}`).toMatch(OUTCOME[b.status] ?? /./);
    const link = /https?:\/\/\S+/.exec(outcome.body)![0];
    const took = asked && b.finished ? `, ${Math.round(b.finished - asked)} s after the !testme` : '';
    evidence(task, `${ci.org}/${recipe}#${pull}: ${outcome.user.login} commented the outcome of build #${b.number} (${b.status}${took}) with ${link}`);
  }, within(...WAITS.build, 'buildStart'));
});
