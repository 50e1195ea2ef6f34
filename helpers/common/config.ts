/**
 * Every ACCEPT_* variable is parsed and validated here, once. Each has a row in
 * docs/configuration.md; config.test.ts checks the two agree.
 */
import { isIP } from 'node:net';
import { join } from 'node:path';
import { splitUrlCredentials, type GitCredential } from './credentials.ts';
import { ConfigError } from './errors.ts';

export type TargetKind = 'lab' | 'incus' | 'ssh';
export type InstanceType = 'container' | 'virtual-machine';
export type AddressFamily = 'inet' | 'inet6';

/** The files ACCEPT_INCUS_CERT_DIR holds, by the IncusSettings field each fills. */
export const INCUS_CERT_DIR_FILES = { clientCertFile: 'client.crt', clientKeyFile: 'client.key', serverCertFile: 'server.crt' } as const;
export type IncusFileField = keyof typeof INCUS_CERT_DIR_FILES;
const INCUS_FILE_VARIABLES: Record<IncusFileField, string> = {
  clientCertFile: 'ACCEPT_INCUS_CLIENT_CERT',
  clientKeyFile: 'ACCEPT_INCUS_CLIENT_KEY',
  serverCertFile: 'ACCEPT_INCUS_SERVER_CERT',
};

/**
 * The setting that named one of the Incus files: its own variable, or the cert dir, the file in
 * it and the variable that would name it instead.
 */
export function incusFileSetting(
  incus: Partial<Pick<IncusSettings, IncusFileField | 'certDir'>>,
  field: IncusFileField,
): { variable: string; inDir?: string; instead?: string } {
  const file = incus[field];
  if (incus.certDir !== undefined && file === join(incus.certDir, INCUS_CERT_DIR_FILES[field])) {
    return { variable: 'ACCEPT_INCUS_CERT_DIR', inDir: INCUS_CERT_DIR_FILES[field], instead: INCUS_FILE_VARIABLES[field] };
  }
  return { variable: INCUS_FILE_VARIABLES[field] };
}

export interface IncusSettings {
  url: string;
  clientCertFile: string;
  clientKeyFile: string;
  /** PEM file of the server cert to pin, or undefined when a fingerprint pin is given. */
  serverCertFile?: string;
  serverFingerprint?: string;
  project: string;
  image: string;
  instanceType: InstanceType;
  memory: string;
  /** Incus profiles the throwaway gets, in order. */
  profiles: string[];
  /** Size of the root disk, as an override of the profiles' root device; unset keeps theirs. */
  rootSize?: string;
  /** Instance config the throwaway is created with beside the harness's labels and limits.memory. */
  instanceConfig: Record<string, string>;
  /** Which address of the instance the harness dials (through the proxy): a family, and optionally the guest's interface. */
  address: { family: AddressFamily; nic?: string };
  /** ACCEPT_INCUS_CERT_DIR, when it filled any of the three file paths (for messages that name it). */
  certDir?: string;
}

/** How the ssh target reaches its existing host. */
export interface SshSettings {
  host: string;
  port: number;
  user: string;
  /** Path of the private key file; read only when connecting. */
  keyFile: string;
  /** Pinned host key, "SHA256:…" without padding; unset means trust on first use within the run. */
  hostKey?: string;
}

export interface Config {
  target: TargetKind;
  /** Partial: only the ssh target needs host and key, and checks for them when it is resolved. */
  ssh: Partial<SshSettings> & { port: number; user: string };
  /** Partial: the lab fills in what is unset from its own state. */
  incus: Partial<IncusSettings> & Pick<IncusSettings, 'project' | 'instanceType' | 'memory' | 'profiles' | 'address'>;
  socks?: string;
  ageKeyFile?: string;
  /** Without credentials: a userinfo given in the setting is moved to `urlCredentials`. */
  baseRepo?: string;
  instanceRepo?: string;
  /** Credentials lifted out of ACCEPT_BASE_REPO / ACCEPT_INSTANCE_REPO, registered for redaction. */
  urlCredentials: GitCredential[];
  /** A git-credential-store file for the clones on this machine (read on each git call). */
  gitCredentialsFile?: string;
  /** A git-credential-store file the runbook's clones on the host use; pushed, then removed. */
  hostGitCredentialsFile?: string;
  domain?: string;
  tlsCaFile?: string;
  ttlMs: number;
  /** The embedded lab's own settings (ACCEPT_LAB_*): read by the lab provider and the lab command only. */
  lab: LabConfig;
  /** The harness's own tests' settings (ACCEPT_SELFTEST_*). */
  selftest: SelftestConfig;
  reportsDir: string;
  keep: 'never' | 'on-failure' | 'always';
  stateDir: string;
  /** Bytes: the project's running memory may not exceed this (C6, and a guard on creation). */
  ramGuidelineBytes: number;
  /**
   * The running cc-ci (cc-nix-test on b1): an instance in ACCEPT_INCUS_PROJECT that a run reads
   * and never creates, rebuilds or deletes. Unset: its checks are SKIPPED, naming this setting.
   */
  production?: string;
  /** limits.memory the running cc-ci is sized to (the seed's 4 GB), as C6 expects to observe it. */
  productionMemory: string;
  /** Other instances in the project that a run must leave as they were (lichen-staging on b1). */
  neighbours: string[];
  /** D8's optional last check: reboot the throwaway and see booted = current = the clean build. */
  rebootCheck: boolean;
  /** cc-ci's names that neither the DoD nor the seed gives: only those set. A real target requires each; the lab has its own. */
  names: Partial<SystemNames>;
  /** cc-ci's layout where the seed and the DoD name it: the instance repo's sops file and submodule path, and the architecture document. */
  layout: { secretsFile: string; submodule: string; architecture: string };
  /** cc-ci's own faces (D1–D10). Unset URLs and tokens come from the domain and the instance repo. */
  ci: CiSettings;
  /** Only the durations the user set; each target fills the rest (durationsFor). */
  durations: Partial<Durations>;
}

