/**
 * cc-ci's own faces, as the D specs use them: the forge (as a member and as an outsider), Drone,
 * and the apex (dashboard and /hook), all over TLS through the SOCKS proxy; plus the flows the
 * specs share: comment `!testme`, find the build it started, wait for its end, read its logs.
 * Changing the host's checkout and rebuilding it (then putting it back) is host-change.ts's.
 */
import { readFile } from 'node:fs/promises';
import { expect } from 'vitest';
import { settingOf, wholeDuration } from '../../helpers/common/budget.ts';
import type { Config, DurationName, Durations } from '../../helpers/common/config.ts';
import { ConfigError, HarnessError } from '../../helpers/common/errors.ts';
import { registerSecret } from '../../helpers/common/redact.ts';
import { StateTimeoutError, WaitTimeoutError, waitFor } from '../../helpers/common/wait.ts';
import { Apex } from '../../helpers/dashboard/index.ts';
import { DRONE_MAX_PER_PAGE, DroneClient, UNFINISHED, type DroneBuild, type DroneStage } from '../../helpers/drone/index.ts';
import { ForgeClient, forgeWriteRefusal, type ForgeComment, type ForgePull, type ForgeWrite, type ForgeWriteScope } from '../../helpers/forge/index.ts';
import { dialDomainAt, type Endpoint, type HttpsTransport } from '../../helpers/https/index.ts';
import type { RunContext } from './context.ts';
import { fill, type SystemProfile } from '../../machines/system-profile.ts';

/** The six recipes of the DoD (D10), with cc-ci's names. */
export const DOD_RECIPES = ['custom-html', 'keycloak', 'matrix-synapse', 'n8n', 'cryptpad', 'lasuite-docs'] as const;
/** The recipe the single-build specs (D1–D4, D6, D7) use where no probe repo is named. */
const DEFAULT_PROBE_RECIPE = 'custom-html';

/** What D1 requires of the bridge, whatever ACCEPT_BUILD_START_TIMEOUT allows: a build within 60 s of the comment. */
export const D1_START_LIMIT_MS = 60_000;

/**
 * The waits of the shared flows, in the order they happen, for a test's timeout (budgetMs):
 * a !testme build seen to its end, and a change to the host (rebuild, its services coming back,
 * and the rebuild that restores it).
 */
export const WAITS = {
  build: ['buildStart', 'buildFinish'],
  hostChange: ['rebuild', 'converge', 'rebuild'],
} as const satisfies Record<string, readonly DurationName[]>;

type StageName = keyof SystemProfile['build']['stages'];

/** The three stages of the matrix, found by the words of the system's profile, and what their logs must show. */
export const MATRIX = [
  { label: 'install', stage: 'install', work: [/install|deploy/i] },
  { label: 'upgrade', stage: 'upgrade', work: [/upgrade/i] },
  { label: 'backup/restore', stage: 'backupRestore', work: [/backup/i, /restore/i] },
] as const satisfies readonly { label: string; stage: StageName; work: readonly RegExp[] }[];

/** The build's stage whose name holds the profile's words for `stage`. */
export function findStage(ci: Pick<Ci, 'profile'>, build: DroneBuild, stage: StageName): DroneStage | undefined {
  const words = new RegExp(ci.profile.build.stages[stage], 'i');
  return build.stages?.find((candidate) => words.test(candidate.name));
}

export function matrixStages(ci: Pick<Ci, 'profile'>, build: DroneBuild): Map<string, DroneStage | undefined> {
  return new Map(MATRIX.map(({ label, stage }) => [label, findStage(ci, build, stage)]));
}

/** A build parameter the bridge sets, by what it means: the recipe, the PR, the triggering comment. */
export function buildParam(ci: Pick<Ci, 'profile'>, build: DroneBuild, which: keyof SystemProfile['build']['params']): string | undefined {
  return build.params[ci.profile.build.params[which]];
}

