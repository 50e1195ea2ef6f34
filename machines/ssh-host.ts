/**
 * The ssh target's channel: an existing host reached over SSH through SOCKS. Nothing here
 * creates, stops or deletes anything; there is no Incus API behind this target.
 */
import type { SshSettings } from '../helpers/common/config.ts';
import { HarnessError } from '../helpers/common/errors.ts';
import { hostPort } from '../helpers/common/dial.ts';
import type { Ledger } from '../helpers/common/ledger.ts';
import { SshError, connectSsh, type HostKeyPolicy, type SshHost } from '../helpers/ssh/index.ts';
import { readSettingFile } from './resolve.ts';

/** What the warm setup hands to spec workers: the settings, and the key it learned if none was pinned. */
export interface SshRunTarget {
  kind: 'ssh';
  socks: string;
  ssh: SshSettings & { learnedHostKey?: string };
}

/** Reads the ssh part of a run's target, or undefined for lab and incus. */
export function sshRunTarget(target: { kind: string }): SshRunTarget | undefined {
  if (target.kind !== 'ssh') return undefined;
  const ssh = (target as Partial<SshRunTarget>).ssh;
  if (!ssh?.host || !ssh.keyFile)
    throw new HarnessError('the run context names the ssh target but carries no SSH settings; start the run with `vitest run --project warm`');
  return target as SshRunTarget;
}

/**
 * A pin wins. Without one, a key learned earlier in the run (by the warm setup, in another
 * process) is what every later connection must present: trust on first use spans the run.
 */
function hostKeyPolicy(settings: SshRunTarget['ssh']): HostKeyPolicy {
  if (settings.hostKey) return { pinned: settings.hostKey };
  const known = new Map<string, string>();
  if (settings.learnedHostKey) known.set(hostPort(settings.host, settings.port), settings.learnedHostKey);
  return { trustOnFirstUse: true, known };
}

export async function openSshHost(target: Pick<SshRunTarget, 'socks' | 'ssh'>, options: { ledger?: Ledger; readyTimeoutMs?: number } = {}): Promise<SshHost> {
  const privateKey = await readSettingFile(target.ssh.keyFile, 'ACCEPT_SSH_KEY');
  const host = await connectSsh({
    host: target.ssh.host,
    port: target.ssh.port,
    username: target.ssh.user,
    privateKey,
    socks: target.socks,
    hostKey: hostKeyPolicy(target.ssh),
    name: target.ssh.host,
    ledger: options.ledger,
    readyTimeoutMs: options.readyTimeoutMs,
  });
  // Belt and braces: should the lookup above ever miss, a new key would be learned, not refused.
  const learned = target.ssh.learnedHostKey;
  if (!target.ssh.hostKey && learned && host.hostKeyFingerprint !== learned) {
    await host.close();
    throw new SshError(`host key of ${host.target} changed: expected ${learned} (learned earlier in this run), got ${host.hostKeyFingerprint}`, host.target);
  }
  return host;
}