/** The embedded lab's settings: no other target reads them. */
export interface LabConfig {
  /** ACCEPT_LAB_DIR: where the lab keeps its state. */
  dir: string;
  /** ACCEPT_LAB_LAYOUT: how the lab's base repo takes in the instance repo. */
  layout: 'submodule' | 'input';
  /** ACCEPT_LAB_SABOTAGE: a name from the lab's sabotage catalogue, checked when a cold run starts. */
  sabotage?: string;
  /** ACCEPT_LAB_SLOW in ms: the lab's rebuild and recipe builds each take this much longer. */
  slowMs?: number;
}

/** The harness's own tests (the e2e scenarios, the sabotage matrix). */
export interface SelftestConfig {
  /** ACCEPT_SELFTEST_WORKERS: how many cold runs they run at once, each in its own lab project. */
  workers: number;
}

/**
 * How long the run waits for each slow thing the system does, in ms. Every wait and every
 * Vitest timeout of a run derives from these (see budgetMs in helpers/common/budget.ts).
 */
export interface Durations {
  /** A new throwaway: created, started, booted, with an address. */
  boot: number;
  /** One `nixos-rebuild switch` (each runbook step too), and the operator-side build of the toplevel. */
  rebuild: number;
  /** The reconcile oneshots, and cc-ci's faces coming back after a rebuild restarted them. */
  converge: number;
  /** The bridge's reaction: a !testme comment to its Drone build, a build's end to its PR comment. */
  buildStart: number;
  /** One recipe build, from start to end. */
  buildFinish: number;
  /** A check's own work besides those waits: requests, scans of history and of the host. */
  check: number;
}
export type DurationName = keyof Durations;

/** The variable that sets each duration. */
export const DURATION_VARIABLES: Record<DurationName, string> = {
  boot: 'ACCEPT_BOOT_TIMEOUT',
  rebuild: 'ACCEPT_REBUILD_TIMEOUT',
  converge: 'ACCEPT_CONVERGE_TIMEOUT',
  buildStart: 'ACCEPT_BUILD_START_TIMEOUT',
  buildFinish: 'ACCEPT_BUILD_FINISH_TIMEOUT',
  check: 'ACCEPT_CHECK_TIMEOUT',
};

/** Defaults for a real target (a NixOS VM on b1), as docs/configuration.md gives and explains them. */
export const REAL_TARGET_DURATIONS: Record<DurationName, string> = {
  boot: '10m',
  rebuild: '45m',
  converge: '10m',
  buildStart: '5m',
  buildFinish: '40m',
  check: '10m',
};

/** Durations written as settings are ("10m"), in ms; `where` names what they came from. */
export function parseDurations(texts: Record<DurationName, string>, where: string): Durations {
  const parsed = {} as Durations;
  for (const name of Object.keys(texts) as DurationName[]) parsed[name] = parseDuration(`${DURATION_VARIABLES[name]} (${where})`, texts[name]);
  return parsed;
}

/** The durations in force: the user's where set, else the target's. */
export function durationsFor(given: Partial<Durations>, fallback: Durations): Durations {
  const resolved = { ...fallback };
  for (const name of Object.keys(fallback) as DurationName[]) resolved[name] = given[name] ?? fallback[name];
  return resolved;
}

/** A real target's durations (incus, ssh): the user's where set, else REAL_TARGET_DURATIONS. */
export function realTargetDurations(config: Pick<Config, 'durations'>): Durations {
  return durationsFor(config.durations, parseDurations(REAL_TARGET_DURATIONS, 'default'));
}

export interface CiSettings {
  forgeUrl?: string;
  forgeOrg: string;
  /** ACCEPT_FORGE_PROBE_REPO (owner/name): against a real target, the one repo the harness may write to. */
  forgeProbeRepo?: string;
  forgeMemberTokenFile?: string;
  forgeOutsiderTokenFile?: string;
  droneUrl?: string;
  droneRepo: string;
  droneTokenFile?: string;
  /** D10 against an existing host: trigger fresh builds instead of reading the latest ones. */
  d10Trigger: boolean;
  /** D4, D5 and D6 may change an existing host (commit to its checkout and rebuild). */
  allowHostChanges: boolean;
}

