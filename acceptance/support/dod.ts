/**
 * How a spec declares its DoD item, records what each check observed and takes the run's shared
 * resources. Specs import `dodItem`, `test`, `step`, `attach` and `observation` from here and
 * nothing from the machines layer, so they run unchanged against the lab or a real host.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as allure from 'allure-js-commons';
import { afterEach, beforeEach, describe, expect, inject, test as base, type TestContext } from 'vitest';
import { budgetMs, withinDuration } from '../../helpers/common/budget.ts';
import { HarnessError } from '../../helpers/common/errors.ts';
import { log, timed } from '../../helpers/common/log.ts';
import { redact, registerSecret } from '../../helpers/common/redact.ts';
import { cloneCacheDir, sharedClone, type Clone } from '../../helpers/git/index.ts';
import { loadConfig, type Config, type DurationName } from '../../helpers/common/config.ts';
import type { IncusClient } from '../../helpers/incus/client.ts';
import { decryptSops, parseAgeIdentities, topLevelStrings } from '../../helpers/sops/index.ts';
import type { HostChannel } from '../../helpers/common/host.ts';
import { openHost, openIncusFor, openProduction, type ProductionHost } from '../../machines/host.ts';
import type { RunContext } from './context.ts';
import { fill, type SystemProfile } from '../../machines/system-profile.ts';
import type { D8Record } from './d8.ts';
import type { ClosureDiff } from '../../helpers/nix/index.ts';
import { DOD_ITEMS, itemLabel, type DodItemId } from '../../reporting/dod-items.ts';
import { ForgeWriteRefused } from '../../helpers/forge/writes.ts';
import type { Ci } from './ci.ts';

declare module 'vitest' {
  interface TaskMeta {
    /** The check's observation (see `observation`). */
    observation?: string;
    skipReason?: string;
    /** The machine the check observed, as its observation names it (see `observes`). */
    machine?: string;
    /** Worker-scoped fixtures made during this test, and how long each took (ms): the bench's breakdown. */
    fixtureMs?: Record<string, number>;
  }
}

/**
 * The Vitest timeout of a test that waits for each of `waits` in turn (a wait named twice counts
 * twice), from the run's durations: their sum plus ACCEPT_CHECK_TIMEOUT for the test's own work.
 * Pass it as the test's last argument; a test without waits gets `within()` from its dodItem.
 */
export function within(...waits: readonly DurationName[]): number {
  return budgetMs(providedRun().durations, waits);
}

/**
 * The run context global setup provided. A re-run of a long-lived warm session that could not
 * attach again (global-warm.ts) throws why, so that its checks ERROR and never read the host the
 * session began with.
 */
export function providedRun(): RunContext {
  const refused = inject('runRefused');
  if (refused) throw new HarnessError(refused);
  return inject('run');
}

/**
 * The names of the system under test (its docs, units, build parameters, links, layout): specs
 * take every such name from here, at collection (titles) as in tests.
 */
export function system(): SystemProfile {
  return providedRun().profile;
}

export { fill };

/**
 * The base repo's decision log (DECISIONS.md), where the seed has its open decisions recorded.
 * Missing is a FAIL naming the decision `decided` the spec looks for.
 */
export async function decisionLog(baseRepo: Pick<Clone, 'dir'>, decided: string): Promise<string> {
  const { decisions } = system().docs;
  const text = await readFile(join(baseRepo.dir, decisions), 'utf8').catch(() => undefined);
  expect(text, `${decisions} is missing in the base repo: the seed has ${decided} decided and recorded there`).toBeDefined();
  return text!;
}

/**
 * Items whose checks only read (the host, the repos, the project), each on its own: their tests
 * run side by side, so an item takes as long as its slowest check (C3's host scan), not their sum.
 * The others run their checks in order: D1-D7 and D10 comment, build and rebuild, one step on the
 * last; D8's optional reboot check restarts the machine the other checks read.
 */
const CHECKS_SIDE_BY_SIDE: ReadonlySet<DodItemId> = new Set(['C1', 'C2', 'C3', 'C4', 'C5', 'C6', 'C7', 'D9']);

/** Wraps a spec's tests in a suite named after the item, and labels them for Allure. */
export function dodItem(id: DodItemId, body: () => void): void {
  describe(itemLabel(id), { timeout: within(), concurrent: CHECKS_SIDE_BY_SIDE.has(id) }, () => {
    afterEach(({ task }) => takeFixtureTimes(task));
    beforeEach(async () => {
      await allure.epic(DOD_ITEMS[id].phase);
      await allure.feature(itemLabel(id));
      await allure.label('dod-item', id);
    });
    body();
  });
}

export async function step<T>(name: string, work: () => Promise<T> | T): Promise<T> {
  return allure.step(redact(name), async () => work());
}