/** `RECIPE=custom-html, COMMENT_ID=114`: the parameters as the bridge named them, for a check's observation. */
export function describeParams(ci: Pick<Ci, 'profile'>, build: DroneBuild, which: readonly (keyof SystemProfile['build']['params'])[]): string {
  return which.map((name) => `${ci.profile.build.params[name]}=${buildParam(ci, build, name)}`).join(', ');
}

/** The dashboard's page of build `n`, and a recipe's badge. */
export const runPath = (ci: Pick<Ci, 'profile'>, n: number): string => fill(ci.profile.dashboard.runPath, { n });
export const badgePath = (ci: Pick<Ci, 'profile'>, recipe: string): string => fill(ci.profile.dashboard.badgePath, { recipe });

export interface Ci {
  org: string;
  domain: string;
  /**
   * The recipe of the single-build specs (D1–D4, D6, D7): the probe repo's, where the operator
   * named one (ACCEPT_FORGE_PROBE_REPO), else custom-html.
   */
  probeRecipe: string;
  /** The machine whose bridge, Drone and dashboard these are. */
  machine: string;
  /** Where the specs may write to the forge; the forge clients refuse anything else. */
  writes: ForgeWriteScope;
  /** The system's names: build parameters, stages, dashboard links. */
  profile: SystemProfile;
  /** The forge as a member of the org. */
  forge: ForgeClient;
  /** The forge as a user outside the org. */
  outsider: ForgeClient;
  drone: DroneClient;
  apex: Apex;
  /** The run's durations: every wait on the bridge and Drone takes its limit from here. */
  durations: Durations;
}

async function token(file: string | undefined, setting: string, secrets: Record<string, string>, key: string): Promise<{ value: string; source: string }> {
  if (file) {
    const value = (
      await readFile(file, 'utf8').catch((error: Error) => {
        throw new HarnessError(`${setting}: cannot read ${file}: ${error.message}`);
      })
    ).trim();
    registerSecret(value);
    return { value, source: `${setting} (${file})` };
  }
  const value = secrets[key];
  if (!value) throw new HarnessError(`${setting} is unset and the instance repo has no sops value ${key}: the specs need a token to act on the forge or Drone`);
  return { value, source: `the instance repo's sops value ${key}` };
}

/** Which cc-ci the D specs act through: where its names are dialled, and the forge its bridge serves. */
export interface CiFaces {
  /** The machine, as a check's observation names it. */
  machine: string;
  /** Where a name under the domain is dialled (undefined: by name, through the proxy). */
  dial: (hostname: string) => Endpoint | undefined;
  /** The forge its bridge serves, where the target runs one per machine (the lab). */
  forgeUrl?: string;
}

/** The running cc-ci's faces, when the run can reach it; the D items are observed there. */
export function productionFaces(run: RunContext): CiFaces | undefined {
  const production = run.machines.production;
  if (!('name' in production)) return undefined;
  if (production.via === 'run-host') return hostFaces(run);
  const { https } = production;
  return {
    machine: production.name,
    dial: https ? dialDomainAt(run.domain, https) : () => undefined,
    ...(production.forgeUrl ? { forgeUrl: production.forgeUrl } : {}),
  };
}

/** The run's host's own faces: what a check that changes the host (D5's enrolment, D6's rotation) acts through. */
export function hostFaces(run: RunContext): CiFaces {
  return { machine: run.instance.name, dial: dialDomainAt(run.domain, run.https), ...(run.forgeUrl ? { forgeUrl: run.forgeUrl } : {}) };
}