type Env = Record<string, string | undefined>;

function text(env: Env, name: string): string | undefined {
  const value = env[name];
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  return trimmed === '' ? undefined : trimmed;
}

function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const value = text(env, name);
  if (value === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(value)) {
    throw new ConfigError(name, `must be one of ${allowed.join(', ')}; got ${JSON.stringify(value)}`);
  }
  return value as T;
}

const DURATION_UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function parseDuration(name: string, value: string): number {
  const match = /^(\d+)(s|m|h|d)$/.exec(value);
  if (!match) throw new ConfigError(name, `must be a duration such as 90s, 30m, 2h or 1d; got ${JSON.stringify(value)}`);
  const ms = Number(match[1]) * DURATION_UNITS[match[2]!]!;
  if (ms <= 0) throw new ConfigError(name, 'must be longer than zero');
  return ms;
}

const BINARY_UNITS: Record<string, number> = { KiB: 2 ** 10, MiB: 2 ** 20, GiB: 2 ** 30, TiB: 2 ** 40, KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12, B: 1 };

/** Incus-style memory sizes ("4GiB", "512MiB", "12GB"). */
export function parseBytes(name: string, value: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|TiB|KB|MB|GB|TB)$/.exec(value);
  if (!match) throw new ConfigError(name, `must be a size such as 4GiB or 512MiB; got ${JSON.stringify(value)}`);
  const bytes = Math.round(Number(match[1]) * BINARY_UNITS[match[2]!]!);
  if (bytes <= 0) throw new ConfigError(name, 'must be larger than zero');
  return bytes;
}

function url(env: Env, name: string, protocols: string[]): string | undefined {
  const value = text(env, name);
  if (value === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    throw new ConfigError(name, `is not a URL: ${JSON.stringify(value)}`);
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(name, `must use ${protocols.join(' or ')}; got ${JSON.stringify(value)}`);
  }
  return value;
}

/**
 * cc-ci's names that neither the DoD nor the seed gives. Each is one ACCEPT_* setting: a real
 * target requires it (one ERROR naming it, before anything is created); the lab has its own.
 */
export interface SystemNames {
  /** The reconcile oneshots C4 waits for, in the order they converge. */
  oneshots: string[];
  /** Path, in the base repo, of the D8 document the system publishes (C5; the DoD's "D8 evidence"). */
  d8Doc: string;
  /** The Drone build parameters the bridge sets: the recipe, the PR number, the triggering comment's id. */
  buildParams: { recipe: string; pull: string; comment: string };
  /** Words a stage's or step's name contains, matched case-insensitively, `|` between alternatives. */
  stageWords: { install: string; upgrade: string; backupRestore: string; recipeTests: string; browser: string };
  /** The enrolment list (one recipe a line), a recipe's own tree (`{recipe}` its name), and the enrolment document. */
  enrolment: { list: string; tree: string; doc: string };
  /** The operators' runbook document (D9). */
  runbookDoc: string;
}

/** The setting that names each of cc-ci's names, as errors and docs/configuration.md give it. */
export const SYSTEM_NAME_SETTINGS: Record<keyof SystemNames, string> = {
  oneshots: 'ACCEPT_ONESHOTS',
  d8Doc: 'ACCEPT_D8_DOC',
  buildParams: 'ACCEPT_BUILD_PARAMS',
  stageWords: 'ACCEPT_STAGE_WORDS',
  enrolment: 'ACCEPT_ENROLMENT',
  runbookDoc: 'ACCEPT_RUNBOOK_DOC',
};

function unitList(env: Env, name: string): string[] | undefined {
  const value = text(env, name);
  if (value === undefined) return undefined;
  const units = value
    .split(',')
    .map((unit) => unit.trim())
    .filter(Boolean);
  const bad = units.find((unit) => !/^[A-Za-z0-9@._:-]+\.(service|target|socket|timer|mount)$/.test(unit));
  if (bad !== undefined || units.length === 0) {
    throw new ConfigError(
      name,
      `must be a comma-separated list of systemd unit names such as ccci-reconcile-swarm.service; got ${JSON.stringify(bad ?? value)}`,
    );
  }
  return units;
}

/**
 * `key=value` pairs, comma-separated, with exactly the keys given (in any order); each value
 * checked by `valid`, which says what it must be.
 */
function namedValues<K extends string>(
  env: Env,
  name: string,
  keys: readonly K[],
  valid: { test: (value: string) => boolean; what: string },
): Record<K, string> | undefined {
  const value = text(env, name);
  if (value === undefined) return undefined;
  const example = keys.map((key) => `${key}=…`).join(',');
  const pairs: Partial<Record<K, string>> = {};
  for (const [key, setting] of keyValuePairs(name, value, /^[a-z-]+$/, example) as [K, string][]) {
    if (!keys.includes(key)) throw new ConfigError(name, `has no key ${key}: its keys are ${keys.join(', ')}`);
    if (!valid.test(setting)) throw new ConfigError(name, `${key} must be ${valid.what}; got ${JSON.stringify(setting)}`);
    pairs[key] = setting;
  }
  const missing = keys.filter((key) => !(key in pairs));
  if (missing.length) throw new ConfigError(name, `lacks ${missing.join(', ')}: it must be ${example}`);
  return pairs as Record<K, string>;
}

