/**
 * The lab's machines beside the throwaway, in the project a run uses, as b1's terraform-ci has
 * them: a long-lived stand-in for the running cc-ci (cc-nix-test), converged from the lab's repos
 * by the same runbook a throwaway runs, and an idle stand-in for lichen-staging. Neither carries a
 * throwaway's labels, so no sweep, reaper or guard ever deletes them; the lab marks them with a
 * role label of its own, and only an instance with that label is ever replaced here.
 */
import { waitBooted } from '../../helpers/systemd/index.ts';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HarnessError } from '../../helpers/common/errors.ts';
import { log, timed } from '../../helpers/common/log.ts';
import { Ledger } from '../../helpers/common/ledger.ts';
import { cloneRepo, remoteHead } from '../../helpers/git/index.ts';
import type { IncusClient } from '../../helpers/incus/client.ts';
import { incusChannel } from '../../helpers/incus/channel.ts';
import { currentSystem } from '../../helpers/nix/index.ts';
import { parseRunbook } from '../../helpers/runbook/index.ts';
import { runRunbook } from '../../helpers/runbook/run.ts';
import type { ResolvedTarget } from '../resolve.ts';

/** Which of the lab's own machines an instance is. */
export const LAB_ROLE = 'user.accept.lab-role';
/** `<base repo>@<commit>`: what the production stand-in was converged from. */
export const LAB_BUILT_FROM = 'user.accept.lab-built-from';
/** The toplevel the production stand-in ran when the lab converged it. */
export const LAB_TOPLEVEL = 'user.accept.lab-toplevel';
/** Set by a sabotage before it changes a lab machine: the next run makes that machine afresh. */
export const LAB_SABOTAGED = 'user.accept.lab-sabotaged';

export type LabRole = 'production' | 'neighbour';

export interface LabMachinesNeeds {
  client: IncusClient;
  resolved: ResolvedTarget;
  /** The repos production is converged from: the lab's, or a sabotage's forks. */
  repos: { baseRepo: string; instanceRepo: string };
  /** Devices every production stand-in needs (the lab's git server on its own loopback). */
  devices: Record<string, Record<string, string>>;
  /**
   * What production's faces need beside the instance (the lab: a forge of its own, and a
   * loopback port for its :443): started for each new production, with the devices that reach
   * it and what to record on the instance; `alive` says whether what was started still runs.
   */
  faces: {
    /** Stops what an earlier production's faces left running, before that production is deleted. */
    stop(): Promise<void>;
    start(): Promise<{ devices: Record<string, Record<string, string>>; record: Record<string, string> }>;
    alive(config: Record<string, string>): Promise<boolean>;
  };
  hostGitCredentialsFile?: string;
  /**
   * The lab's own bootstrap age key, which production is converged with: production is the lab's,
   * whatever key a run gives its throwaway (ACCEPT_AGE_KEY_FILE, a wrong one among them).
   */
  ageKeyFile: string;
  /** The lab's generation (its keys and CA): a regenerated lab rebuilds production, its forge too. */
  generation?: string;
}

export interface LabMachinesOutcome {
  production: string;
  /** The production stand-in's instance config: what `faces.start` recorded. */
  config: Record<string, string>;
  toplevel: string;
  /** Why production was (re)built now; undefined when it was reused as it stood. */
  rebuilt?: string;
  neighbours: string[];
}

/** The lab's drift rule: production under the same repos must run what the lab converged it to. */
export class LabProductionDrifted extends HarnessError {}

async function labInstance(client: IncusClient, name: string, role: LabRole) {
  const instance = await client.getInstance(name);
  if (instance && instance.config[LAB_ROLE] !== role) {
    throw new HarnessError(
      `${name} in project ${client.project} exists but is not the lab's ${role} stand-in (no ${LAB_ROLE}=${role} label): the lab never replaces an instance it did not make; remove it or use another project`,
    );
  }
  return instance;
}

/** lichen-staging's size on b1 (the DoD's C6 sum: 4 + 4 + 4 GB). */
const NEIGHBOUR_MEMORY = '4GiB';

async function create(needs: LabMachinesNeeds, name: string, role: LabRole, memory: string, devices: Record<string, Record<string, string>>): Promise<void> {
  const { client, resolved } = needs;
  await client.createInstance({
    name,
    type: 'container',
    source: { type: 'image', alias: resolved.incus.image },
    config: { ...resolved.incus.instanceConfig, [LAB_ROLE]: role, 'limits.memory': memory },
    devices,
    profiles: ['default'],
  });
  await client.start(name);
  await waitBooted(incusChannel(client, name), `systemd on ${name} to finish booting`, { timeoutMs: resolved.durations.boot });
}

/** Converges a new production stand-in from `repos` by the system's own runbook. */
async function buildProduction(needs: LabMachinesNeeds, production: { name: string; memory: string }): Promise<string> {
  const { client, resolved, repos } = needs;
  await using base = await cloneRepo(repos.baseRepo, { setting: 'ACCEPT_BASE_REPO' });
  const { name } = production;
  const existing = await labInstance(client, name, 'production');
  // Its faces first: a forge that watched the old instance would take its own directory, which
  // the new forge reuses, with it when it saw that instance go.
  await needs.faces.stop();
  if (existing) await client.deleteInstance(name);
  const faces = await needs.faces.start();
  await create(needs, name, 'production', production.memory, { ...needs.devices, ...faces.devices });
  await client.patchInstanceConfig(name, faces.record);
  const source = resolved.profile.docs.install;
  const steps = parseRunbook(await readFile(join(base.dir, source), 'utf8'), `${repos.baseRepo} ${source}`);
  const channel = incusChannel(client, name, new Ledger());
  const outcome = await runRunbook(steps, channel, {
    source,
    ageKeyFile: needs.ageKeyFile,
    hostGitCredentialsFile: needs.hostGitCredentialsFile,
    durations: resolved.durations,
  });
  const failed = outcome.steps.find((step) => step.kind === 'sh' && step.exitCode !== 0);
  if (failed)
    throw new HarnessError(
      `the lab's production stand-in ${name} in ${client.project} did not converge: runbook step ${failed.index} exited ${failed.kind === 'sh' ? failed.exitCode : '?'}`,
    );
  const toplevel = await currentSystem(channel);
  // What was cloned, should the repo have moved since its HEAD was read.
  await client.patchInstanceConfig(name, { [LAB_BUILT_FROM]: builtFromOf(repos.baseRepo, base.commit, needs.generation), [LAB_TOPLEVEL]: toplevel });
  return toplevel;
}

