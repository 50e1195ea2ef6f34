/**
 * Warm run: the specs against a host as it stands. Nothing is created or destroyed. The host is a
 * kept throwaway (kept.json), or, with ACCEPT_TARGET=ssh, an existing host named in the config.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { loadConfig, type Config } from '../../helpers/common/config.ts';
import { ConfigError } from '../../helpers/common/errors.ts';
import { log, timed } from '../../helpers/common/log.ts';
import { newRunId } from '../../target/labels.ts';
import { resolveSshTarget } from '../../target/resolve.ts';
import { openSshHost, type SshRunTarget } from '../../target/ssh-host.ts';
import type { RunContext } from './context.ts';
import { freshResultsDir } from './reports.ts';

export default async function setupWarm(project: TestProject): Promise<void> {
  const config = loadConfig();
  await freshResultsDir(config.reportsDir);
  if (config.target === 'ssh') {
    project.provide('run', await sshContext(config));
    return;
  }
  const file = join(config.stateDir, 'kept.json');
  const text = await readFile(file, 'utf8').catch(() => undefined);
  if (!text) {
    throw new ConfigError('ACCEPT_STATE_DIR', `no kept instance recorded in ${file}: run \`ACCEPT_KEEP=always npm run accept\` once first`);
  }
  const kept = JSON.parse(text) as RunContext;
  project.provide('run', { ...kept, mode: 'warm', instance: { ...kept.instance, createdInThisRun: false } });
}

/**
 * The run context of an existing host, from the config alone. One connection here, before any
 * spec, fails the run early on a bad key or host key, and learns the key for the workers.
 */
async function sshContext(config: Config): Promise<RunContext> {
  const target = resolveSshTarget(config);
  const { host, port, user } = target.ssh;
  const probe = await timed(`Connecting to ${user}@${host}:${port} over SSH through ${target.socks}`, () => openSshHost(target));
  const learnedHostKey = probe.hostKeyFingerprint;
  await probe.close();
  if (!target.ssh.hostKey) log.info(`ACCEPT_SSH_HOST_KEY is unset: the specs will require host key ${learnedHostKey}, learned just now`);
  const runTarget: SshRunTarget = { kind: 'ssh', socks: target.socks, ssh: { ...target.ssh, learnedHostKey } };
  return {
    runId: newRunId(),
    mode: 'warm',
    target: runTarget,
    instance: { name: host, project: config.incus.project, createdAt: '', expiresAt: '', createdInThisRun: false },
    https: { host, port: 443 },
    domain: target.domain,
    tlsCaFile: target.tlsCaFile,
    ageKeyFile: target.ageKeyFile,
    baseRepo: target.baseRepo,
    instanceRepo: target.instanceRepo,
    ledger: [],
  };
}
