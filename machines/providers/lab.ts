/**
 * The embedded lab as a target: a local incusd with stand-ins for what cannot be real here. The
 * only module of the harness outside lab/ (besides the CLI's lab command and the harness's own
 * tests of the lab) that imports the lab, and it re-exports none of it. It fills every unset
 * setting from the lab, gives the shared provisioning its hooks (loopback proxies, the run's
 * forge), and applies a sabotage (ACCEPT_LAB_SABOTAGE) around provisioning.
 */
import { durationsFor, parseDurations, type Config, type DurationName, type Durations } from '../../helpers/common/config.ts';
import { ConfigError, errorMessage } from '../../helpers/common/errors.ts';
import { log, timed } from '../../helpers/common/log.ts';
import { OFFLINE_NIX_CONFIG } from '../../helpers/nix/index.ts';
import { imageExecPath } from '../../lab/image.ts';
import { ccciProfile, type SystemProfile } from '../system-profile.ts';
import { labGeneration, labIsUp, labSettings, labUp } from '../../lab/index.ts';
import { SABOTAGES, cleanUpSabotage, describeSabotage, parseSabotage, type SabotageContext } from '../../lab/sabotage.ts';
import { incusChannel } from '../../helpers/incus/channel.ts';
import type { HostChannel } from '../../helpers/common/host.ts';
import type { IncusClient } from '../../helpers/incus/client.ts';
import type { Provisioned, TargetProvider } from '../provider.ts';
import { provisionOnIncus, type ProvisionHooks } from '../provision.ts';
import type { ResolvedTarget } from '../resolve.ts';
import type { Throwaway, ThrowawayHooks } from '../throwaway.ts';
import type { TargetDescription } from '../run-context.ts';
import { attachKept, attachProductionAlone } from './incus.ts';
import { ensureLabMachines, LAB_SABOTAGED } from './lab-machines.ts';
import { openIncus } from '../resolve.ts';
import { join } from 'node:path';
import { withPidLock } from '../../lab/lock.ts';
import { LAB_NEIGHBOUR, LAB_PRODUCTION, labPaths as labStatePaths } from '../../lab/state.ts';
import { LAB_SYSTEM_NAMES } from '../../lab/repos.ts';
import { FORGE_PORT_IN_INSTANCE, machineWrites, runForgePid, startRunForge, stopRunForge, type MachineWrites, type RunForge } from '../../lab/forge.ts';
import { freePort, type Endpoint } from '../../helpers/common/dial.ts';
import { instanceName } from '../labels.ts';
import { cloneCacheDir } from '../../helpers/git/index.ts';

/** Where the lab is kinder than b1 about the throwaway's reach, said in every lab run's evidence. */
export const LAB_THROWAWAY_REACH =
  "the throwaway's bridge polls a forge of its own, not production's: on b1, built from production's instance repo, it would poll and comment on production's pull requests; what it wrote to its own is counted, and shown after teardown";

/** What the lab cannot make real, said in every report of a lab run. */
export const LAB_STAND_INS = [
  'an Incus container, not a VM',
  'Debian with Nix and systemd, not NixOS',
  'nginx, not Traefik',
  'no Docker Swarm',
  'stand-in forge (Python, one per machine, on the lab host outside it)',
  'stand-in Drone and bridge (Python)',
];

/**
 * The lab's own durations, where the user set none: a container on this machine boots in
 * seconds, its rebuild and a stand-in build take well under a minute (measured: a cold run of
 * every spec takes about a minute). Generous against that, so a busy machine does not flake.
 */
export const LAB_DURATIONS: Record<DurationName, string> = {
  boot: '2m',
  rebuild: '5m',
  converge: '1m',
  buildStart: '1m',
  buildFinish: '5m',
  check: '2m',
};

/** What ACCEPT_LAB_SLOW slows down: the rebuild (switch-to-configuration) and each recipe build (its first step). */
const SLOWED: DurationName[] = ['rebuild', 'buildFinish'];

