/**
 * Settings of the targets, resolved from the configuration: each target's required variables by
 * name, in the order docs/configuration.md lists them. The lab fills its own (providers/lab.ts).
 */
import { closeSync, fstatSync, openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { incusFileSetting, realTargetDurations, type Config, type IncusFileField, type IncusSettings, type SshSettings } from '../helpers/common/config.ts';
import { ConfigError } from '../helpers/common/errors.ts';
import { realForgeWrites } from '../helpers/forge/writes.ts';
import { ccciProfile, requiredSystemNames } from './system-profile.ts';
import { IncusClient } from '../helpers/incus/client.ts';
import type { RunMachines, SystemUnderTest } from './run-context.ts';

/** The system under test and the proxy that reaches it: what every target resolves. */
export interface SystemSettings extends SystemUnderTest {
  socks: string;
}

export interface ResolvedTarget extends SystemSettings {
  kind: 'lab' | 'incus';
  incus: IncusSettings;
  /** ACCEPT_RAM_GUIDELINE in bytes: creating the throwaway may not push the project over it. */
  ramGuidelineBytes: number;
}

export function required<T>(value: T | undefined, variable: string, why: string): T {
  if (value === undefined) throw new ConfigError(variable, `is required ${why}`);
  return value;
}

/** An existing host: nothing to provision, so no Incus settings or image. */
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

/**
 * A real Incus server: every setting named, nothing filled in, and every file it names readable,
 * so that a wrong path stops the run before anything is created.
 */
export function resolveIncusTarget(config: Config): ResolvedTarget {
  const why = 'when ACCEPT_TARGET=incus';
  if (!config.incus.serverCertFile && !config.incus.serverFingerprint) {
    throw new ConfigError(
      'ACCEPT_INCUS_SERVER_CERT',
      `or ACCEPT_INCUS_SERVER_FINGERPRINT (or ACCEPT_INCUS_CERT_DIR) is required ${why}: the server cert is always pinned`,
    );
  }
  const resolved: ResolvedTarget = {
    kind: 'incus',
    incus: {
      url: required(config.incus.url, 'ACCEPT_INCUS_URL', why),
      clientCertFile: required(config.incus.clientCertFile, 'ACCEPT_INCUS_CLIENT_CERT', why),
      clientKeyFile: required(config.incus.clientKeyFile, 'ACCEPT_INCUS_CLIENT_KEY', why),
      serverCertFile: config.incus.serverCertFile,
      serverFingerprint: config.incus.serverFingerprint,
      certDir: config.incus.certDir,
      project: config.incus.project,
      image: required(config.incus.image, 'ACCEPT_INCUS_IMAGE', why),
      instanceType: config.incus.instanceType,
      memory: config.incus.memory,
      profiles: config.incus.profiles,
      rootSize: config.incus.rootSize,
      instanceConfig: config.incus.instanceConfig ?? {},
      address: config.incus.address,
    },
    ramGuidelineBytes: config.ramGuidelineBytes,
    ...systemSettings(config, why),
  };
  for (const file of incusTargetFiles(resolved)) checkReadable(file);
  return resolved;
}

/** A file a setting names: the variable, the path, and for a directory setting the file in it. */
export interface SettingFile {
  variable: string;
  path: string;
  /** A directory setting: the file in it, and the variable that names that file on its own. */
  inDir?: string;
  instead?: string;
}

function incusFile(incus: IncusSettings, field: IncusFileField): SettingFile[] {
  const path = incus[field];
  return path === undefined ? [] : [{ path, ...incusFileSetting(incus, field) }];
}

/** Every file the incus target reads, in the order docs/configuration.md lists the settings. */
export function incusTargetFiles(target: ResolvedTarget): SettingFile[] {
  return [
    ...incusFile(target.incus, 'clientCertFile'),
    ...incusFile(target.incus, 'clientKeyFile'),
    ...incusFile(target.incus, 'serverCertFile'),
    { variable: 'ACCEPT_AGE_KEY_FILE', path: target.ageKeyFile },
    { variable: 'ACCEPT_TLS_CA_FILE', path: target.tlsCaFile },
  ];
}

/** Opens the file without reading it (keys stay unread until used): it must exist, be readable and be a regular file. */
export function checkReadable(file: SettingFile): void {
  let problem: string | undefined;
  let fd: number | undefined;
  try {
    fd = openSync(file.path, 'r');
    if (!fstatSync(fd).isFile()) problem = 'not a regular file';
  } catch (error) {
    problem = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  if (problem === undefined) return;
  if (file.inDir) {
    throw new ConfigError(
      file.variable,
      `has no readable ${file.inDir}: cannot read ${file.path} (${problem}); put the file there, or name it with ${file.instead}`,
      file.path,
    );
  }
  throw new ConfigError(file.variable, `cannot read ${file.path} (${problem}); fix the path`, file.path);
}

/** What every non-lab target needs about the system under test, each setting required by name. */
export function systemSettings(config: Config, why: string): SystemSettings {
  const settings = {
    socks: config.socks ?? 'socks5://127.0.0.1:1055',
    ageKeyFile: required(config.ageKeyFile, 'ACCEPT_AGE_KEY_FILE', why),
    baseRepo: required(config.baseRepo, 'ACCEPT_BASE_REPO', why),
    instanceRepo: required(config.instanceRepo, 'ACCEPT_INSTANCE_REPO', why),
    domain: required(config.domain, 'ACCEPT_DOMAIN', why),
    tlsCaFile: required(config.tlsCaFile, 'ACCEPT_TLS_CA_FILE', why),
    durations: realTargetDurations(config),
    // The recipes' forge is production's: writes only to the operator's probe repo, if any.
    forgeWrites: realForgeWrites(config.ci.forgeProbeRepo),
    // cc-ci's own names: never the lab's on a real target.
    profile: ccciProfile(requiredSystemNames(config.names, why), config.layout),
    machines: realMachines(config),
    rebootCheck: config.rebootCheck,
  };
  return settings;
}

export const NO_PRODUCTION =
  'ACCEPT_PRODUCTION is unset: this run cannot reach the running cc-ci (cc-nix-test on b1), so its checks are not made; set it to the instance name';

/** The running cc-ci and the neighbours of a real target: named by the operator, never guessed. */
export function realMachines(config: Config): RunMachines {
  if (config.target === 'ssh') {
    // The ssh target faces one existing host: the running cc-ci itself.
    return {
      production: { name: config.ssh.host ?? '(ACCEPT_SSH_HOST unset)', via: 'run-host', memory: config.productionMemory },
      neighbours: config.neighbours,
    };
  }
  return {
    production: config.production ? { name: config.production, via: 'incus', memory: config.productionMemory } : { unreachable: NO_PRODUCTION },
    neighbours: config.neighbours,
  };
}

export async function readSettingFile(file: string, variable: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    throw new ConfigError(variable, `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, file);
  }
}

/**
 * Connects with the pinned server cert, through SOCKS when set. `shared`: this process's one
 * client for these settings (IncusClient.shared), for the short users a run and a session have many of.
 */
export async function openIncus(
  target: Pick<ResolvedTarget, 'incus' | 'socks'>,
  options: { requestTimeoutMs?: number; shared?: boolean } = {},
): Promise<IncusClient> {
  const read = (field: IncusFileField, file: string) => readSettingFile(file, incusFileSetting(target.incus, field).variable);
  const settings = {
    url: target.incus.url,
    clientCert: await read('clientCertFile', target.incus.clientCertFile),
    clientKey: await read('clientKeyFile', target.incus.clientKeyFile),
    serverCert: target.incus.serverCertFile ? await read('serverCertFile', target.incus.serverCertFile) : undefined,
    serverFingerprint: target.incus.serverFingerprint,
    project: target.incus.project,
    socks: target.socks,
    requestTimeoutMs: options.requestTimeoutMs,
  };
  return options.shared ? IncusClient.shared(settings) : IncusClient.connect(settings);
}
