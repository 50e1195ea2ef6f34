/**
 * The target layer's front door. `ACCEPT_TARGET` picks a provider; the specs and the CLI get a
 * RunContext, a HostChannel and (where the target has one) an Incus client, and never branch on
 * the kind themselves.
 */
import type { Config } from '../helpers/common/config.ts';
import { ConfigError, HarnessError } from '../helpers/common/errors.ts';
import type { IncusClient } from '../helpers/incus/client.ts';
import type { SshHost } from '../helpers/ssh/index.ts';
import type { HostChannel } from '../helpers/common/host.ts';
import { incusChannel } from '../helpers/incus/channel.ts';
import type { TargetProvider } from './provider.ts';
import { incusProvider } from './providers/incus.ts';
import { labProvider } from './providers/lab.ts';
import { sshProvider } from './providers/ssh.ts';
import { SSH_NEVER_PROVISIONS, openIncus, type ResolvedTarget } from './resolve.ts';
import type { RunContext } from './run-context.ts';
import { openSshHost } from './ssh-host.ts';

export type { CreatedThrowaway, Provisioned, TargetProvider } from './provider.ts';
export type { RunContext, TargetDescription } from './run-context.ts';
export { describeFaced } from './run-context.ts';

/** The provider for ACCEPT_TARGET. `bringUpLab` lets the lab provider run `lab up` first. */
export function providerFor(config: Config, options: { bringUpLab?: boolean } = {}): TargetProvider {
  switch (config.target) {
    case 'lab':
      return labProvider(config, { bringUp: options.bringUpLab ?? false });
    case 'incus':
      return incusProvider(config);
    case 'ssh':
      return sshProvider(config);
  }
}

/** The settings of a target that has an Incus API (sweep, doctor, bench); the ssh target is refused. */
export async function resolveIncusBacked(config: Config, options: { bringUpLab?: boolean } = {}): Promise<ResolvedTarget> {
  if (config.target === 'ssh') throw new ConfigError('ACCEPT_TARGET', SSH_NEVER_PROVISIONS);
  const provider = config.target === 'lab' ? labProvider(config, { bringUp: options.bringUpLab ?? false }) : incusProvider(config);
  return provider.resolve();
}

export type OpenHost = HostChannel & { close(): Promise<void> };

/** The channel specs run commands through: incus exec (lab, incus) or one SSH connection (ssh). */
export async function openHost(run: RunContext): Promise<OpenHost> {
  if (run.target.kind === 'ssh') {
    const host: SshHost = await openSshHost(run.target);
    return host as SshHost & OpenHost;
  }
  const client = await openIncus(run.target);
  return Object.assign(incusChannel(client, run.instance.name), { close: () => client.close() });
}

/** Whether the run's target has an Incus API behind it; C6 needs one. */
export function hasIncusApi(run: RunContext): boolean {
  return run.target.kind !== 'ssh';
}

export const NO_INCUS_API = 'the ssh target has no Incus API: C6 needs ACCEPT_TARGET=incus or lab';

export async function openIncusFor(run: RunContext): Promise<IncusClient> {
  if (run.target.kind === 'ssh') throw new HarnessError('the ssh target has no Incus API: a spec that needs one must skip itself for ACCEPT_TARGET=ssh');
  return openIncus(run.target);
}