/** The lab's durations: the user's where set; else the lab's own, plus ACCEPT_LAB_SLOW for what it slows. */
export function labDurations(config: Pick<Config, 'durations'> & { lab: Pick<Config['lab'], 'slowMs'> }): Durations {
  const lab = parseDurations(LAB_DURATIONS, 'the lab');
  for (const name of SLOWED) lab[name] += config.lab.slowMs ?? 0;
  return durationsFor(config.durations, lab);
}

/** Where the lab's throwaway reads ACCEPT_LAB_SLOW, in whole seconds (lab/base's switch-to-configuration and Drone). */
export const LAB_SLOW_FILE = '/etc/accept-lab/slow-seconds';

/**
 * The lab's resolved target: the generic settings, and the port of the lab host's git server,
 * which every lab instance reaches on its own loopback (a proxy device the lab adds).
 */
export interface LabTarget extends ResolvedTarget {
  gitPort: number;
}

/** The lab's settings, each overridden by the user's where set, so one lab piece can be swapped for a real one. */
export function resolveLabTarget(config: Config): LabTarget {
  const lab = labSettings(config.lab.dir);
  return {
    kind: 'lab',
    incus: {
      url: config.incus.url ?? lab.incusUrl,
      clientCertFile: config.incus.clientCertFile ?? lab.clientCertFile,
      clientKeyFile: config.incus.clientKeyFile ?? lab.clientKeyFile,
      serverCertFile: config.incus.serverFingerprint ? config.incus.serverCertFile : (config.incus.serverCertFile ?? lab.serverCertFile),
      serverFingerprint: config.incus.serverFingerprint,
      project: config.incus.project,
      image: config.incus.image ?? lab.image,
      instanceType: 'container',
      memory: config.incus.memory,
      certDir: config.incus.certDir,
      // Always a container reached by loopback proxies: the VM's profiles, disk and address do not apply.
      profiles: ['default'],
      // What a NixOS VM's agent gives exec: a PATH where only sh and env are found (the lab's
      // host holds a link of the same path for LXC's hooks: lab/image.ts ensureHostExecPathLink).
      instanceConfig: { ...(config.incus.instanceConfig ?? {}), 'environment.PATH': imageExecPath().dir },
      address: { family: 'inet' },
    },
    ramGuidelineBytes: config.ramGuidelineBytes,
    socks: config.socks ?? lab.socks,
    ageKeyFile: config.ageKeyFile ?? lab.ageKeyFile,
    baseRepo: config.baseRepo ?? lab.baseRepo,
    instanceRepo: config.instanceRepo ?? lab.instanceRepo,
    domain: config.domain ?? lab.domain,
    tlsCaFile: config.tlsCaFile ?? lab.tlsCaFile,
    gitPort: lab.gitPort,
    nixConfig: OFFLINE_NIX_CONFIG,
    durations: labDurations(config),
    // The lab's forge is its own stand-in: every repo on it was generated, and nobody else reads it.
    forgeWrites: { kind: 'stand-in' },
    // The lab generates its repos and stand-ins to cc-ci's names; where it must differ, it says so here.
    profile: labProfile(config),
    rebootCheck: config.rebootCheck,
    // b1's terraform-ci, as the lab keeps it in each project a run uses (lab-machines.ts).
    machines: {
      production: { name: config.production ?? LAB_PRODUCTION, via: 'incus', memory: config.productionMemory },
      neighbours: config.neighbours.length > 0 ? config.neighbours : [LAB_NEIGHBOUR],
    },
  };
}

/** What the lab records on its production stand-in: where the harness reaches its :443 and its forge. */
const LAB_PRODUCTION_HTTPS = 'user.accept.lab-https';
const LAB_PRODUCTION_FORGE = 'user.accept.lab-forge-url';

