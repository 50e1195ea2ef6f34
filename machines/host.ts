/**
 * The channel and the Incus client a spec worker needs, without the providers: a spec imports
 * this, not machines/index.ts, so that its worker never loads the lab, provisioning or (unless the
 * target is ssh) the SSH client.
 */
import { ConfigError, HarnessError } from '../helpers/common/errors.ts';
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
  const client = await openIncus(run.target, { shared: true });
  return Object.assign(incusChannel(client, run.instance.name), { close: () => client.close() });
}

/** The running cc-ci as a spec reaches it, or why this run cannot. */
export type ProductionHost = { host: OpenHost; name: string } | { unreachable: string };

/**
 * The channel to the running cc-ci (cc-nix-test): read only, never created or rebuilt. An
 * ACCEPT_PRODUCTION that names no instance is a setting to fix (ERROR), not a FAIL.
 */
export async function openProduction(run: RunContext): Promise<ProductionHost> {
  const production = run.machines.production;
  if (!('name' in production)) return { unreachable: production.unreachable };
  if (production.via === 'run-host') return { host: await openHost(run), name: production.name };
  if (run.target.kind === 'ssh') throw new HarnessError('the ssh target reaches one host: the running cc-ci is that host (via run-host)');
  const client = await openIncus(run.target, { shared: true });
  try {
    if (!(await client.getInstance(production.name))) {
      throw new ConfigError(
        'ACCEPT_PRODUCTION',
        `names ${production.name}, but project ${client.project} on ${run.target.incus.url} has no such instance; name the running cc-ci`,
      );
    }
  } catch (error) {
    await client.close();
    throw error;
  }
  return { host: Object.assign(incusChannel(client, production.name), { close: () => client.close() }), name: production.name };
}

/** Whether the run's target has an Incus API behind it; C6 needs one. */
export function hasIncusApi(run: RunContext): boolean {
  return run.target.kind !== 'ssh';
}

export const NO_INCUS_API = 'the ssh target has no Incus API: C6 needs ACCEPT_TARGET=incus or lab';

export async function openIncusFor(run: RunContext): Promise<IncusClient> {
  if (run.target.kind === 'ssh') throw new HarnessError('the ssh target has no Incus API: a spec that needs one must skip itself for ACCEPT_TARGET=ssh');
  return openIncus(run.target, { shared: true });
}
