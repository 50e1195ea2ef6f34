/**
 * The throwaway VM, as a started handle: created blank, labelled, watched by a reaper, and
 * deleted by an idempotent stop() (also `await using`).
 */
import { waitBooted } from '../helpers/systemd/index.ts';
import { HarnessError, errorMessage } from '../helpers/common/errors.ts';
import type { Ledger } from '../helpers/common/ledger.ts';
import { log, timed } from '../helpers/common/log.ts';
import { waitFor } from '../helpers/common/wait.ts';
import type { IncusClient } from '../helpers/incus/client.ts';
import { checkMemoryFits, deleteOwnInstance, gib } from './guard.ts';
import type { HostChannel } from '../helpers/common/host.ts';
import { incusChannel } from '../helpers/incus/channel.ts';
import { instanceName, labelsFor } from './labels.ts';
import { startReaper } from './reaper.ts';
import type { ResolvedTarget } from './resolve.ts';
import { pickAddress, requireProfiles, rootDiskOverride, type AddressChoice } from './vm-spec.ts';

import type { Endpoint } from '../helpers/common/dial.ts';

export interface Throwaway extends AsyncDisposable {
  name: string;
  project: string;
  runId: string;
  createdAt: string;
  expiresAt: string;
  https: Endpoint;
  host: HostChannel;
  /**
   * Where its :443 is dialled now: read again from the instance's state after the runbook, since
   * the system's configuration may give the machine another address (a static one); where the
   * target gives the endpoint (ThrowawayHooks.endpoint), it is asked again.
   */
  readdress(): Promise<Endpoint>;
  /** How long Incus took to create and start it, and how long it took to boot (systemd running). */
  timings: { createMs: number; bootMs: number };
  /** Deletes the instance; safe to call many times. */
  stop(): Promise<{ destroyedAt: string }>;
  /** Lets the instance outlive this process (ACCEPT_KEEP): the reaper stands down; the sweeper still removes it once expired. */
  keep(): void;
  /** Deletes the instance before returning, blocking: for signal handlers (see Reaper.deleteNowSync). */
  stopNowSync(): boolean;
}

/**
 * How a target reaches its throwaways where the instance's address is not the way (the lab: loopback
 * proxies). The incus provider passes none: its throwaway is dialled at the instance's address.
 */
export interface ThrowawayHooks {
  /** Extra Incus devices at creation, asked for before the reaper starts and the instance is created. */
  devices?: (instance: string) => Promise<Record<string, Record<string, string>>>;
  /**
   * Where the harness dials the throwaway's :443 (its :22 beside it): asked once it has booted,
   * and again after the runbook. Unset: the instance's address, read from its state.
   */
  endpoint?: (instance: string) => Promise<Endpoint>;
}

/** The throwaway's instance config at creation: this run's labels and the memory limit, nothing else. */
export function throwawayConfig(target: ResolvedTarget, runId: string, expires: Date): Record<string, string> {
  return { ...target.incus.instanceConfig, ...labelsFor(runId, expires), 'limits.memory': target.incus.memory };
}