/** Attaches text or JSON to the check's report (Allure), redacted like everything else that leaves the process. */
export async function attach(name: string, content: string | object): Promise<void> {
  const text = typeof content === 'string' ? content : JSON.stringify(content, null, 2);
  await allure.attachment(name, redact(text), typeof content === 'string' ? 'text/plain' : 'application/json');
}

/**
 * The check's observation: the one line of what it saw that the DoD summary shows for it (the run
 * record keeps it in the check's `evidence` field).
 */
export function observation(task: TestContext['task'], line: string): void {
  task.meta.observation = redact(line);
}

/**
 * Names the machine a check observes, first thing in the test, so that its observation (and its
 * failure, and its skip) says where it looked: the running cc-ci, the run's host, or this machine.
 */
export function observes(task: TestContext['task'], machine: string): void {
  task.meta.machine = redact(machine);
}

/** Checks of the repos, the sops file and the clean-checkout build: nothing on a host. */
export const OPERATOR_SIDE = 'this machine (operator side)';

/** The host the run faces, and which of the DoD's machines it is. */
export function runHost(): string {
  const run = providedRun();
  if (run.target.kind === 'ssh') return `${run.instance.name} (the running cc-ci, over SSH)`;
  // A warm run with no kept throwaway faces the running cc-ci alone (machines/providers/incus.ts).
  const production = run.machines.production;
  if ('name' in production && production.via === 'run-host') return `${run.instance.name} (the running cc-ci; no kept throwaway in this run)`;
  return `${run.instance.name} (${run.instance.createdInThisRun ? 'the throwaway of this run' : 'a kept throwaway'})`;
}

/** The running cc-ci, or that this run cannot reach it. */
export function runningCcci(): string {
  const production = providedRun().machines.production;
  return 'name' in production ? `${production.name} (the running cc-ci)` : 'the running cc-ci (unreachable: ACCEPT_PRODUCTION unset)';
}

/** cc-ci's faces the D specs act through: the running cc-ci's where the run reaches it, else the run's host's. */
export function ciFaces(): string {
  const production = providedRun().machines.production;
  if ('name' in production && production.via === 'incus') return `${runningCcci()}: bridge, Drone, dashboard`;
  return `${runHost()}: bridge, Drone, dashboard`;
}

/** The run's host's own faces: where a check that changes the host acts. */
export function hostFacesOf(): string {
  return `${runHost()}: bridge, Drone, dashboard`;
}

/** Skips a check that cannot apply to this target, and says why in the summary. */
export function skipBecause(context: { task: TestContext['task']; skip: (note?: string) => void }, reason: string): never {
  context.task.meta.skipReason = reason;
  context.skip(reason);
  throw new Error('unreachable: skip() throws');
}

/**
 * Runs `work`; a forge write that the run's scope refuses (no probe repo, or a repo outside it)
 * makes the check SKIPPED with the refusal as its reason, not an ERROR: nothing was sent.
 */
export async function unlessWriteRefused<T>(context: { task: TestContext['task']; skip: (note?: string) => void }, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof ForgeWriteRefused) skipBecause(context, error.reason);
    throw error;
  }
}

/** One machine's systems against the clean-checkout build. */
export interface MachineSystems {
  /** The machine observed, by name. */
  machine: string;
  built: string;
  running: string;
  /** /run/booted-system; undefined where the host has none (the lab's container). */
  booted: string | undefined;
  diff: ClosureDiff;
}

export interface Reproduction extends MachineSystems {
  composition: 'submodule' | 'input' | undefined;
  /** The running cc-ci's systems (zero drift), or why this run cannot reach it. */
  production: MachineSystems | { unreachable: string };
  /** The D8 record of this run (reports/evidence/d8.json). */
  record: D8Record;
}

export interface GitSecrets {
  /** Decrypted values, registered for redaction before anyone sees them. */
  values: Record<string, string>;
  recipients: string[];
  source: string;
}

