/**
 * Provisioning on an Incus server, shared by the lab and incus providers (and so by cold runs
 * and the bench): sweep, a labelled throwaway watched by a reaper, only the bootstrap key, then
 * the runbook from the base repo's docs/install.md.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage } from '../helpers/common/errors.ts';
import { log } from '../helpers/common/log.ts';
import { readCredentialsFile } from '../helpers/common/credentials.ts';
import { cloneRepo, commitsOf, operatorGitEnv, sharedClone } from '../helpers/git/index.ts';
import type { IncusClient } from '../helpers/incus/client.ts';
import { parseRunbook } from '../helpers/runbook/index.ts';
import { runRunbook } from '../helpers/runbook/run.ts';
import { writeKept } from './kept.ts';
import type { ProvisionOptions, Provisioned } from './provider.ts';
import { openIncus, type ResolvedTarget } from './resolve.ts';
import { runContext, type HostFacts, type TargetDescription } from './run-context.ts';
import { sweep } from './sweep.ts';
import { describeObservations, observeMachines } from './neighbours.ts';
import { startThrowaway, type Throwaway, type ThrowawayHooks } from './throwaway.ts';

/**
 * A target's own steps around provisioning (the lab's: its loopback proxies, its forge, a
 * sabotage); the incus provider passes none. `devices` and `endpoint` shape the throwaway itself.
 */
export interface ProvisionHooks extends ThrowawayHooks {
  /** Before anything is cloned: repos the operator side (and the runbook) read instead. */
  repos?: (throwaway: Throwaway, client: IncusClient) => Promise<{ baseRepo?: string; instanceRepo?: string } | undefined>;
  beforeRunbook?: (throwaway: Throwaway, client: IncusClient) => Promise<void>;
  afterRunbook?: (throwaway: Throwaway, client: IncusClient) => Promise<void>;
  /** Facts of the host that only the target knows: where the harness dials the forge its bridge uses (the lab runs one per throwaway). */
  hostFacts?: (throwaway: Throwaway) => Pick<HostFacts, 'forgeUrl'>;
  /** What the throwaway did with its reach, where the target lets the harness see it (the lab's forge). */
  reach?: () => Promise<string>;
  close?: () => Promise<void>;
}