/**
 * The lab's production stand-in and neighbours in the run's project, converged from `repos`,
 * and the resolved target with production's faces filled in: its :443 on a loopback port, and a
 * forge of its own on the lab host, as the recipes' forge is outside cc-ci. Concurrent runs in
 * one project (a plain `npm run accept` beside a warm run) take turns.
 */
async function ensureMachines(
  config: Config,
  resolved: LabTarget,
  repos: { baseRepo: string; instanceRepo: string },
  afterwards?: (production: HostChannel, markChanged: (machine: string, by: string) => Promise<void>) => Promise<void>,
): Promise<LabTarget> {
  const production = resolved.machines.production;
  if (!('name' in production)) return resolved;
  const project = resolved.incus.project;
  const forgeKey = `${project}-${production.name}`;
  const generation = await labGeneration(config.lab.dir);
  const client = await openIncus(resolved, { shared: true });
  try {
    const lock = join(labStatePaths(config.lab.dir).dir, `machines-${project}.lock`);
    const outcome = await withPidLock(lock, { what: `another run converging the lab's machines in ${project}` }, () =>
      ensureLabMachines({
        client,
        resolved,
        repos,
        devices: gitDevice(resolved.gitPort),
        faces: {
          // A rebuilt production gets a forge of its own again: the old one would serve a stale instance.
          stop: () => stopRunForge(config.lab.dir, forgeKey),
          async start() {
            const forge = await startRunForge(config.lab.dir, { instance: production.name, project, key: forgeKey });
            const httpsPort = await freePort();
            return {
              devices: {
                'accept-https': { type: 'proxy', listen: `tcp:127.0.0.1:${httpsPort}`, connect: 'tcp:127.0.0.1:443' },
                'accept-forge': {
                  type: 'proxy',
                  bind: 'instance',
                  listen: `tcp:127.0.0.1:${FORGE_PORT_IN_INSTANCE}`,
                  connect: `tcp:127.0.0.1:${forge.httpPort}`,
                },
              },
              record: { [LAB_PRODUCTION_HTTPS]: `127.0.0.1:${httpsPort}`, [LAB_PRODUCTION_FORGE]: forge.url },
            };
          },
          alive: async (recorded) => Boolean(recorded[LAB_PRODUCTION_HTTPS] && recorded[LAB_PRODUCTION_FORGE] && (await runForgePid(config.lab.dir, forgeKey))),
        },
        hostGitCredentialsFile: config.hostGitCredentialsFile,
        ageKeyFile: labStatePaths(config.lab.dir).bootstrapKey,
        generation,
      }),
    );
    if (afterwards) await afterwards(incusChannel(client, production.name), (machine, by) => markSabotaged(client, machine, by));
    const [host, port] = outcome.config[LAB_PRODUCTION_HTTPS]!.split(':');
    return {
      ...resolved,
      machines: {
        ...resolved.machines,
        production: { ...production, https: { host: host!, port: Number(port) }, forgeUrl: outcome.config[LAB_PRODUCTION_FORGE]! },
      },
    };
  } finally {
    await client.close();
  }
}

/** The throwaway's own writes to the forge it polls, by login and route (the forge counts its plain port's). */
export function describeMachineWrites(name: string, writes: MachineWrites | undefined): string {
  if (!writes) return `what ${name} wrote to the forge it polls could not be read: that forge had already stopped`;
  const byLogin = Object.entries(writes).map(([login, routes]) => {
    const total = Object.values(routes).reduce((sum, count) => sum + count, 0);
    return `${total} as ${login} (${Object.entries(routes)
      .map(([route, count]) => `${route} ${count}`)
      .join(', ')})`;
  });
  const where = "to the lab's forge of this run, which only it polls: production's pull requests were not written to";
  return byLogin.length ? `${name} wrote ${byLogin.join('; ')} ${where}` : `${name} wrote nothing ${where}`;
}

/**
 * The teardown of a sabotage that leaks the throwaway (`leakThrowaway`): stop() lets it be (the
 * reaper stands down), so the cleanup check finds it still there; close() deletes it after all.
 */