// Worker-scoped: one connection, one clone and one decryption serve every spec in the run.
export const test = base
  .extend('run', { scope: 'worker' }, async (): Promise<RunContext> => made('run', async () => providedRun()))
  // One channel per worker (incus exec, or one SSH connection), closed with the worker.
  .extend(
    'host',
    { scope: 'worker' },
    async ({ run }, { onCleanup }): Promise<HostChannel> =>
      made('host', async () => {
        const host = await openHost(run);
        onCleanup(() => host.close());
        return host;
      }),
  )
  .extend('config', { scope: 'worker' }, async (): Promise<Config> => made('config', async () => loadConfig()))
  .extend(
    'incus',
    { scope: 'worker' },
    async ({ run }, { onCleanup }): Promise<IncusClient> =>
      made('incus', async () => {
        const client = await openIncusFor(run);
        onCleanup(() => client.close());
        return client;
      }),
  )
  // The running cc-ci (cc-nix-test): read, never changed. Opened once; unreachable is a reason, not an error.
  .extend(
    'production',
    { scope: 'worker' },
    async ({ run }, { onCleanup }): Promise<ProductionHost> =>
      made('production', async () => {
        const production = await openProduction(run);
        if ('host' in production) onCleanup(() => production.host.close());
        return production;
      }),
  )
  // Clones as the remote's refs stand now, shared by runs that find them unchanged (sharedClone).
  .extend(
    'baseRepo',
    { scope: 'worker' },
    async ({ run, config }): Promise<Clone> =>
      made('baseRepo', async () => sharedClone(run.baseRepo, { setting: 'ACCEPT_BASE_REPO', cacheDir: cloneCacheDir(config.stateDir) })),
  )
  // One clean-checkout build and one comparison serve C1, C5 and D8. Made in a hook of its own
  // (useReproduction), and settled: a failure reaches each test that uses it, not the whole file.
  .extend(
    'reproductionMade',
    { scope: 'worker' },
    async ({ run, baseRepo, host, production, config }): Promise<Settled<Reproduction>> =>
      made('reproductionMade', () =>
        settle(async () => {
          // Loaded by the specs that take this fixture only: a run of C2 alone never imports them.
          const { bootedSystem, buildToplevelFromCleanClone, closure, closureHash, compareClosures, currentSystem } = await import(
            '../../helpers/nix/index.ts'
          );
          const { writeD8 } = await import('./d8.ts');
          const composition = await detectComposition(baseRepo.dir, run.profile.instance.submodule);
          // Logged, not an Allure step: no test is running yet.
          const built = await timed(`Building the toplevel from a clean clone of ${run.baseRepo} (${composition ?? 'no'} composition)`, () =>
            withinDuration(run.durations, 'rebuild', `the operator-side build of ${run.baseRepo}`, (timeoutMs) =>
              buildToplevelFromCleanClone(run.baseRepo, { submodules: composition === 'submodule', nixConfig: run.nixConfig, timeoutMs }),
            ),
          );
          const builtAt = built.builtAt;
          if (built.reused)
            log.info(`the toplevel of ${built.commit.slice(0, 12)} was built at ${builtAt} in this session and is still in the store: not built again`);
          const observedAt = new Date().toISOString();
          const built_ = await closure(built.path, { nixConfig: run.nixConfig });
          // One machine's systems against this build: the run's host, and the running cc-ci (zero drift, D8's static half).
          // Each machine's reads side by side, and both machines at once: each is a round trip to a
          // host. The closure is read of the system seen running, not of whatever runs a moment later.
          const machineSystems = async (machine: HostChannel, name: string): Promise<MachineSystems> => {
            const running = await currentSystem(machine);
            const [booted, running_] = await Promise.all([bootedSystem(machine), closure(machine, { path: running })]);
            return { machine: name, built: built.path, running, booted, diff: compareClosures(built_, running_) };
          };
          const productionSeparate = !('unreachable' in production) && production.host !== host && production.name !== host.name;
          const [onHost, productionSystems] = await Promise.all([
            machineSystems(host, host.name),
            productionSeparate ? machineSystems(production.host, production.name) : undefined,
          ]);
          const { running, booted, diff } = onHost;
          const rebuild = run.runbook?.steps.at(-1);
          const onProduction: MachineSystems | { unreachable: string } = 'unreachable' in production ? production : (productionSystems ?? onHost);
          // D8's static half is the running cc-ci's; a run that cannot reach it records its own host, by name.
          const staticSide: MachineSystems = 'unreachable' in onProduction ? onHost : onProduction;
          const record: D8Record = {
            runId: run.runId,
            static: {
              builtAt,
              baseRepo: run.baseRepo,
              commit: built.commit,
              composition: composition ?? 'none',
              toplevel: built.path,
              closureHash: closureHash(built_),
              paths: built_.entries.length,
            },
            running: {
              observedAt,
              host: staticSide.machine,
              toplevel: staticSide.running,
              booted: staticSide.booted ?? null,
              closureHash: staticSide.diff.hashB,
              paths: staticSide.diff.sizeB,
            },
            identical: staticSide.diff.identical && built.path === staticSide.running,
            live:
              run.instance.createdInThisRun && run.runbook
                ? {
                    instance: run.instance.name,
                    project: run.instance.project,
                    createdAt: run.instance.createdAt,
                    destroyedAt: null,
                    runbook: {
                      source: run.runbook.source,
                      steps: run.runbook.steps.map(({ index, text, exitCode, startedAt, channel }) => ({ index, text, exitCode, startedAt, channel })),
                    },
                    rebuildExitCode: rebuild?.kind === 'sh' ? rebuild.exitCode : undefined,
                    toplevel: running,
                  }
                : undefined,
          };
          await writeD8(config.reportsDir, record, diff);
          return { composition, machine: host.name, built: built.path, running, booted, diff, production: onProduction, record };
        }),
      ),
  )
  .extend('reproduction', async ({ reproductionMade }): Promise<Reproduction> => unsettle(reproductionMade))
  .extend(
    'instanceRepo',
    { scope: 'worker' },
    async ({ run, config }): Promise<string> =>
      made(
        'instanceRepo',
        async () => (await sharedClone(run.instanceRepo, { setting: 'ACCEPT_INSTANCE_REPO', cacheDir: cloneCacheDir(config.stateDir) })).dir,
      ),
  )
  .extend(
    'gitSecrets',
    { scope: 'worker' },
    async ({ run, instanceRepo }): Promise<GitSecrets> =>
      made('gitSecrets', async () => {
        const { secretsFile } = run.profile.instance;
        const source = `${run.instanceRepo} ${secretsFile}`;
        const identities = parseAgeIdentities(await readFile(run.ageKeyFile, 'utf8'), run.ageKeyFile);
        const document = await decryptSops(await readFile(join(instanceRepo, secretsFile), 'utf8'), { identities, source });
        const values = topLevelStrings(document);
        for (const value of Object.values(values)) registerSecret(value);
        return { values, recipients: document.recipients, source };
      }),
  )
  // cc-ci's forge, Drone and apex, with the tokens the D specs act with.
  .extend(
    'ci',
    { scope: 'worker' },
    async ({ run, config, gitSecrets }): Promise<Ci> => made('ci', async () => (await import('./ci.ts')).openCi(run, config, gitSecrets.values)),
  )
  // The run's host's own faces, for the checks that change that host (D5's enrolment, D6's rotation).
  .extend(
    'hostCi',
    { scope: 'worker' },
    async ({ run, config, gitSecrets }): Promise<Ci> =>
      made('hostCi', async () => {
        const { hostFaces, openCi } = await import('./ci.ts');
        return openCi(run, config, gitSecrets.values, hostFaces(run));
      }),
  );