const ENV_NAME = { test: (value: string) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(value), what: 'an environment variable name such as RECIPE' };
// Plain words only: they become a case-insensitive pattern, so no character may mean more than itself.
const WORDS = { test: (value: string) => /^[A-Za-z0-9 _.-]+(\|[A-Za-z0-9 _.-]+)*$/.test(value), what: 'words separated by |, such as backup|restore' };
const IN_REPO = { test: insideRepo, what: 'a path inside the base repo' };

/** The ACCEPT_* settings that name `names`: what loadConfig reads back to the same names. */
export function systemNamesEnv(names: SystemNames): Record<string, string> {
  const pairs = (values: Record<string, string>) =>
    Object.entries(values)
      .map(([key, value]) => `${key}=${value}`)
      .join(',');
  const { install, upgrade, backupRestore, recipeTests, browser } = names.stageWords;
  return {
    ACCEPT_ONESHOTS: names.oneshots.join(','),
    ACCEPT_D8_DOC: names.d8Doc,
    ACCEPT_BUILD_PARAMS: pairs(names.buildParams),
    ACCEPT_STAGE_WORDS: pairs({ install, upgrade, 'backup-restore': backupRestore, 'recipe-tests': recipeTests, browser }),
    ACCEPT_ENROLMENT: pairs(names.enrolment),
    ACCEPT_RUNBOOK_DOC: names.runbookDoc,
  };
}

const FINGERPRINT = /^(?:[0-9a-f]{64}|(?:[0-9A-F]{2}:){31}[0-9A-F]{2})$/i;
/** What `ssh-keygen -lf` prints for a host key, padding optional. */
const SSH_FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}=?$/;
const DNS_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

function sshHost(env: Env, name: string): string | undefined {
  const value = text(env, name);
  if (value === undefined) return undefined;
  // Common slips get a pointer to the setting that carries that part.
  if (value.includes('@')) throw new ConfigError(name, `must be a host name or address only; put the user in ACCEPT_SSH_USER; got ${JSON.stringify(value)}`);
  const bare = value.replace(/^\[(.*)\]$/, '$1');
  if (isIP(bare)) return bare;
  if (/:\d+$/.test(value)) throw new ConfigError(name, `must be a host name or address only; put the port in ACCEPT_SSH_PORT; got ${JSON.stringify(value)}`);
  if (!DNS_NAME.test(value)) throw new ConfigError(name, `must be a DNS name or an IP address; got ${JSON.stringify(value)}`);
  return value;
}

function port(env: Env, name: string, fallback: number): number {
  const value = text(env, name);
  if (value === undefined) return fallback;
  const number = /^\d{1,5}$/.test(value) ? Number(value) : NaN;
  if (!(number >= 1 && number <= 65535)) throw new ConfigError(name, `must be a TCP port, 1 to 65535; got ${JSON.stringify(value)}`);
  return number;
}

function sshUser(env: Env, name: string): string {
  const value = text(env, name) ?? 'root';
  if (!/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(value)) throw new ConfigError(name, `is not a valid user name: ${JSON.stringify(value)}`);
  return value;
}

function sshHostKey(env: Env, name: string): string | undefined {
  const value = text(env, name);
  if (value === undefined) return undefined;
  if (!SSH_FINGERPRINT.test(value)) {
    throw new ConfigError(
      name,
      `must be a host key fingerprint as \`ssh-keygen -lf\` prints it: SHA256: and 43 base64 characters; got ${JSON.stringify(value)}`,
    );
  }
  return value.replace(/=$/, '');
}

function flag(env: Env, name: string): boolean {
  return oneOf(env, name, ['0', '1'] as const, '0') === '1';
}

function slug(env: Env, name: string, fallback: string, parts: 1 | 2): string {
  const value = text(env, name) ?? fallback;
  const pattern = parts === 1 ? /^[A-Za-z0-9][A-Za-z0-9_.-]*$/ : /^[A-Za-z0-9][A-Za-z0-9_.-]*\/[A-Za-z0-9][A-Za-z0-9_.-]*$/;
  if (!pattern.test(value))
    throw new ConfigError(name, `must be ${parts === 1 ? 'a name such as coop-cloud' : 'owner/name, such as coop-cloud/cc-ci'}; got ${JSON.stringify(value)}`);
  return value;
}

function smallCount(env: Env, name: string, fallback: number, max: number): number {
  const value = text(env, name);
  if (value === undefined) return fallback;
  if (!/^[1-9][0-9]*$/.test(value) || Number(value) > max) throw new ConfigError(name, `must be a whole number from 1 to ${max}; got ${JSON.stringify(value)}`);
  return Number(value);
}