/**
 * Production and the neighbours as this run needs them. Production built from other repos (the
 * lab's changed, or a sabotage's forks) is rebuilt. Production that runs something other than
 * what the lab converged it to is an ERROR naming the lab, never a C1 FAIL: a sabotage that
 * drifts it does so after this check, and its clean-up clears the record so the next run rebuilds.
 */
export async function ensureLabMachines(needs: LabMachinesNeeds): Promise<LabMachinesOutcome> {
  const { client, resolved } = needs;
  const production = resolved.machines.production;
  if (!('name' in production)) throw new HarnessError(`the lab has no production stand-in: ${production.unreachable}`);
  const { name } = production;
  // The commit alone decides whether production stands as it should: no clone for a run that reuses it.
  // Asked side by side: a warm run's attach waits for these on every re-run of a session.
  const [head, existing, standingNeighbours] = await Promise.all([
    remoteHead(needs.repos.baseRepo, { setting: 'ACCEPT_BASE_REPO' }),
    labInstance(client, name, 'production'),
    Promise.all(resolved.machines.neighbours.map((neighbour) => labInstance(client, neighbour, 'neighbour'))),
  ]);
  const builtFrom = builtFromOf(needs.repos.baseRepo, head, needs.generation);
  let toplevel: string;
  let rebuilt: string | undefined;
  const facesAlive = existing ? await needs.faces.alive(existing.config) : false;
  const sabotaged = existing?.config[LAB_SABOTAGED];
  if (!existing || sabotaged || existing.config[LAB_BUILT_FROM] !== builtFrom || !existing.config[LAB_TOPLEVEL] || !facesAlive) {
    rebuilt = !existing
      ? `${name} did not exist in ${client.project}`
      : sabotaged
        ? `the sabotage ${sabotaged} changed it`
        : !facesAlive
          ? 'what its faces need beside it (its forge) no longer runs'
          : `it was converged from ${existing.config[LAB_BUILT_FROM] ?? 'nothing recorded'}, and the run's repos are ${builtFrom}`;
    toplevel = await timed(`Converging the lab's production stand-in ${name} in ${client.project} from ${builtFrom} (${rebuilt})`, () =>
      buildProduction(needs, production),
    );
  } else {
    if (existing.status !== 'Running') await client.start(name);
    toplevel = existing.config[LAB_TOPLEVEL]!;
    const record = productionRecord(client, existing);
    // Read once per process while its record stands: a session's re-runs do not read it again.
    const running = confirmedRunning.get(record) ?? (await currentSystem(incusChannel(client, name)));
    if (running === toplevel) confirmedRunning.set(record, running);
    if (running !== toplevel) {
      throw new LabProductionDrifted(
        `the lab's production stand-in ${name} in ${client.project} runs ${running}, but the lab converged it to ${toplevel} from ${builtFrom}, and no sabotage asked for that: the lab itself is off, not cc-ci; ` +
          `delete it (\`incus delete --force ${name} --project ${client.project}\`) and the next run converges it again`,
      );
    }
  }
  for (const [index, neighbour] of resolved.machines.neighbours.entries()) {
    const standing = standingNeighbours[index];
    const changedBy = standing?.config[LAB_SABOTAGED];
    if (standing && !changedBy) continue;
    if (standing) await client.deleteInstance(neighbour);
    const why = changedBy ? `the sabotage ${changedBy} changed it` : 'it did not exist';
    await timed(`Starting the lab's idle neighbour ${neighbour} in ${client.project} (${why})`, () =>
      create(needs, neighbour, 'neighbour', NEIGHBOUR_MEMORY, {}),
    );
  }
  if (rebuilt) log.info(`the lab's production stand-in ${name} in ${client.project} runs ${toplevel}`);
  // Production as it stood when checked, unless it was (re)built just now.
  const config = (rebuilt ? (await client.getInstance(name))?.config : existing?.config) ?? {};
  return { production: name, config, toplevel, rebuilt, neighbours: resolved.machines.neighbours };
}

/**
 * Production's running system as this process last read it, by its instance record. The lab's
 * guard against its own stand-in being off (LabProductionDrifted) runs once per process and
 * again whenever that record changes (a rebuild, a restart, a sabotage's mark): a long-lived
 * session re-attaches before every run, and an exec each time was a third of its attach. A
 * hand-made change to production within a session is for C1 to see, as on a real target.
 */
const confirmedRunning = new Map<string, string>();

function productionRecord(client: IncusClient, instance: { name: string; status: string; last_used_at?: string; config: Record<string, string> }): string {
  return JSON.stringify([client.url, client.project, instance.name, instance.status, instance.last_used_at ?? '', instance.config]);
}

/** What production is converged from: the base repo's commit, and the lab's generation where known. */
function builtFromOf(repo: string, commit: string, generation: string | undefined): string {
  return generation ? `${repo}@${commit} (${generation})` : `${repo}@${commit}`;
}