export function leavingOnStop(provisioned: Provisioned): Provisioned {
  let closed = false;
  const leaving: Provisioned = {
    ...provisioned,
    async stop() {
      provisioned.keep();
      return { destroyedAt: new Date().toISOString() };
    },
    async close() {
      if (closed) return;
      closed = true;
      await provisioned.stop().catch((error: unknown) => log.warn(`could not delete ${provisioned.context.instance.name}: ${errorMessage(error)}`));
      await provisioned.close();
    },
    async [Symbol.asyncDispose]() {
      await leaving.stop();
      await leaving.close();
    },
  };
  return leaving;
}

/** A sabotage marks a lab machine before it changes it: the next run makes that machine afresh. */
async function markSabotaged(client: Pick<IncusClient, 'patchInstanceConfig'>, machine: string, by: string): Promise<void> {
  await client.patchInstanceConfig(machine, { [LAB_SABOTAGED]: by });
}

/** cc-ci's names, but for the browser engine: the lab image has Debian's Chromium under Selenium, not Playwright. */
function labProfile(config: Config): SystemProfile {
  // The lab's generated repos carry its own names; what the operator set for a real target does not apply here.
  const ccci = ccciProfile(LAB_SYSTEM_NAMES, config.layout);
  return {
    ...ccci,
    name: "lab (generated to cc-ci's names where the seed gives them; browser tests on Chromium through Selenium, not Playwright)",
    // Where the lab's generated repos differ from the seed's layout: said here, never a default elsewhere.
    docs: { ...ccci.docs, architecture: 'docs/architecture.md' },
    instance: { secretsFile: 'secrets.yaml', submodule: 'secrets' },
    build: { ...ccci.build, browserEngine: { pattern: '^chromium \\d', name: "a real Chromium (Debian's chromium through chromium-driver and Selenium)" } },
  };
}

/** The lab host's git server, which a lab instance reaches on its own loopback. */
function gitDevice(gitPort: number): Record<string, Record<string, string>> {
  return { 'accept-git': { type: 'proxy', bind: 'instance', listen: `tcp:127.0.0.1:${gitPort}`, connect: `tcp:127.0.0.1:${gitPort}` } };
}

/**
 * How the lab reaches a throwaway: loopback proxies for its :443 and :22 on free ports of the lab
 * host, and, on the throwaway's own loopback, the lab's git server and the run's forge. The
 * endpoint is the loopback proxy's, which the runbook does not move.
 */
export function labThrowawayHooks(gitPort: number, forgeHttpPort: number): Required<ThrowawayHooks> {
  let https: Endpoint | undefined;
  return {
    async devices() {
      const httpsPort = await freePort();
      const sshPort = await freePort();
      https = { host: '127.0.0.1', port: httpsPort };
      return {
        'accept-https': { type: 'proxy', listen: `tcp:127.0.0.1:${httpsPort}`, connect: 'tcp:127.0.0.1:443' },
        'accept-ssh': { type: 'proxy', listen: `tcp:127.0.0.1:${sshPort}`, connect: 'tcp:127.0.0.1:22' },
        ...gitDevice(gitPort),
        // The run's forge, which the throwaway's bridge reaches at its own 127.0.0.1:FORGE_PORT_IN_INSTANCE.
        'accept-forge': { type: 'proxy', bind: 'instance', listen: `tcp:127.0.0.1:${FORGE_PORT_IN_INSTANCE}`, connect: `tcp:127.0.0.1:${forgeHttpPort}` },
      };
    },
    async endpoint(instance) {
      if (!https) throw new Error(`the lab gave ${instance} no loopback proxy: its devices were never made`);
      return https;
    },
  };
}

/**
 * The run's forge stops with its throwaway: now, unless the throwaway is still there (kept, by
 * ACCEPT_KEEP or for debugging), when the forge stops by itself once it is gone.
 */
