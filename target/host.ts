/**
 * The channel and the Incus client a spec worker needs, without the providers: a spec imports
 * this, not target/index.ts, so that its worker never loads the lab, provisioning or (unless the
 * target is ssh) the SSH client.
 */
import { HarnessError } from '../helpers/common/errors.ts';
import type { HostChannel } from '../helpers/common/host.ts';
import type { IncusClient } from '../helpers/incus/client.ts';
import { incusChannel } from '../helpers/incus/channel.ts';
import type { SshHost } from '../helpers/ssh/index.ts';
import { openIncus } from './resolve.ts';
import type { RunContext } from './run-context.ts';

export type OpenHost = HostChannel & { close(): Promise<void> };

/** The channel specs run commands through: incus exec (lab, incus) or one SSH connection (ssh). */
export async function openHost(run: RunContext): Promise<OpenHost> {
  if (run.target.kind === 'ssh') {
    // Loaded only for the ssh target: ssh2 is the heaviest module a worker would import.
    const { openSshHost } = await import('./ssh-host.ts');
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