export async function openCi(
  run: RunContext,
  config: Config,
  secrets: Record<string, string>,
  faces: CiFaces = productionFaces(run) ?? hostFaces(run),
): Promise<Ci> {
  const transport: HttpsTransport = {
    socks: run.target.socks,
    ca: await readFile(run.tlsCaFile, 'utf8'),
    dial: faces.dial,
    // A rebuild (D4–D6) restarts cc-ci's faces under the specs: ride out that restart.
    settleMs: run.durations.converge,
  };
  const member = await token(config.ci.forgeMemberTokenFile, 'ACCEPT_FORGE_MEMBER_TOKEN_FILE', secrets, 'forge_member_token');
  const outsider = await token(config.ci.forgeOutsiderTokenFile, 'ACCEPT_FORGE_OUTSIDER_TOKEN_FILE', secrets, 'forge_outsider_token');
  const drone = await token(config.ci.droneTokenFile, 'ACCEPT_DRONE_TOKEN_FILE', secrets, 'drone_api_token');
  // The lab runs a forge per machine, outside it, as the recipes' forge is outside cc-ci.
  const forgeUrl = config.ci.forgeUrl ?? faces.forgeUrl ?? `https://git.${run.domain}`;
  const writes = run.forgeWrites;
  return {
    machine: faces.machine,
    org: config.ci.forgeOrg,
    domain: run.domain,
    probeRecipe: probeRecipeOf(writes, config.ci.forgeOrg),
    writes,
    profile: run.profile,
    forge: new ForgeClient(forgeUrl, member.value, transport, member.source, writes),
    outsider: new ForgeClient(forgeUrl, outsider.value, transport, outsider.source, writes),
    drone: new DroneClient(config.ci.droneUrl ?? `https://drone.${run.domain}`, config.ci.droneRepo, drone.value, transport, drone.source),
    apex: new Apex(`https://${run.domain}`, transport),
    durations: run.durations,
  };
}

/** The probe repo's name as the recipe; it must be in the org, whose members the bridge obeys. */
export function probeRecipeOf(writes: ForgeWriteScope, org: string): string {
  if (writes.kind !== 'probe') return DEFAULT_PROBE_RECIPE;
  const [owner, name] = writes.repo.split('/') as [string, string];
  if (owner.toLowerCase() !== org.toLowerCase()) {
    throw new ConfigError(
      'ACCEPT_FORGE_PROBE_REPO',
      `${writes.repo} is not a repo of ${org} (ACCEPT_FORGE_ORG): the bridge builds only for that org's repos, so a !testme there would prove nothing`,
    );
  }
  return name;
}

/** Why the specs may not comment `!testme` on `recipe`'s PR, or undefined when they may: a SKIPPED check's reason. */
export function testmeRefusal(ci: Pick<Ci, 'org' | 'writes'>, recipe: string): string | undefined {
  return forgeWriteRefusal(ci.writes, { kind: 'comment', owner: ci.org, repo: recipe });
}

/** Why the specs may not make `write`, or undefined when they may. */
export function writeRefusal(ci: Pick<Ci, 'writes'>, write: ForgeWrite): string | undefined {
  return forgeWriteRefusal(ci.writes, write);
}

export interface Trigger {
  recipe: string;
  pull: ForgePull;
  comment: ForgeComment;
  /** Local clock, ms, just before the comment was posted. */
  postedAt: number;
  by: string;
}

export async function openPull(ci: Ci, recipe: string): Promise<ForgePull> {
  const pulls = await ci.forge.openPulls(ci.org, recipe);
  if (!pulls.length) throw new HarnessError(`${ci.org}/${recipe} has no open pull request to comment !testme on`);
  // The oldest (lowest number): Gitea lists newest first, so pulls[0] would move to any PR opened since.
  return pulls.reduce((oldest, pull) => (pull.number < oldest.number ? pull : oldest));
}

/**
 * An open pull request on owner/recipe from `branch`, whose head holds `path` with `text` (a
 * commit of the harness's on a branch of its own, never on the base): found as a rerun left it,
 * else made. Writes a commit and a pull request, so only where the run may.
 */
export async function pullWithFile(ci: Ci, recipe: string, change: { branch: string; path: string; text: string; title: string }): Promise<ForgePull> {
  await ci.forge.branchWithFile(ci.org, recipe, { branch: change.branch, from: 'main', path: change.path, text: change.text, message: change.title });
  const pulls = await ci.forge.openPulls(ci.org, recipe);
  return (
    pulls.find((open) => open.head?.ref === change.branch) ??
    (await ci.forge.createPull(ci.org, recipe, { title: change.title, head: change.branch, base: 'main' }))
  );
}