const INCUS_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** An Incus instance name, or unset. */
function instanceName(env: Env, name: string): string | undefined {
  const value = text(env, name);
  if (value !== undefined && !INCUS_NAME.test(value))
    throw new ConfigError(name, `must be an Incus instance name such as cc-nix-test; got ${JSON.stringify(value)}`);
  return value;
}

function instanceList(env: Env, name: string): string[] {
  const value = text(env, name);
  if (value === undefined) return [];
  const names = value
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean);
  const bad = names.find((entry) => !INCUS_NAME.test(entry));
  if (bad !== undefined)
    throw new ConfigError(name, `must be a comma-separated list of Incus instance names such as lichen-staging; got ${JSON.stringify(bad)}`);
  return [...new Set(names)];
}

function profileList(env: Env, name: string): string[] {
  const value = text(env, name);
  if (value === undefined) return ['default'];
  const profiles = value.split(',').map((profile) => profile.trim());
  const bad = profiles.find((profile) => !INCUS_NAME.test(profile));
  if (bad !== undefined)
    throw new ConfigError(
      name,
      `must be a comma-separated list of Incus profile names such as default,vm-nixos; got ${JSON.stringify(bad === '' ? value : bad)}`,
    );
  if (new Set(profiles).size !== profiles.length) throw new ConfigError(name, `names a profile twice: ${JSON.stringify(value)}`);
  return profiles;
}

/**
 * `key=value` pairs, comma-separated, in order: each key must match `key`, and none may come twice.
 * `expected` says the setting's form when a pair is not one.
 */
function keyValuePairs(name: string, value: string, key: RegExp, expected: string): [string, string][] {
  const seen = new Set<string>();
  return value.split(',').map((entry) => {
    const pair = entry.trim();
    const at = pair.indexOf('=');
    const [k, v] = at === -1 ? [pair, undefined] : [pair.slice(0, at), pair.slice(at + 1)];
    if (v === undefined || !key.test(k)) throw new ConfigError(name, `must be ${expected}; got ${JSON.stringify(pair)}`);
    if (seen.has(k)) throw new ConfigError(name, `sets ${k} twice`);
    seen.add(k);
    return [k, v];
  });
}

/** Keys the harness sets itself: its labels, and the memory ACCEPT_INCUS_MEMORY names. */
const HARNESS_OWNED_CONFIG = /^(user\.accept\.|limits\.memory$)/;

/** `key=value` pairs of limits.* and security.* keys, comma-separated, such as `security.secureboot=false`. */
function instanceConfig(env: Env, name: string): Record<string, string> {
  const value = text(env, name);
  if (value === undefined) return {};
  const config: Record<string, string> = {};
  for (const [key, setting] of keyValuePairs(
    name,
    value,
    /^[a-z0-9][a-z0-9._-]*$/,
    'comma-separated Incus instance config pairs such as security.secureboot=false',
  )) {
    if (HARNESS_OWNED_CONFIG.test(key)) {
      throw new ConfigError(name, `sets ${key}, which the harness sets itself${key === 'limits.memory' ? ' (use ACCEPT_INCUS_MEMORY)' : ' (its labels)'}`);
    }
    // What a blank VM may need to boot and run (secure boot, CPU, nesting); never its devices, image or cloud-init.
    if (!/^(limits|security)\./.test(key)) throw new ConfigError(name, `sets ${key}: only limits.* and security.* keys pass through to the throwaway`);
    config[key] = setting;
  }
  return config;
}

/** Relative, and without `..`: a path that stays inside a repo. */
function insideRepo(value: string): boolean {
  return value !== '' && !value.startsWith('/') && !value.split('/').includes('..');
}

/** A path inside a repo, to a file. */
function repoPath(env: Env, name: string): string | undefined {
  const value = text(env, name);
  if (value !== undefined && (!insideRepo(value) || value.endsWith('/'))) {
    throw new ConfigError(name, `must be a path inside the repo, such as secrets/secrets.yaml; got ${JSON.stringify(value)}`);
  }
  return value;
}

function interfaceName(env: Env, name: string): string | undefined {
  const value = text(env, name);
  // Linux interface names: at most 15 bytes, no slash or whitespace.
  if (value !== undefined && !/^[A-Za-z0-9_.@-]{1,15}$/.test(value))
    throw new ConfigError(name, `must be a network interface name inside the guest, such as enp5s0 or eth0; got ${JSON.stringify(value)}`);
  return value;
}

/**
 * The three Incus file paths: each explicit variable wins; ACCEPT_INCUS_CERT_DIR fills the rest.
 * The dir's server.crt is used only when neither pin is set explicitly.
 */