export async function provisionOnIncus(
  resolved: ResolvedTarget,
  faced: TargetDescription,
  options: ProvisionOptions & { generation?: string; keepOnFailure?: boolean; hostGitCredentialsFile?: string; cloneCacheDir?: string },
  hooks: ProvisionHooks = {},
): Promise<Provisioned> {
  // Both git credentials files are read (and their tokens registered) before anything is created.
  const provisionStarted = performance.now();
  const { hostGitCredentialsFile } = options;
  operatorGitEnv();
  if (hostGitCredentialsFile) readCredentialsFile(hostGitCredentialsFile, 'ACCEPT_HOST_GIT_CREDENTIALS_FILE');
  const client = await openIncus(resolved);
  let throwaway: Throwaway | undefined;
  const close = async () => {
    await hooks.close?.().catch((error: unknown) => log.warn(`could not undo the lab's changes: ${errorMessage(error)}`));
    await client.close();
  };
  try {
    const swept = await sweep(client);
    if (swept.deleted.length) log.info(`swept ${swept.deleted.length} expired throwaway(s): ${swept.deleted.join(', ')}`);
    // C6: what the run must leave alone, before it creates anything.
    const observeStarted = performance.now();
    const machinesBefore = await observeMachines(client, resolved.machines);
    const machinesMs = Math.round((options.machinesReadyMs ?? 0) + performance.now() - observeStarted);
    if (machinesBefore.length) log.info(`before the run: ${describeObservations(machinesBefore)}`);
    throwaway = await startThrowaway(
      client,
      resolved,
      { runId: options.runId, ttlMs: options.ttlMs ?? 7_200_000, ledger: options.ledger, logDir: options.logDir },
      { devices: hooks.devices, endpoint: hooks.endpoint },
    );
    options.onCreated?.(throwaway);
    const repos = { baseRepo: resolved.baseRepo, instanceRepo: resolved.instanceRepo, ...(await hooks.repos?.(throwaway, client)) };
    await hooks.beforeRunbook?.(throwaway, client);
    // The clone the run's specs read too (sharedClone): one clone of the base repo per commit, not one per reader.
    await using base = options.cloneCacheDir
      ? await sharedClone(repos.baseRepo, { setting: 'ACCEPT_BASE_REPO', cacheDir: options.cloneCacheDir })
      : await cloneRepo(repos.baseRepo, { setting: 'ACCEPT_BASE_REPO' });
    // The runbook is the system's own install document, as its profile names it.
    const source = resolved.profile.docs.install;
    const steps = parseRunbook(await readFile(join(base.dir, source), 'utf8'), `${repos.baseRepo} ${source}`);
    // Read from this clone now, for the run record: no reader after this one clones the base repo for it.
    const commits = await commitsOf(base, { repo: repos.instanceRepo, submodule: resolved.profile.instance.submodule }, 'when provisioning cloned it').catch(
      (error: unknown) => ({ how: `not resolved: ${errorMessage(error).split('\n')[0]}` }),
    );
    const runbookStarted = performance.now();
    const runbook = await runRunbook(steps, throwaway.host, { source, ageKeyFile: resolved.ageKeyFile, hostGitCredentialsFile, durations: resolved.durations });
    const runbookMs = performance.now() - runbookStarted;
    await hooks.afterRunbook?.(throwaway, client);
    const started = throwaway;
    // After the switch: the system's configuration may have given the machine another address.
    const https = await started.readdress();
    if (https.host !== started.https.host || https.port !== started.https.port)
      log.info(`${started.name} is at ${https.host}:${https.port} after the runbook (it was at ${started.https.host}:${started.https.port})`);
    const provisioning = {
      totalMs: Math.round(performance.now() - provisionStarted + (options.machinesReadyMs ?? 0)),
      ...started.timings,
      runbookMs: Math.round(runbookMs),
      machinesMs,
    };
    const host = {
      name: started.name,
      project: started.project,
      createdAt: started.createdAt,
      expiresAt: started.expiresAt,
      https,
      ...hooks.hostFacts?.(started),
      runbook,
      provisioning,
      commits,
      machinesBefore,
      ledger: options.ledger.entries,
    };
    const context = runContext({
      runId: options.runId,
      mode: options.mode,
      access: { kind: resolved.kind, incus: resolved.incus, socks: resolved.socks },
      faced,
      system: { ...systemOf(resolved), ...repos },
      host,
    });
    let closed = false;
    const provisioned: Provisioned = {
      context,
      client,
      stop: () => started.stop(),
      keep: () => started.keep(),
      reach: async () => hooks.reach?.(),
      stopNowSync: () => started.stopNowSync(),
      recordKept: (stateDir) =>
        writeKept(stateDir, {
          runId: options.runId,
          target: resolved.kind,
          server: resolved.incus.url,
          generation: options.generation,
          host: { ...withoutMachinesBefore(host), ledger: [...options.ledger.entries] },
        }),
      async close() {
        if (closed) return;
        closed = true;
        await close();
      },
      async [Symbol.asyncDispose]() {
        await provisioned.stop();
        await provisioned.close();
      },
    };
    return provisioned;
  } catch (error) {
    if (throwaway && options.keepOnFailure) {
      throwaway.keep();
      log.warn(
        `provisioning failed; keeping ${throwaway.name} for debugging until ${throwaway.expiresAt} (ACCEPT_KEEP): \`accept sweep\` removes it once expired`,
      );
      await close();
      throw error;
    }
    await throwaway
      ?.stop()
      .catch((stopError: unknown) => log.warn(`could not delete ${throwaway!.name} after a failed provisioning: ${errorMessage(stopError)}`));
    await close();
    throw error;
  }
}

/** A warm run observes the machines as they are: the cold run's before-picture is not a kept fact. */
function withoutMachinesBefore<T extends { machinesBefore?: unknown }>(host: T): Omit<T, 'machinesBefore'> {
  const { machinesBefore: _before, ...rest } = host;
  return rest;
}

export function systemOf(
  resolved: Pick<
    ResolvedTarget,
    'domain' | 'tlsCaFile' | 'ageKeyFile' | 'baseRepo' | 'instanceRepo' | 'nixConfig' | 'durations' | 'forgeWrites' | 'profile' | 'machines' | 'rebootCheck'
  >,
) {
  return {
    domain: resolved.domain,
    tlsCaFile: resolved.tlsCaFile,
    ageKeyFile: resolved.ageKeyFile,
    baseRepo: resolved.baseRepo,
    instanceRepo: resolved.instanceRepo,
    nixConfig: resolved.nixConfig,
    durations: resolved.durations,
    forgeWrites: resolved.forgeWrites,
    profile: resolved.profile,
    machines: resolved.machines,
    rebootCheck: resolved.rebootCheck,
  };
}