export async function commentTestme(ci: Ci, recipe: string, as: ForgeClient = ci.forge, pull?: ForgePull): Promise<Trigger> {
  const target = pull ?? (await openPull(ci, recipe));
  const by = (await as.me()).login;
  const postedAt = Date.now();
  const comment = await as.comment(ci.org, recipe, target.number, '!testme');
  return { recipe, pull: target, comment, postedAt, by };
}

/** A build is a comment's when Drone's build parameters name that comment. */
export function isBuildOf(ci: Pick<Ci, 'profile'>, build: DroneBuild, trigger: Trigger): boolean {
  return buildParam(ci, build, 'comment') === String(trigger.comment.id);
}

/** Drone's clock and ours may differ: builds created up to this long before a moment still count as after it. */
const CLOCK_SLACK_S = 300;
/** How far back a search of Drone's build list reads at most: ten of its pages. */
export const BUILD_SEARCH_LIMIT = 10 * DRONE_MAX_PER_PAGE;

/**
 * Drone's builds newest first, read page by page until one `matches` or one older than
 * `notBefore` (unix seconds, less the clock slack) is listed: the specs never assume the
 * first page holds theirs.
 */
export function searchBuilds(ci: Pick<Ci, 'drone'>, search: { matches?: (build: DroneBuild) => boolean; notBefore?: number }): Promise<DroneBuild[]> {
  const oldest = search.notBefore === undefined ? undefined : search.notBefore - CLOCK_SLACK_S;
  return ci.drone.builds({
    atMost: BUILD_SEARCH_LIMIT,
    enough: (listed) => listed.some((build) => search.matches?.(build) || (oldest !== undefined && build.created < oldest)),
  });
}

/**
 * The head branches of the harness's own pull requests in recipe repos (D4's deliberately failing
 * recipe-local test, D5's enrolment). A build of one is the harness's experiment, never the
 * recipe's state as the system has it.
 */
export const HARNESS_BRANCH_PREFIX = 'accept/';
export const harnessBranch = (name: string): string => `${HARNESS_BRANCH_PREFIX}${name}`;

/**
 * Tells whether a build came from a !testme on one of the harness's own pull requests, asking the
 * forge once per pull. A build naming no pull is the system's: the harness comments only on pulls.
 * A pull the forge cannot show is an error (ERROR), never a guess either way.
 */
export function harnessPullCheck(ci: Pick<Ci, 'forge' | 'org' | 'profile'>): (build: DroneBuild) => Promise<boolean> {
  const asked = new Map<string, Promise<boolean>>();
  return (build) => {
    const recipe = buildParam(ci, build, 'recipe');
    const pull = Number(buildParam(ci, build, 'pull'));
    if (!recipe || !Number.isInteger(pull) || pull <= 0) return Promise.resolve(false);
    const key = `${recipe}#${pull}`;
    if (!asked.has(key))
      asked.set(
        key,
        ci.forge.pull(ci.org, recipe, pull).then((found) => Boolean(found.head?.ref.startsWith(HARNESS_BRANCH_PREFIX))),
      );
    return asked.get(key)!;
  };
}

/**
 * The newest !testme build of each of `recipes` that the system ran for the recipe itself (none
 * where Drone lists no such build): builds on the harness's own pull requests are passed over, so
 * that another spec's deliberate failure (D4's) is never taken for the recipe's latest. With
 * `since` (unix seconds), only builds created at or after it. Drone's list is read newest first
 * until each recipe has one, or a build older than `since` (less the clock slack) is listed.
 */
export async function latestSystemTestmeBuilds(
  ci: Pick<Ci, 'drone' | 'forge' | 'org' | 'profile'>,
  recipes: readonly string[],
  since?: number,
): Promise<Map<string, DroneBuild>> {
  const onHarnessPull = harnessPullCheck(ci);
  const latest = new Map<string, DroneBuild>();
  const take = async (listed: readonly DroneBuild[]): Promise<boolean> => {
    for (const build of listed) {
      const recipe = buildParam(ci, build, 'recipe');
      if (!recipe || !recipes.includes(recipe) || latest.has(recipe) || !buildParam(ci, build, 'comment')) continue;
      if (since !== undefined && build.created < since) continue;
      if (!(await onHarnessPull(build))) latest.set(recipe, build);
    }
    return recipes.every((recipe) => latest.has(recipe)) || (since !== undefined && listed.some((build) => build.created < since - CLOCK_SLACK_S));
  };
  // A short page ends the list without asking `enough`: its builds are taken after.
  await take(await ci.drone.builds({ atMost: BUILD_SEARCH_LIMIT, enough: take }));
  return latest;
}