function incusFiles(
  certDir: string | undefined,
  explicit: Partial<Pick<IncusSettings, IncusFileField>>,
  fingerprint: string | undefined,
): Partial<Pick<IncusSettings, IncusFileField | 'certDir'>> {
  if (certDir === undefined) return explicit;
  const inDir = (field: IncusFileField) => join(certDir, INCUS_CERT_DIR_FILES[field]);
  const files = {
    clientCertFile: explicit.clientCertFile ?? inDir('clientCertFile'),
    clientKeyFile: explicit.clientKeyFile ?? inDir('clientKeyFile'),
    serverCertFile: explicit.serverCertFile ?? (fingerprint === undefined ? inDir('serverCertFile') : undefined),
  };
  const used = (Object.keys(files) as (keyof typeof files)[]).some((field) => files[field] !== undefined && explicit[field] === undefined);
  return { ...files, certDir: used ? certDir : undefined };
}

function duration(env: Env, name: string): number | undefined {
  const value = text(env, name);
  return value === undefined ? undefined : parseDuration(name, value);
}

/** The durations the user set, by name; unset ones are left out for the target to fill. */
function givenDurations(values: Record<DurationName, number | undefined>): Partial<Durations> {
  return Object.fromEntries(Object.entries(values).filter(([, ms]) => ms !== undefined));
}

/** A repo setting, its userinfo (if any) lifted out and registered for redaction before anything can print it. */
function repo(env: Env, name: string): ReturnType<typeof splitUrlCredentials> | undefined {
  const value = text(env, name);
  return value === undefined ? undefined : splitUrlCredentials(name, value);
}

export function loadConfig(env: Env = process.env): Config {
  const fingerprint = text(env, 'ACCEPT_INCUS_SERVER_FINGERPRINT');
  if (fingerprint !== undefined && !FINGERPRINT.test(fingerprint)) {
    throw new ConfigError('ACCEPT_INCUS_SERVER_FINGERPRINT', 'must be a SHA-256 fingerprint: 64 hex digits, colons allowed');
  }
  const project = text(env, 'ACCEPT_INCUS_PROJECT') ?? 'terraform-ci';
  if (!INCUS_NAME.test(project)) {
    throw new ConfigError('ACCEPT_INCUS_PROJECT', `is not a valid project name: ${JSON.stringify(project)}`);
  }
  const memory = text(env, 'ACCEPT_INCUS_MEMORY') ?? '4GiB';
  parseBytes('ACCEPT_INCUS_MEMORY', memory);
  const socks = url(env, 'ACCEPT_SOCKS', ['socks5:', 'socks5h:']);
  const rootSize = text(env, 'ACCEPT_INCUS_ROOT_SIZE');
  if (rootSize !== undefined) parseBytes('ACCEPT_INCUS_ROOT_SIZE', rootSize);
  const base = repo(env, 'ACCEPT_BASE_REPO');
  const instance = repo(env, 'ACCEPT_INSTANCE_REPO');
  return {
    target: oneOf(env, 'ACCEPT_TARGET', ['lab', 'incus', 'ssh'] as const, 'lab'),
    ssh: {
      host: sshHost(env, 'ACCEPT_SSH_HOST'),
      port: port(env, 'ACCEPT_SSH_PORT', 22),
      user: sshUser(env, 'ACCEPT_SSH_USER'),
      keyFile: text(env, 'ACCEPT_SSH_KEY'),
      hostKey: sshHostKey(env, 'ACCEPT_SSH_HOST_KEY'),
    },
    incus: {
      url: url(env, 'ACCEPT_INCUS_URL', ['https:']),
      ...incusFiles(
        text(env, 'ACCEPT_INCUS_CERT_DIR'),
        {
          clientCertFile: text(env, 'ACCEPT_INCUS_CLIENT_CERT'),
          clientKeyFile: text(env, 'ACCEPT_INCUS_CLIENT_KEY'),
          serverCertFile: text(env, 'ACCEPT_INCUS_SERVER_CERT'),
        },
        fingerprint,
      ),
      serverFingerprint: fingerprint?.replaceAll(':', '').toLowerCase(),
      project,
      image: text(env, 'ACCEPT_INCUS_IMAGE'),
      instanceType: oneOf(env, 'ACCEPT_INCUS_TYPE', ['container', 'virtual-machine'] as const, 'virtual-machine'),
      memory,
      profiles: profileList(env, 'ACCEPT_INCUS_PROFILES'),
      rootSize,
      instanceConfig: instanceConfig(env, 'ACCEPT_INCUS_INSTANCE_CONFIG'),
      address: { family: oneOf(env, 'ACCEPT_INCUS_ADDRESS_FAMILY', ['inet', 'inet6'] as const, 'inet'), nic: interfaceName(env, 'ACCEPT_INCUS_NIC') },
    },
    socks,
    ageKeyFile: text(env, 'ACCEPT_AGE_KEY_FILE'),
    baseRepo: base?.url,
    instanceRepo: instance?.url,
    urlCredentials: [base?.credential, instance?.credential].filter((credential) => credential !== undefined),
    gitCredentialsFile: text(env, 'ACCEPT_GIT_CREDENTIALS_FILE'),
    hostGitCredentialsFile: text(env, 'ACCEPT_HOST_GIT_CREDENTIALS_FILE'),
    domain: text(env, 'ACCEPT_DOMAIN'),
    tlsCaFile: text(env, 'ACCEPT_TLS_CA_FILE'),
    ttlMs: parseDuration('ACCEPT_TTL', text(env, 'ACCEPT_TTL') ?? '2h'),
    ...labSections(env),
    reportsDir: text(env, 'ACCEPT_REPORTS_DIR') ?? 'reports',
    keep: oneOf(env, 'ACCEPT_KEEP', ['never', 'on-failure', 'always'] as const, 'never'),
    stateDir: text(env, 'ACCEPT_STATE_DIR') ?? '/var/lib/cc-ci-acceptance',
    ramGuidelineBytes: parseBytes('ACCEPT_RAM_GUIDELINE', text(env, 'ACCEPT_RAM_GUIDELINE') ?? '12GiB'),
    ...productionSettings(env),
    rebootCheck: flag(env, 'ACCEPT_REBOOT_CHECK'),
    names: systemNames(env),
    layout: {
      secretsFile: repoPath(env, 'ACCEPT_INSTANCE_SECRETS_FILE') ?? 'secrets/secrets.yaml',
      submodule: repoPath(env, 'ACCEPT_INSTANCE_SUBMODULE') ?? 'secrets',
      architecture: repoPath(env, 'ACCEPT_ARCHITECTURE_DOC') ?? 'architecture.md',
    },
    ci: {
      forgeUrl: url(env, 'ACCEPT_FORGE_URL', ['https:']),
      forgeOrg: slug(env, 'ACCEPT_FORGE_ORG', 'coop-cloud', 1),
      forgeProbeRepo: text(env, 'ACCEPT_FORGE_PROBE_REPO') === undefined ? undefined : slug(env, 'ACCEPT_FORGE_PROBE_REPO', '', 2),
      forgeMemberTokenFile: text(env, 'ACCEPT_FORGE_MEMBER_TOKEN_FILE'),
      forgeOutsiderTokenFile: text(env, 'ACCEPT_FORGE_OUTSIDER_TOKEN_FILE'),
      droneUrl: url(env, 'ACCEPT_DRONE_URL', ['https:']),
      droneRepo: slug(env, 'ACCEPT_DRONE_REPO', 'coop-cloud/cc-ci', 2),
      droneTokenFile: text(env, 'ACCEPT_DRONE_TOKEN_FILE'),
      d10Trigger: flag(env, 'ACCEPT_D10_TRIGGER'),
      allowHostChanges: flag(env, 'ACCEPT_ALLOW_HOST_CHANGES'),
    },
    durations: givenDurations({
      boot: duration(env, 'ACCEPT_BOOT_TIMEOUT'),
      rebuild: duration(env, 'ACCEPT_REBUILD_TIMEOUT'),
      converge: duration(env, 'ACCEPT_CONVERGE_TIMEOUT'),
      buildStart: duration(env, 'ACCEPT_BUILD_START_TIMEOUT'),
      buildFinish: duration(env, 'ACCEPT_BUILD_FINISH_TIMEOUT'),
      check: duration(env, 'ACCEPT_CHECK_TIMEOUT'),
    }),
  };
}

