/**
 * The machines layer's front door. `ACCEPT_TARGET` picks a provider; the specs and the CLI get a
 * RunContext, a HostChannel and (where the target has one) an Incus client, and never branch on
 * the kind themselves.
 */
import type { Config } from '../helpers/common/config.ts';
import { ConfigError } from '../helpers/common/errors.ts';
import type { TargetProvider } from './provider.ts';
import { incusProvider } from './providers/incus.ts';
import { labProvider } from './providers/lab.ts';
import { sshProvider } from './providers/ssh.ts';
import { SSH_NEVER_PROVISIONS, type ResolvedTarget } from './resolve.ts';

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

export { NO_INCUS_API, hasIncusApi, openHost, openIncusFor, type OpenHost } from './host.ts';