async function stopUnlessKept(forge: RunForge, name: string, client: IncusClient | undefined): Promise<void> {
  const stillThere = client ? await client.getInstance(name).catch(() => undefined) : undefined;
  if (!stillThere) await forge.stop().catch((error: unknown) => log.warn(`could not stop the forge of ${name}: ${(error as Error).message}`));
}

/**
 * The running cc-ci's pace is this run's too: slowed as the throwaway is (its builds take that much
 * longer), or back to the lab's own pace when this run sets no ACCEPT_LAB_SLOW.
 */
async function paceProduction(production: HostChannel, slowMs: number | undefined): Promise<void> {
  if (slowMs) await writeLabSlow(production, slowMs);
  else await production.succeed(`rm -f ${LAB_SLOW_FILE}`, { purpose: 'ACCEPT_LAB_SLOW unset' });
}

async function writeLabSlow(host: HostChannel, slowMs: number): Promise<void> {
  await host.pushFile(LAB_SLOW_FILE, Buffer.from(`${Math.ceil(slowMs / 1000)}\n`), { mode: 0o644, purpose: 'ACCEPT_LAB_SLOW', secret: false });
}

async function requireLabUp(config: Config): Promise<void> {
  if (!(await labIsUp(config.lab.dir))) throw new ConfigError('ACCEPT_LAB_DIR', `no lab is up in ${config.lab.dir}: run \`npm run lab -- up\` first`);
}