export async function startThrowaway(
  client: IncusClient,
  target: ResolvedTarget,
  options: { runId: string; ttlMs: number; ledger: Ledger; logDir: string; ramGuidelineBytes?: number },
  hooks: ThrowawayHooks = {},
): Promise<Throwaway> {
  const name = instanceName(options.runId);
  const expires = new Date(Date.now() + options.ttlMs);
  if (await client.getInstance(name)) throw new HarnessError(`an instance named ${name} already exists in project ${target.incus.project}`);
  // Before the reaper and the create: a refusal leaves nothing behind.
  const fit = await checkMemoryFits(client, {
    instance: name,
    memory: target.incus.memory,
    guidelineBytes: options.ramGuidelineBytes ?? target.ramGuidelineBytes,
  });
  log.info(`memory: ${gib(fit.totalBytes)} of the ${gib(fit.guidelineBytes)} guideline with ${name}; the server has ${gib(fit.physicalBytes)}`);
  const profiles = requireProfiles(
    target.incus.profiles,
    await Promise.all(target.incus.profiles.map((profile) => client.getProfile(profile))),
    target.incus.project,
  );
  const rootDisk = target.incus.rootSize ? rootDiskOverride(profiles, target.incus.rootSize) : {};

  const devices = await hooks.devices?.(name);
  // The reaper starts first, so that even a kill during creation cannot leak the instance.
  const reaper = startReaper({ parentPid: process.pid, instance: name, runId: options.runId, target }, options.logDir);
  let stopping: Promise<{ destroyedAt: string }> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      // Only with our labels for this run: never someone else's instance of the same name.
      await timed(`Deleting throwaway ${name}`, () => deleteOwnInstance(client, name, options.runId));
      reaper.release();
      return { destroyedAt: new Date().toISOString() };
    })();
    return stopping;
  };

  try {
    const createStarted = performance.now();
    await timed(`Creating throwaway ${name} from ${target.incus.image}`, async () => {
      await client.createInstance({
        name,
        type: target.incus.instanceType,
        source: { type: 'image', alias: target.incus.image },
        config: throwawayConfig(target, options.runId, expires),
        devices: { ...rootDisk, ...devices },
        profiles: target.incus.profiles,
      });
      await client.start(name);
    });
    const createdAt = new Date().toISOString();
    const bootStarted = performance.now();
    const createMs = bootStarted - createStarted;
    const host = incusChannel(client, name, options.ledger);
    // Not recorded: booting is not a provisioning step. Through a channel all the same, for its PATH.
    const unrecorded = incusChannel(client, name);
    await timed(`Waiting for ${name} to boot`, () => waitBooted(unrecorded, `systemd on ${name} to finish booting`, { timeoutMs: target.durations.boot }));
    const bootMs = performance.now() - bootStarted;
    const endpoint = () => hooks.endpoint?.(name) ?? instanceEndpoint(client, name, target);
    const https = await endpoint();
    log.info(`throwaway ${name}: https on ${https.host}:${https.port}, expires ${expires.toISOString()}`);
    return {
      name,
      project: target.incus.project,
      runId: options.runId,
      createdAt,
      expiresAt: expires.toISOString(),
      https,
      host,
      readdress: endpoint,
      timings: { createMs: Math.round(createMs), bootMs: Math.round(bootMs) },
      stop,
      keep: () => reaper.release(),
      stopNowSync: () => reaper.deleteNowSync(),
      [Symbol.asyncDispose]: async () => {
        await stop();
      },
    };
  } catch (error) {
    await stop().catch((stopError) => log.warn(`could not delete ${name} after a failed start: ${errorMessage(stopError)}`));
    throw error;
  }
}

/** The instance's :443 at its address: how a throwaway is dialled unless its target says otherwise. */
async function instanceEndpoint(client: IncusClient, name: string, target: ResolvedTarget): Promise<Endpoint> {
  return { host: await instanceAddress(client, name, target.incus.address, target.durations.boot), port: 443 };
}

/** From the instance's state, not a command in the guest: a NixOS VM's exec PATH has no `hostname`. */
async function instanceAddress(client: IncusClient, name: string, choice: AddressChoice, timeoutMs: number): Promise<string> {
  return waitFor<string>(
    `${name} to get ${choice.family === 'inet' ? 'an IPv4' : 'an IPv6'} address${choice.nic ? ` on ${choice.nic} (ACCEPT_INCUS_NIC)` : ''} (ACCEPT_BOOT_TIMEOUT)`,
    async () => {
      const picked = pickAddress((await client.instanceState(name)).network, choice);
      return picked.address ?? { done: false, saw: picked.saw };
    },
    { timeoutMs, intervalMs: 1000 },
  );
}
