/** An existing host over SSH (cc-nix-test): warm runs only; it never provisions and never destroys. */
import type { Config } from '../../helpers/common/config.ts';
import { ConfigError } from '../../helpers/common/errors.ts';
import { log, timed } from '../../helpers/common/log.ts';
import { newRunId } from '../labels.ts';
import type { TargetProvider } from '../provider.ts';
import { systemOf } from '../provision.ts';
import { SSH_NEVER_PROVISIONS, resolveSshTarget } from '../resolve.ts';
import { runContext, type TargetDescription } from '../run-context.ts';

export function sshProvider(config: Config): TargetProvider {
  const describe = (): TargetDescription => ({
    kind: 'ssh',
    server: `${config.ssh.user}@${config.ssh.host ?? '(ACCEPT_SSH_HOST unset)'}:${config.ssh.port}`,
    standIns: [],
    notes: [],
  });
  return {
    kind: 'ssh',
    describe,
    provision: () => Promise.reject(new ConfigError('ACCEPT_TARGET', SSH_NEVER_PROVISIONS)),
    /**
     * One connection here, before any spec, fails the run early on a bad key or host key, and
     * learns the key for the workers.
     */
    async attach() {
      const target = resolveSshTarget(config);
      const { host, port, user } = target.ssh;
      // Loaded here, not at the top: every other target's processes never load ssh2.
      const { openSshHost } = await import('../ssh-host.ts');
      const probe = await timed(`Connecting to ${user}@${host}:${port} over SSH through ${target.socks}`, () => openSshHost(target));
      const learnedHostKey = probe.hostKeyFingerprint;
      await probe.close();
      if (!target.ssh.hostKey) log.info(`ACCEPT_SSH_HOST_KEY is unset: the specs will require host key ${learnedHostKey}, learned just now`);
      return runContext({
        runId: newRunId(),
        mode: 'warm',
        access: { kind: 'ssh', socks: target.socks, ssh: { ...target.ssh, learnedHostKey } },
        faced: describe(),
        system: systemOf(target),
        host: { name: host, project: config.incus.project, createdAt: '', expiresAt: '', https: { host, port: 443 }, ledger: [] },
      });
    },
  };
}
