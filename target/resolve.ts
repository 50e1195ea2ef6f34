/**
 * Settings of the targets, resolved from the configuration: each target's required variables by
 * name, in the order docs/configuration.md lists them. The lab fills its own (providers/lab.ts).
 */
import { readFile } from 'node:fs/promises';
import type { Config, IncusSettings, SshSettings } from '../helpers/common/config.ts';
import { ConfigError } from '../helpers/common/errors.ts';
import { IncusClient } from '../helpers/incus/client.ts';
import type { SystemUnderTest } from './run-context.ts';

/** The system under test and the proxy that reaches it: what every target resolves. */
export interface SystemSettings extends SystemUnderTest {
  socks: string;
}

export interface ResolvedTarget extends SystemSettings {
  kind: 'lab' | 'incus';
  incus: IncusSettings;
  /** ACCEPT_RAM_GUIDELINE in bytes: creating the throwaway may not push the project over it. */
  ramGuidelineBytes: number;
  /** The lab reaches instances through loopback proxy devices; a real VM by its address. */
  exposure: { kind: 'loopback-proxy'; gitPort: number } | { kind: 'instance-address' };
}

export function required<T>(value: T | undefined, variable: string, why: string): T {
  if (value === undefined) throw new ConfigError(variable, `is required ${why}`);
  return value;
}

/** An existing host: nothing to provision, so no Incus settings, image or exposure. */
export interface SshTarget extends SystemSettings {
  kind: 'ssh';
  ssh: SshSettings;
}

/** The ssh target never provisions; every path that would create or delete stops here. */
export const SSH_NEVER_PROVISIONS =
  'is ssh: that target is an existing host and the harness never provisions or destroys anything on it, ' +
  'so there is no cold run, throwaway or sweep; run the specs against it with `npx vitest run --project warm`';

export function resolveSshTarget(config: Config): SshTarget {
  if (config.target !== 'ssh') throw new ConfigError('ACCEPT_TARGET', `must be ssh to reach an existing host over SSH; got ${config.target}`);
  const why = 'when ACCEPT_TARGET=ssh';
  // Checked in the order docs/configuration.md lists them.
  const host = required(config.ssh.host, 'ACCEPT_SSH_HOST', why);
  const keyFile = required(config.ssh.keyFile, 'ACCEPT_SSH_KEY', why);
  return {
    kind: 'ssh',
    ssh: { host, port: config.ssh.port, user: config.ssh.user, keyFile, hostKey: config.ssh.hostKey },
    ...systemSettings(config, why),
  };
}

/** A real Incus server: every setting named, nothing filled in. */
export function resolveIncusTarget(config: Config): ResolvedTarget {
  const why = 'when ACCEPT_TARGET=incus';
  if (!config.incus.serverCertFile && !config.incus.serverFingerprint) {
    throw new ConfigError('ACCEPT_INCUS_SERVER_CERT', `or ACCEPT_INCUS_SERVER_FINGERPRINT is required ${why}: the server cert is always pinned`);
  }
  return {
    kind: 'incus',
    incus: {
      url: required(config.incus.url, 'ACCEPT_INCUS_URL', why),
      clientCertFile: required(config.incus.clientCertFile, 'ACCEPT_INCUS_CLIENT_CERT', why),
      clientKeyFile: required(config.incus.clientKeyFile, 'ACCEPT_INCUS_CLIENT_KEY', why),
      serverCertFile: config.incus.serverCertFile,
      serverFingerprint: config.incus.serverFingerprint,
      project: config.incus.project,
      image: required(config.incus.image, 'ACCEPT_INCUS_IMAGE', why),
      instanceType: config.incus.instanceType,
      memory: config.incus.memory,
    },
    ramGuidelineBytes: config.ramGuidelineBytes,
    ...systemSettings(config, why),
    exposure: { kind: 'instance-address' },
  };
}

/** What every non-lab target needs about the system under test, each setting required by name. */
export function systemSettings(config: Config, why: string): SystemSettings {
  return {
    socks: config.socks ?? 'socks5://127.0.0.1:1055',
    ageKeyFile: required(config.ageKeyFile, 'ACCEPT_AGE_KEY_FILE', why),
    baseRepo: required(config.baseRepo, 'ACCEPT_BASE_REPO', why),
    instanceRepo: required(config.instanceRepo, 'ACCEPT_INSTANCE_REPO', why),
    domain: required(config.domain, 'ACCEPT_DOMAIN', why),
    tlsCaFile: required(config.tlsCaFile, 'ACCEPT_TLS_CA_FILE', why),
  };
}

export async function readSettingFile(file: string, variable: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    throw new ConfigError(variable, `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

/** Connects with the pinned server cert, through SOCKS when set. */
export async function openIncus(target: Pick<ResolvedTarget, 'incus' | 'socks'>, options: { requestTimeoutMs?: number } = {}): Promise<IncusClient> {
  return IncusClient.connect({
    url: target.incus.url,
    clientCert: await readSettingFile(target.incus.clientCertFile, 'ACCEPT_INCUS_CLIENT_CERT'),
    clientKey: await readSettingFile(target.incus.clientKeyFile, 'ACCEPT_INCUS_CLIENT_KEY'),
    serverCert: target.incus.serverCertFile ? await readSettingFile(target.incus.serverCertFile, 'ACCEPT_INCUS_SERVER_CERT') : undefined,
    serverFingerprint: target.incus.serverFingerprint,
    project: target.incus.project,
    socks: target.socks,
    requestTimeoutMs: options.requestTimeoutMs,
  });
}
