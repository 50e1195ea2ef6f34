import type { ServerResponse } from 'node:http';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, HarnessError, SystemFailure } from '../../helpers/common/errors.ts';
import { StateTimeoutError, WaitTimeoutError } from '../../helpers/common/wait.ts';
import { DroneClient } from '../../helpers/drone/index.ts';
import { fakeHttps, json, type FakeHttps } from '../../helpers/https/testing/fake-https.ts';
import { errorVerdict } from '../../reporting/verdict.ts';
import { realTargetDurations } from '../../helpers/common/config.ts';
import { buildFor, finished, finishPollCap, latestSystemTestmeBuilds, probeRecipeOf, testmeBuild, testmeRefusal, type Ci, type Trigger } from './ci.ts';
import { realForgeWrites, type ForgeClient, type ForgePull } from '../../helpers/forge/index.ts';
import { exampleProfile } from '../../machines/system-profile.fixture.ts';

/** Drone's answer to the n-th request (from 0), set by each test. */
type Answer = (response: ServerResponse, call: number) => void;
let answer: Answer;
let calls = 0;
let server: FakeHttps;
/** Only Drone is used by the waits under test: the real client, against the fake server. */
let ci: Ci;

beforeAll(async () => {
  server = await fakeHttps((_request, response) => answer(response, calls++));
  const drone = new DroneClient(
    'https://drone.lab.test',
    'coop-cloud/cc-ci',
    't',
    { ca: server.ca, dial: () => ({ host: '127.0.0.1', port: server.port }) },
    'ACCEPT_DRONE_TOKEN_FILE (/run/t)',
  );
  ci = { drone, durations: realTargetDurations({ durations: {} }), profile: exampleProfile() } as Partial<Ci> as Ci;
});
/** The ci with ACCEPT_BUILD_FINISH_TIMEOUT set to `ms`: finished() takes its limit from there. */
const finishingIn = (ms: number): Ci => ({ ...ci, durations: { ...ci.durations, buildFinish: ms } });
afterAll(() => server.close());
beforeEach(() => {
  calls = 0;
});

const trigger = { recipe: 'custom-html', pull: { number: 7, title: 'Bump', state: 'open' }, comment: { id: 42 }, postedAt: Date.now(), by: 'alice' } as Trigger;
const build = (number: number, status: string, comment = '41') => ({
  number,
  status,
  params: { RECIPE: 'custom-html', COMMENT_ID: comment },
  created: 1,
  started: 1,
  finished: 0,
});
const unauthorized: Answer = (response) => json(response, 401, { message: 'Unauthorized' });
const unavailable: Answer = (response) => json(response, 503, { message: 'Service Unavailable' });
/** The verdict the reports give an error, read as Vitest hands it over: its own fields. */
const verdictOf = (error: Error) => errorVerdict({ ...error, name: error.name, message: error.message });
const failure = (promise: Promise<unknown>) =>
  promise.then(
    (value) => expect.unreachable(`it resolved with ${JSON.stringify(value)}`),
    (error: unknown) => error as Error,
  );