/**
 * Makes the shared reproduction (the operator-side build of the toplevel and the closure
 * comparison) in a beforeAll of the calling spec, under a budget of its own: the operator-side
 * build (ACCEPT_REBUILD_TIMEOUT) plus ACCEPT_CHECK_TIMEOUT for the clones and the closure reads.
 * Without it, the worker-scoped fixture would be made inside the first test that takes it, and
 * spend that test's timeout. Call it in each spec that uses `reproduction`; only the first one in
 * the run does the work.
 */
export function useReproduction(): void {
  test.beforeAll(async ({ reproductionMade }) => {
    void reproductionMade;
  }, within('rebuild'));
}

/** Fixtures made since the last test ended, by name (ms); each test's meta takes them (dodItem). */
const fixturesMade: Record<string, number> = {};

/**
 * Times a worker-scoped fixture's own work (the fixtures it takes are made before): how long a
 * run spends making what its checks share. Inside the fixture's body, since Vitest reads each
 * fixture's first parameter to know what it takes.
 */
async function made<T>(name: string, make: () => Promise<T> | T): Promise<T> {
  const started = performance.now();
  try {
    return await make();
  } finally {
    fixturesMade[name] = Math.round(performance.now() - started);
  }
}

/** Hands the fixtures made during a test to its meta, once. */
function takeFixtureTimes(task: TestContext['task']): void {
  const names = Object.keys(fixturesMade);
  if (!names.length) return;
  task.meta.fixtureMs = { ...fixturesMade };
  for (const name of names) delete fixturesMade[name];
}

type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

async function settle<T>(work: () => Promise<T>): Promise<Settled<T>> {
  try {
    return { ok: true, value: await work() };
  } catch (error) {
    return { ok: false, error };
  }
}

function unsettle<T>(settled: Settled<T>): T {
  if (settled.ok) return settled.value;
  throw settled.error;
}

/** How the base repo takes in the instance repo, as a person would tell from the tree. */
export async function detectComposition(baseDir: string, submodule: string): Promise<'submodule' | 'input' | undefined> {
  const gitmodules = await readFile(join(baseDir, '.gitmodules'), 'utf8').catch(() => '');
  if (gitmodules.split('\n').some((line) => /^\s*path\s*=/.test(line) && line.split('=')[1]!.trim() === submodule)) return 'submodule';
  const lock = await readFile(join(baseDir, 'flake.lock'), 'utf8').catch(() => undefined);
  if (lock && (JSON.parse(lock) as { nodes?: Record<string, unknown> }).nodes?.instance) return 'input';
  return undefined;
}

/** Asserts that a list of findings is empty, naming every finding in the failure's first line. */
export function expectNone(findings: readonly string[], what: string): void {
  expect(findings, `${what}: ${findings.join('; ')}`).toEqual([]);
}