/** The lab's and the selftest's sections, parsed in the order docs/configuration.md lists them. */
function labSections(env: Env): Pick<Config, 'lab' | 'selftest'> {
  const dir = text(env, 'ACCEPT_LAB_DIR') ?? '/var/lib/cc-ci-acceptance/lab';
  const layout = oneOf(env, 'ACCEPT_LAB_LAYOUT', ['submodule', 'input'] as const, 'submodule');
  const sabotage = text(env, 'ACCEPT_LAB_SABOTAGE');
  const workers = smallCount(env, 'ACCEPT_SELFTEST_WORKERS', 4, 8);
  const slowMs = duration(env, 'ACCEPT_LAB_SLOW');
  return { lab: { dir, layout, sabotage, slowMs }, selftest: { workers } };
}

/** The running cc-ci and its neighbours; read by loadConfig. */
function productionSettings(env: Env): Pick<Config, 'production' | 'productionMemory' | 'neighbours'> {
  const production = instanceName(env, 'ACCEPT_PRODUCTION');
  const productionMemory = text(env, 'ACCEPT_PRODUCTION_MEMORY') ?? '4GiB';
  parseBytes('ACCEPT_PRODUCTION_MEMORY', productionMemory);
  const neighbours = instanceList(env, 'ACCEPT_NEIGHBOURS');
  if (production !== undefined && neighbours.includes(production)) {
    throw new ConfigError('ACCEPT_NEIGHBOURS', `names ${production}, which ACCEPT_PRODUCTION already names as the running cc-ci`);
  }
  return { ...(production === undefined ? {} : { production }), productionMemory, neighbours };
}