/**
 * The build the bridge started for this comment, or undefined when Drone's build list, read
 * until the deadline, never had it: "no build started", the caller's FAIL. Drone lists newest
 * first, so that holds only if its last answer came in time; when the last reads failed
 * (transient: a 502, a refused connection) it is a WaitTimeoutError (ERROR) naming the failure.
 * A refused token ends the wait at once, as an ERROR.
 */
export async function buildFor(ci: Ci, trigger: Trigger, timeoutMs: number): Promise<{ build: DroneBuild; seenAfterMs: number } | undefined> {
  const description = `a Drone build for comment ${trigger.comment.id} on ${trigger.recipe}#${trigger.pull.number}`;
  try {
    return await waitFor<{ build: DroneBuild; seenAfterMs: number }>(
      description,
      async () => {
        const builds = await searchBuilds(ci, { matches: (candidate) => isBuildOf(ci, candidate, trigger), notBefore: Math.floor(trigger.postedAt / 1000) });
        const build = builds.find((candidate) => isBuildOf(ci, candidate, trigger));
        return build
          ? { build, seenAfterMs: Date.now() - trigger.postedAt }
          : { done: false as const, saw: `${builds.length} builds listed, none for comment ${trigger.comment.id}` };
      },
      { timeoutMs, intervalMs: 500, observes: 'system' },
    );
  } catch (error) {
    if (!(error instanceof StateTimeoutError)) throw error;
    if (error.lastProbeFailed)
      throw new WaitTimeoutError(
        description,
        error.waitedMs,
        `error: ${error.lastFailure} (Drone answered ${error.answers} of ${error.answers + error.failures} reads, never listing it)`,
      );
    return undefined;
  }
}

/** `running (install success, upgrade running)`: a build's status with its stages'. */
function progress(build: DroneBuild): string {
  const stages = (build.stages ?? []).map((stage) => `${stage.name} ${stage.status}`);
  return stages.length > 0 ? `${build.status} (${stages.join(', ')})` : build.status;
}

/**
 * Waits for a build's end (any status but Drone's unfinished ones: success, failure, error,
 * killed, …) and returns it with stages and steps. A build seen unfinished until the deadline
 * is a StateTimeoutError (FAIL) with its last status; no answer at all is an ERROR.
 */
export async function finished(ci: Ci, number: number): Promise<DroneBuild> {
  return waitFor<DroneBuild>(
    `Drone build #${number} to finish (${settingOf(ci.durations, 'buildFinish')})`,
    async () => {
      const build = await ci.drone.build(number);
      return UNFINISHED.has(build.status) ? { done: false as const, saw: progress(build) } : build;
    },
    { timeoutMs: ci.durations.buildFinish, intervalMs: 500, maxIntervalMs: finishPollCap(ci.durations.buildFinish), observes: 'system' },
  );
}

/** The longest pause between two looks at a running build: about 500 looks over the whole budget, every 2–10 s. */
export function finishPollCap(buildFinishMs: number): number {
  return Math.min(10_000, Math.max(2_000, Math.round(buildFinishMs / 500)));
}

/** Comments !testme as the member and returns the finished build it started. */
export async function freshBuild(ci: Ci, recipe: string, pull?: ForgePull): Promise<{ build: DroneBuild; trigger: Trigger }> {
  const trigger = await commentTestme(ci, recipe, ci.forge, pull);
  const started = await buildFor(ci, trigger, ci.durations.buildStart);
  // An assertion, so that a missing build reads as FAIL: the system did not do it.
  expect(
    started,
    `no Drone build started within ${wholeDuration(ci.durations.buildStart)} (ACCEPT_BUILD_START_TIMEOUT) of the !testme comment ${trigger.comment.id} by ${trigger.by} on ${ci.org}/${recipe}#${trigger.pull.number}`,
  ).toBeDefined();
  return { build: await finished(ci, started!.build.number), trigger };
}