describe('buildFor', () => {
  it('returns the build once Drone lists it, through a 503', async () => {
    answer = (response, call) => (call === 0 ? unavailable(response, call) : json(response, 200, [build(9, 'running', '42'), build(8, 'success')]));
    const started = await buildFor(ci, trigger, 5000);
    expect(started?.build.number).toBe(9);
  });

  it("finds its build on Drone's second page, and reads no further back than the comment (less the clock slack)", async () => {
    const postedAt = Math.floor(trigger.postedAt / 1000);
    // Page 1: 100 builds from others since the comment; page 2 holds ours, then older ones.
    const newer = Array.from({ length: 100 }, (_, i) => ({ ...build(300 - i, 'running', String(1000 + i)), created: postedAt + 5 }));
    answer = (response, call) =>
      json(
        response,
        200,
        call % 3 === 0
          ? newer
          : call % 3 === 1
            ? [
                { ...build(200, 'running', '42'), created: postedAt + 1 },
                { ...build(199, 'success'), created: postedAt - 3600 },
              ]
            : [],
      );
    expect((await buildFor(ci, trigger, 5000))?.build.number).toBe(200);
    expect(calls).toBe(2);
    // Without ours, the old build on page 2 ends each search there: page 1, page 2, page 1, … never page 3.
    const before = server.seen.length;
    // Page 2 is full: only its age, not its length, can end the search there.
    const older = Array.from({ length: 100 }, (_, i) => ({ ...build(199 - i, 'success'), created: postedAt - 3600 }));
    answer = (response, call) => json(response, 200, call % 2 === 0 ? newer : older);
    calls = 0;
    expect(await buildFor(ci, trigger, 1100)).toBeUndefined();
    const pages = server.seen.slice(before).map((seen) => /[?&]page=(\d+)/.exec(seen.url)?.[1]);
    expect(pages.length).toBeGreaterThan(2);
    expect(
      pages.every((page, i) => page === String((i % 2) + 1)),
      pages.join(' '),
    ).toBe(true);
  });

  it('is "no build started" (undefined) only when Drone answered until the deadline without it', async () => {
    answer = (response) => json(response, 200, [build(8, 'success')]);
    expect(await buildFor(ci, trigger, 1100)).toBeUndefined();
    expect(calls).toBeGreaterThan(1);
  });

  it('ends at once on a refused token, as an ERROR, never "no build started"', async () => {
    answer = unauthorized;
    const error = await failure(buildFor(ci, trigger, 60_000));
    expect(error).toBeInstanceOf(HarnessError);
    // The refusal itself, not the deadline's timeout, after one read: nothing was retried.
    expect(error).not.toBeInstanceOf(WaitTimeoutError);
    expect(error.message).toMatch(/Drone at https:\/\/drone\.lab\.test refused the token from ACCEPT_DRONE_TOKEN_FILE \(\/run\/t\) \(401/);
    expect(verdictOf(error)).toBe('ERROR');
    expect(calls).toBe(1);
  });

  it('retries 503s, and is an ERROR naming the last one when Drone never answered', async () => {
    answer = unavailable;
    const error = await failure(buildFor(ci, trigger, 1100));
    expect(error).toBeInstanceOf(WaitTimeoutError);
    expect(error.message).toMatch(/waiting for a Drone build for comment 42 on custom-html#7; last saw: error: Drone at .* answered 503/);
    expect(verdictOf(error)).toBe('ERROR');
    expect(calls).toBeGreaterThan(1);
  });

  it('is an ERROR when Drone stopped answering before the deadline: a build may have started since', async () => {
    answer = (response, call) => (call === 0 ? json(response, 200, []) : unavailable(response, call));
    const error = await failure(buildFor(ci, trigger, 1100));
    expect(error).toBeInstanceOf(WaitTimeoutError);
    expect(error.message).toMatch(/last saw: error: Drone at .* answered 503 .*\(Drone answered 1 of \d+ reads, never listing it\)$/);
  });
});

describe('finished', () => {
  it.each(['success', 'failure', 'error', 'killed', 'stopped'])('ends the wait on a build that is %s', async (status) => {
    answer = (response) => json(response, 200, build(5, status));
    expect((await finished(finishingIn(60_000), 5)).status).toBe(status);
    expect(calls).toBe(1);
  });

  it('waits through running and a 503 for the end', async () => {
    const statuses = ['pending', 'running', '503', 'success'];
    answer = (response, call) => (statuses[call] === '503' ? unavailable(response, call) : json(response, 200, build(5, statuses[call]!)));
    expect((await finished(finishingIn(10_000), 5)).status).toBe('success');
    expect(calls).toBe(4);
  });

  it('is a FAIL with the last status when the build was seen running until the deadline', async () => {
    answer = (response) =>
      json(response, 200, {
        ...build(5, 'running'),
        stages: [
          { number: 1, name: 'install', status: 'success', steps: [] },
          { number: 2, name: 'upgrade', status: 'running', steps: [] },
        ],
      });
    const error = await failure(finished(finishingIn(1100), 5));
    expect(error).toBeInstanceOf(StateTimeoutError);
    expect(error).toBeInstanceOf(SystemFailure);
    expect(error).not.toBeInstanceOf(HarnessError);
    expect((error as StateTimeoutError).lastSeen).toBe('"running (install success, upgrade running)"');
    expect(error.message).toMatch(
      /waiting for Drone build #5 to finish \(ACCEPT_BUILD_FINISH_TIMEOUT, 1 s\); last saw: "running \(install success, upgrade running\)"$/,
    );
    expect(verdictOf(error)).toBe('FAIL');
  });

  it('ends at once on a refused token, as an ERROR', async () => {
    answer = unauthorized;
    const error = await failure(finished(finishingIn(60_000), 5));
    expect(error).toBeInstanceOf(HarnessError);
    expect(error).not.toBeInstanceOf(WaitTimeoutError);
    expect(calls).toBe(1);
  });

  it('is an ERROR, not a FAIL, when Drone never answered', async () => {
    answer = unavailable;
    const error = await failure(finished(finishingIn(1100), 5));
    expect(error).toBeInstanceOf(WaitTimeoutError);
    expect(error).not.toBeInstanceOf(SystemFailure);
  });
});

describe("a recipe's latest !testme build is the system's, never the harness's deliberate failure", () => {
  // As a kept cold run leaves custom-html: D1's build on its PR #1, then D4's on #2, from the harness's branch with a failing test.
  const heads: Record<string, string> = {
    'custom-html#1': 'bump-nginx',
    'custom-html#2': 'accept/d4-failing-recipe-local-test',
    'keycloak#1': 'bump-keycloak',
  };
  let asked: string[] = [];
  const forge = {
    pull: async (_owner: string, recipe: string, index: number): Promise<ForgePull> => {
      asked.push(`${recipe}#${index}`);
      const ref = heads[`${recipe}#${index}`];
      if (!ref) throw new HarnessError(`forge GET /repos/coop-cloud/${recipe}/pulls/${index} answered 404`);
      return { number: index, title: 'x', state: 'open', head: { ref } };
    },
  } as Partial<ForgeClient> as ForgeClient;
  const withForge = (): Ci => ({ ...ci, forge, org: 'coop-cloud' });
  const testme = (number: number, recipe: string, pull: number, status: string) => ({
    number,
    status,
    params: { RECIPE: recipe, PR: String(pull), COMMENT_ID: String(100 + number) },
    created: 1000 + number,
    started: 1,
    finished: 2,
  });
  const afterKeptColdRun = [testme(14, 'custom-html', 2, 'failure'), testme(13, 'keycloak', 1, 'success'), testme(12, 'custom-html', 1, 'success')];
  /** Drone's list (page by page from `pages`), and each build of it by number. */
  const drone =
    (pages: ReturnType<typeof testme>[][]): Answer =>
    (response) => {
      const url = server.seen.at(-1)!.url;
      const page = /[?&]page=(\d+)/.exec(url)?.[1];
      if (page) return json(response, 200, pages[Number(page) - 1] ?? []);
      const number = Number(/\/builds\/(\d+)$/.exec(url)![1]);
      json(response, 200, { ...pages.flat().find((listed) => listed.number === number)!, stages: [] });
    };
  beforeEach(() => {
    asked = [];
  });

  it("D10 on an existing host: custom-html's latest is #12 on its own PR, not D4's failing #14 on the harness's", async () => {
    answer = drone([afterKeptColdRun]);
    const latest = await latestSystemTestmeBuilds(withForge(), ['custom-html', 'keycloak']);
    expect(latest.get('custom-html')?.number).toBe(12);
    expect(latest.get('keycloak')?.number).toBe(13);
    // Each pull asked about once.
    expect(asked.sort()).toEqual(['custom-html#1', 'custom-html#2', 'keycloak#1']);
  });

  it('D2–D4, D6 and D7 reuse #12, the latest the system ran for the recipe, not #14', async () => {
    answer = drone([afterKeptColdRun]);
    const { build: reused, reused: wasReused } = await testmeBuild(withForge(), 'custom-html');
    expect(reused.number).toBe(12);
    expect(wasReused).toBe(true);
  });

  it("reads Drone's next page when every !testme build of the recipe on the first is the harness's", async () => {
    const others = Array.from({ length: 99 }, (_, i) => ({ ...testme(200 - i, 'keycloak', 1, 'success') }));
    answer = drone([[testme(201, 'custom-html', 2, 'failure'), ...others], [testme(12, 'custom-html', 1, 'success')]]);
    expect((await latestSystemTestmeBuilds(withForge(), ['custom-html'])).get('custom-html')?.number).toBe(12);
    // And none at all when the system never built the recipe: D10's "no !testme build".
    answer = drone([[testme(14, 'custom-html', 2, 'failure')]]);
    expect((await latestSystemTestmeBuilds(withForge(), ['custom-html'])).has('custom-html')).toBe(false);
  });

  it('takes only builds created at or after `since`', async () => {
    answer = drone([afterKeptColdRun]);
    expect((await latestSystemTestmeBuilds(withForge(), ['custom-html', 'keycloak'], 1013)).get('keycloak')?.number).toBe(13);
    answer = drone([afterKeptColdRun]);
    expect((await latestSystemTestmeBuilds(withForge(), ['custom-html'], 1013)).has('custom-html')).toBe(false);
  });

  it('a pull the forge cannot show is an ERROR, never a guess either way', async () => {
    answer = drone([[testme(15, 'custom-html', 9, 'success'), ...afterKeptColdRun]]);
    const error = await failure(latestSystemTestmeBuilds(withForge(), ['custom-html']));
    expect(error).toBeInstanceOf(HarnessError);
    expect(verdictOf(error)).toBe('ERROR');
  });
});

describe('where the specs may comment !testme', () => {
  it('the lab: on any recipe of its stand-in forge, custom-html the probe', () => {
    const ci = { org: 'coop-cloud', writes: { kind: 'stand-in' } as const };
    expect(probeRecipeOf(ci.writes, ci.org)).toBe('custom-html');
    expect(testmeRefusal(ci, 'keycloak')).toBeUndefined();
  });

  it('a real target with a probe repo: only there, and the probe repo is the recipe checked', () => {
    const ci = { org: 'coop-cloud', writes: realForgeWrites('coop-cloud/cc-ci-probe') };
    expect(probeRecipeOf(ci.writes, ci.org)).toBe('cc-ci-probe');
    expect(testmeRefusal(ci, 'cc-ci-probe')).toBeUndefined();
    expect(testmeRefusal(ci, 'keycloak')).toMatch(/outside the probe repo coop-cloud\/cc-ci-probe \(ACCEPT_FORGE_PROBE_REPO\)/);
  });

  it('a real target without one: nowhere, naming the setting', () => {
    const ci = { org: 'coop-cloud', writes: realForgeWrites(undefined) };
    expect(testmeRefusal(ci, 'custom-html')).toMatch(/set ACCEPT_FORGE_PROBE_REPO=owner\/name/);
  });

  it('refuses a probe repo outside the org, whose comments the bridge would ignore', () => {
    expect(() => probeRecipeOf(realForgeWrites('someone/probe'), 'coop-cloud')).toThrow(ConfigError);
    expect(() => probeRecipeOf(realForgeWrites('someone/probe'), 'coop-cloud')).toThrow(
      /ACCEPT_FORGE_PROBE_REPO: someone\/probe is not a repo of coop-cloud \(ACCEPT_FORGE_ORG\)/,
    );
  });
});

describe('how often a running build is looked at', () => {
  it('every 2 s at most in the lab (5m), every 4.8 s on a real target (40m), never rarer than 10 s', () => {
    expect(finishPollCap(5 * 60_000)).toBe(2_000);
    expect(finishPollCap(realTargetDurations({ durations: {} }).buildFinish)).toBe(4_800);
    expect(finishPollCap(24 * 3_600_000)).toBe(10_000);
  });
});