export function labProvider(config: Config, options: { bringUp: boolean }): TargetProvider & { resolve(): Promise<ResolvedTarget> } {
  const sabotage = parseSabotage(config.lab.sabotage);
  const resolve = async () => {
    if (options.bringUp) await timed(`Bringing the embedded lab up (${config.lab.dir}), where needed`, () => labUp(config.lab.dir, config.lab.layout));
    else await requireLabUp(config);
    return resolveLabTarget(config);
  };
  const describe = (): TargetDescription => {
    const lab = resolveLabTarget(config);
    return {
      kind: 'lab',
      server: lab.incus.url,
      instanceType: 'container',
      standIns: LAB_STAND_INS,
      notes: [LAB_THROWAWAY_REACH, ...(sabotage ? [describeSabotage(sabotage)] : [])],
    };
  };
  return {
    kind: 'lab',
    describe,
    resolve,
    async provision(provisionOptions) {
      const resolved = await resolve();
      const generation = await labGeneration(config.lab.dir);
      const slow = config.lab.slowMs;
      // Through the files API and no ledger: the lab's pace is not a provisioning step.
      const slowDown = slow ? (throwaway: Throwaway, client: IncusClient) => writeLabSlow(incusChannel(client, throwaway.name), slow) : undefined;
      if (slow) log.warn(`ACCEPT_LAB_SLOW=${Math.round(slow / 1000)}s: the lab's rebuild and each recipe build take that much longer`);
      let hooks: ProvisionHooks = { beforeRunbook: slowDown };
      const labRepos = { baseRepo: resolved.baseRepo, instanceRepo: resolved.instanceRepo };
      const entry = sabotage ? SABOTAGES[sabotage]! : undefined;
      const productionName = 'name' in resolved.machines.production ? resolved.machines.production.name : LAB_PRODUCTION;
      const contextOf = (throwaway: { name: string; host: SabotageContext['recordedHost'] }, client: Parameters<typeof incusChannel>[0]): SabotageContext => ({
        labDir: config.lab.dir,
        domain: resolved.domain,
        gitUrl: new URL(resolved.baseRepo).origin,
        project: resolved.incus.project,
        host: incusChannel(client, throwaway.name),
        recordedHost: throwaway.host,
        production: incusChannel(client, productionName),
        markChanged: (machine) => markSabotaged(client, machine, sabotage!),
      });
      // A fork the machine runs is the system's git for this row: production runs it too, or
      // C1's zero drift would fail every such row for a reason that is not the sabotage's.
      const forks = entry?.baseFork?.machineRuns
        ? await entry.forkRepos!({
            labDir: config.lab.dir,
            domain: resolved.domain,
            gitUrl: new URL(resolved.baseRepo).origin,
            project: resolved.incus.project,
          } as SabotageContext)
        : undefined;
      const beforeRun = entry?.beforeRun;
      const machinesStarted = performance.now();
      const ready = await ensureMachines(config, resolved, { ...labRepos, ...forks }, async (production, markChanged) => {
        await paceProduction(production, slow);
        await beforeRun?.({ labDir: config.lab.dir, project: resolved.incus.project, production, markChanged: (machine) => markChanged(machine, sabotage!) });
      });
      const machinesReadyMs = performance.now() - machinesStarted;
      if (sabotage && entry) {
        log.warn(describeSabotage(sabotage));
        hooks = {
          repos: async (throwaway, client) => forks ?? entry.forkRepos?.(contextOf(throwaway, client)),
          beforeRunbook: async (throwaway, client) => {
            await slowDown?.(throwaway, client);
            await entry.beforeRunbook?.(contextOf(throwaway, client));
          },
          afterRunbook: async (throwaway, client) => entry.afterRunbook?.(contextOf(throwaway, client)),
          close: () => cleanUpSabotage(config.lab.dir, sabotage, resolved.incus.project),
        };
      }
      // The run's forge, outside the throwaway: its bridge reaches it on its own loopback.
      const name = instanceName(provisionOptions.runId);
      const forge = await startRunForge(config.lab.dir, { instance: name, project: resolved.incus.project });
      log.info(`the forge of ${name} runs on the lab host at ${forge.url} (the throwaway reaches it at 127.0.0.1:${FORGE_PORT_IN_INSTANCE})`);
      const withReboot: ResolvedTarget = { ...ready, rebootCheck: ready.rebootCheck || Boolean(entry?.rebootCheck) };
      const client = { current: undefined as IncusClient | undefined };
      const remember = (inner?: (throwaway: Throwaway, client: IncusClient) => Promise<void>) => async (throwaway: Throwaway, incus: IncusClient) => {
        client.current = incus;
        await inner?.(throwaway, incus);
      };
      const withForgeHooks: ProvisionHooks = {
        ...hooks,
        ...labThrowawayHooks(resolved.gitPort, forge.httpPort),
        hostFacts: () => ({ forgeUrl: forge.url }),
        beforeRunbook: remember(hooks.beforeRunbook),
        reach: async () => describeMachineWrites(name, await machineWrites(config.lab.dir, name)),
        close: async () => {
          await hooks.close?.();
          await stopUnlessKept(forge, name, client.current);
        },
      };
      try {
        const provisioned = await provisionOnIncus(
          withReboot,
          describe(),
          {
            ...provisionOptions,
            machinesReadyMs,
            ttlMs: provisionOptions.ttlMs ?? config.ttlMs,
            generation,
            hostGitCredentialsFile: config.hostGitCredentialsFile,
            cloneCacheDir: cloneCacheDir(config.stateDir),
          },
          withForgeHooks,
        );
        return entry?.leakThrowaway ? leavingOnStop(provisioned) : provisioned;
      } catch (error) {
        await stopUnlessKept(forge, name, client.current);
        throw error;
      }
    },
    async attach() {
      await requireLabUp(config);
      const resolved = resolveLabTarget(config);
      // The kept record first: a stale one is its own ERROR, named before anything is dialled.
      const context = await attachKept(config, resolved, describe(), await labGeneration(config.lab.dir));
      // The running cc-ci of the kept host's project (the one its cold run checked), or of ACCEPT_INCUS_PROJECT.
      const inProject: LabTarget = context ? { ...resolved, incus: { ...resolved.incus, project: context.instance.project } } : resolved;
      const ready = await ensureMachines(config, inProject, { baseRepo: resolved.baseRepo, instanceRepo: resolved.instanceRepo });
      if (!context) return attachProductionAlone(config, ready, describe());
      return { ...context, machines: ready.machines };
    },
  };
}