/**
 * A finished !testme build of the recipe: the system's latest one created at or after `since`
 * (unix seconds) if there is one, waiting for it to end; else a fresh one. Never one on the
 * harness's own pull requests (latestSystemTestmeBuilds).
 */
export async function testmeBuild(ci: Ci, recipe: string, since?: number): Promise<{ build: DroneBuild; reused: boolean }> {
  const latest = (await latestSystemTestmeBuilds(ci, [recipe], since)).get(recipe);
  if (latest) return { build: await finished(ci, latest.number), reused: true };
  return { build: (await freshBuild(ci, recipe)).build, reused: false };
}

/**
 * D4's deliberately failing recipe-local test, on a branch of the harness's own in the recipe
 * repo (never on its base), and the pull request from it. Its builds must fail: D4 checks that
 * they do, D7 that the system reports them as failed.
 */
export const FAILING_RECIPE_TEST = {
  branch: harnessBranch('d4-failing-recipe-local-test'),
  file: 'test_acceptance_fails_on_purpose.py',
  text: [
    '"""Added by the acceptance harness (D4) on a branch of its own: a recipe-local test that fails, so the build must."""',
    'import sys',
    '',
    'print("not ok 1 - acceptance: this recipe-local test fails on purpose", flush=True)',
    'sys.exit(1)',
    '',
  ].join('\n'),
  title: 'acceptance: a recipe-local test that fails on purpose',
} as const;

/** The pull request whose head holds the failing recipe-local test: found as an earlier run left it, else made. */
export function failingTestPull(ci: Ci, recipe: string): Promise<ForgePull> {
  const { branch, file, text, title } = FAILING_RECIPE_TEST;
  return pullWithFile(ci, recipe, { branch, path: `${ci.profile.recipes.localTests}/${file}`, text, title });
}

/**
 * A finished !testme build of the failing pull request: the newest one created at or after
 * `since` (unix seconds; D4's, in a cold run), else a fresh one. Finding one reads the forge
 * and Drone only; making one writes a commit, a pull request and a comment, so only where the
 * run may (the forge client refuses the rest).
 */
export async function failingTestBuild(ci: Ci, recipe: string, since?: number): Promise<{ build: DroneBuild; pull: ForgePull; reused: boolean }> {
  const open = (await ci.forge.openPulls(ci.org, recipe)).find((pull) => pull.head?.ref === FAILING_RECIPE_TEST.branch);
  if (open) {
    const onPull = (build: DroneBuild) =>
      buildParam(ci, build, 'recipe') === recipe && buildParam(ci, build, 'pull') === String(open.number) && buildParam(ci, build, 'comment') !== undefined;
    const latest = (await searchBuilds(ci, { matches: onPull, notBefore: since })).find(onPull);
    if (latest && (since === undefined || latest.created >= since - CLOCK_SLACK_S))
      return { build: await finished(ci, latest.number), pull: open, reused: true };
  }
  const pull = open ?? (await failingTestPull(ci, recipe));
  return { build: (await freshBuild(ci, recipe, pull)).build, pull, reused: false };
}

/** Builds of this run only, on a throwaway; any on an existing host. */
export function runStart(run: RunContext): number | undefined {
  return run.instance.createdInThisRun ? Math.floor(Date.parse(run.instance.createdAt) / 1000) : undefined;
}

export interface StepLog {
  stage: string;
  step: string;
  text: string;
}

export async function buildLogs(ci: Ci, build: DroneBuild): Promise<StepLog[]> {
  const logs: StepLog[] = [];
  for (const stage of build.stages ?? []) {
    for (const step of stage.steps) {
      logs.push({ stage: stage.name, step: step.name, text: (await ci.drone.log(build.number, stage.number, step.number)) ?? '' });
    }
  }
  return logs;
}