/** cc-ci's names the operator set; loadConfig reads them, and a real target requires every one. */
function systemNames(env: Env): Partial<SystemNames> {
  const params = namedValues(env, 'ACCEPT_BUILD_PARAMS', ['recipe', 'pull', 'comment'] as const, ENV_NAME);
  const stages = namedValues(env, 'ACCEPT_STAGE_WORDS', ['install', 'upgrade', 'backup-restore', 'recipe-tests', 'browser'] as const, WORDS);
  const enrolment = namedValues(env, 'ACCEPT_ENROLMENT', ['list', 'tree', 'doc'] as const, IN_REPO);
  if (enrolment && !enrolment.tree.includes('{recipe}'))
    throw new ConfigError(
      'ACCEPT_ENROLMENT',
      `tree must hold {recipe} where the recipe's name goes, such as tests/{recipe}/; got ${JSON.stringify(enrolment.tree)}`,
    );
  const names: Partial<SystemNames> = {
    oneshots: unitList(env, 'ACCEPT_ONESHOTS'),
    d8Doc: repoPath(env, 'ACCEPT_D8_DOC'),
    buildParams: params,
    stageWords: stages && {
      install: stages.install,
      upgrade: stages.upgrade,
      backupRestore: stages['backup-restore'],
      recipeTests: stages['recipe-tests'],
      browser: stages.browser,
    },
    enrolment,
    runbookDoc: repoPath(env, 'ACCEPT_RUNBOOK_DOC'),
  };
  return Object.fromEntries(Object.entries(names).filter(([, value]) => value !== undefined));
}

/** Names every ACCEPT_* variable loadConfig reads, for the docs check. */
export const CONFIG_VARIABLES = [
  'ACCEPT_TARGET',
  'ACCEPT_INCUS_URL',
  'ACCEPT_INCUS_CLIENT_CERT',
  'ACCEPT_INCUS_CLIENT_KEY',
  'ACCEPT_INCUS_SERVER_CERT',
  'ACCEPT_INCUS_SERVER_FINGERPRINT',
  'ACCEPT_INCUS_CERT_DIR',
  'ACCEPT_INCUS_PROJECT',
  'ACCEPT_INCUS_IMAGE',
  'ACCEPT_INCUS_TYPE',
  'ACCEPT_INCUS_MEMORY',
  'ACCEPT_INCUS_PROFILES',
  'ACCEPT_INCUS_ROOT_SIZE',
  'ACCEPT_INCUS_INSTANCE_CONFIG',
  'ACCEPT_INCUS_ADDRESS_FAMILY',
  'ACCEPT_INCUS_NIC',
  'ACCEPT_SOCKS',
  'ACCEPT_SSH_HOST',
  'ACCEPT_SSH_PORT',
  'ACCEPT_SSH_USER',
  'ACCEPT_SSH_KEY',
  'ACCEPT_SSH_HOST_KEY',
  'ACCEPT_AGE_KEY_FILE',
  'ACCEPT_BASE_REPO',
  'ACCEPT_INSTANCE_REPO',
  'ACCEPT_GIT_CREDENTIALS_FILE',
  'ACCEPT_HOST_GIT_CREDENTIALS_FILE',
  'ACCEPT_DOMAIN',
  'ACCEPT_TLS_CA_FILE',
  'ACCEPT_TTL',
  'ACCEPT_LAB_DIR',
  'ACCEPT_LAB_LAYOUT',
  'ACCEPT_LAB_SABOTAGE',
  'ACCEPT_SELFTEST_WORKERS',
  'ACCEPT_LAB_SLOW',
  'ACCEPT_REPORTS_DIR',
  'ACCEPT_KEEP',
  'ACCEPT_STATE_DIR',
  'ACCEPT_RAM_GUIDELINE',
  'ACCEPT_PRODUCTION',
  'ACCEPT_PRODUCTION_MEMORY',
  'ACCEPT_NEIGHBOURS',
  'ACCEPT_REBOOT_CHECK',
  'ACCEPT_ONESHOTS',
  'ACCEPT_D8_DOC',
  'ACCEPT_BUILD_PARAMS',
  'ACCEPT_STAGE_WORDS',
  'ACCEPT_ENROLMENT',
  'ACCEPT_RUNBOOK_DOC',
  'ACCEPT_INSTANCE_SECRETS_FILE',
  'ACCEPT_INSTANCE_SUBMODULE',
  'ACCEPT_ARCHITECTURE_DOC',
  'ACCEPT_FORGE_URL',
  'ACCEPT_FORGE_ORG',
  'ACCEPT_FORGE_PROBE_REPO',
  'ACCEPT_FORGE_MEMBER_TOKEN_FILE',
  'ACCEPT_FORGE_OUTSIDER_TOKEN_FILE',
  'ACCEPT_DRONE_URL',
  'ACCEPT_DRONE_REPO',
  'ACCEPT_DRONE_TOKEN_FILE',
  'ACCEPT_D10_TRIGGER',
  'ACCEPT_ALLOW_HOST_CHANGES',
  'ACCEPT_BOOT_TIMEOUT',
  'ACCEPT_REBUILD_TIMEOUT',
  'ACCEPT_CONVERGE_TIMEOUT',
  'ACCEPT_BUILD_START_TIMEOUT',
  'ACCEPT_BUILD_FINISH_TIMEOUT',
  'ACCEPT_CHECK_TIMEOUT',
] as const;
