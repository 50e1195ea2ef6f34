import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  CONFIG_VARIABLES,
  DURATION_VARIABLES,
  systemNamesEnv,
  type SystemNames,
  REAL_TARGET_DURATIONS,
  incusFileSetting,
  loadConfig,
  parseBytes,
  parseDuration,
  realTargetDurations,
  type DurationName,
} from './config.ts';
import { ConfigError } from './errors.ts';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Runs loadConfig and returns the ConfigError it throws, failing the test if it does not. */
function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

// The defaults loadConfig applies itself; the lab fills other unset values later, in resolve.ts.
const CODE_DEFAULTS: Record<string, string> = {
  ACCEPT_TARGET: 'lab',
  ACCEPT_SSH_PORT: '22',
  ACCEPT_SSH_USER: 'root',
  ACCEPT_INCUS_PROJECT: 'terraform-ci',
  ACCEPT_INCUS_TYPE: 'virtual-machine',
  ACCEPT_INCUS_MEMORY: '4GiB',
  ACCEPT_INCUS_PROFILES: 'default',
  ACCEPT_INCUS_ADDRESS_FAMILY: 'inet',
  ACCEPT_TTL: '2h',
  ACCEPT_LAB_DIR: '/var/lib/cc-ci-acceptance/lab',
  ACCEPT_LAB_LAYOUT: 'submodule',
  ACCEPT_REPORTS_DIR: 'reports',
  ACCEPT_KEEP: 'never',
  ACCEPT_STATE_DIR: '/var/lib/cc-ci-acceptance',
  ACCEPT_FORGE_ORG: 'coop-cloud',
  ACCEPT_DRONE_REPO: 'coop-cloud/cc-ci',
  ACCEPT_D10_TRIGGER: '0',
  ACCEPT_ALLOW_HOST_CHANGES: '0',
};

describe('loadConfig defaults', () => {
  it('targets the lab with the documented defaults when nothing is set', () => {
    expect(loadConfig({})).toEqual({
      target: 'lab',
      ssh: { host: undefined, port: 22, user: 'root', keyFile: undefined, hostKey: undefined },
      incus: {
        url: undefined,
        clientCertFile: undefined,
        clientKeyFile: undefined,
        serverCertFile: undefined,
        serverFingerprint: undefined,
        project: 'terraform-ci',
        image: undefined,
        instanceType: 'virtual-machine',
        memory: '4GiB',
        profiles: ['default'],
        rootSize: undefined,
        instanceConfig: {},
        address: { family: 'inet', nic: undefined },
      },
      socks: undefined,
      ageKeyFile: undefined,
      baseRepo: undefined,
      instanceRepo: undefined,
      urlCredentials: [],
      gitCredentialsFile: undefined,
      hostGitCredentialsFile: undefined,
      domain: undefined,
      tlsCaFile: undefined,
      ttlMs: 2 * 3_600_000,
      lab: { dir: '/var/lib/cc-ci-acceptance/lab', layout: 'submodule', sabotage: undefined, slowMs: undefined },
      selftest: { workers: 4 },
      reportsDir: 'reports',
      keep: 'never',
      stateDir: '/var/lib/cc-ci-acceptance',
      ramGuidelineBytes: 12 * 2 ** 30,
      productionMemory: '4GiB',
      neighbours: [],
      rebootCheck: false,
      names: {},
      layout: { secretsFile: 'secrets/secrets.yaml', submodule: 'secrets', architecture: 'architecture.md' },
      ci: {
        forgeUrl: undefined,
        forgeOrg: 'coop-cloud',
        forgeMemberTokenFile: undefined,
        forgeOutsiderTokenFile: undefined,
        droneUrl: undefined,
        droneRepo: 'coop-cloud/cc-ci',
        droneTokenFile: undefined,
        d10Trigger: false,
        allowHostChanges: false,
      },
      durations: {},
    });
  });

  it('treats empty and blank values as unset', () => {
    expect(loadConfig({ ACCEPT_TARGET: '', ACCEPT_TTL: '   ', ACCEPT_INCUS_URL: '\t' })).toEqual(loadConfig({}));
  });

  it.each(Object.entries(CODE_DEFAULTS))('setting %s to its default %s changes nothing', (name, value) => {
    expect(loadConfig({ [name]: value })).toEqual(loadConfig({}));
  });

  it('trims values and reads every setting', () => {
    const config = loadConfig({
      ACCEPT_TARGET: ' incus ',
      ACCEPT_INCUS_URL: 'https://b1.example.net:8443',
      ACCEPT_INCUS_CLIENT_CERT: '/etc/accept/client.crt',
      ACCEPT_INCUS_CLIENT_KEY: '/etc/accept/client.key',
      ACCEPT_INCUS_SERVER_CERT: '/etc/accept/server.crt',
      ACCEPT_INCUS_PROJECT: 'other_project.1',
      ACCEPT_INCUS_IMAGE: 'debian/12',
      ACCEPT_INCUS_TYPE: 'container',
      ACCEPT_INCUS_MEMORY: '512MiB',
      ACCEPT_INCUS_PROFILES: ' default , vm-nixos ',
      ACCEPT_INCUS_ROOT_SIZE: '40GiB',
      ACCEPT_INCUS_ADDRESS_FAMILY: 'inet6',
      ACCEPT_INCUS_NIC: 'enp5s0',
      ACCEPT_SOCKS: 'socks5h://127.0.0.1:1080',
      ACCEPT_AGE_KEY_FILE: '/etc/accept/key.txt',
      ACCEPT_BASE_REPO: 'https://git.example.net/cc-ci.git',
      ACCEPT_INSTANCE_REPO: 'https://git.example.net/cc-ci-secrets.git',
      ACCEPT_DOMAIN: 'ci.example.net',
      ACCEPT_TLS_CA_FILE: '/etc/ssl/certs/ISRG_Root_X1.pem',
      ACCEPT_TTL: '90m',
      ACCEPT_LAB_DIR: '/tmp/lab',
      ACCEPT_LAB_LAYOUT: 'input',
      ACCEPT_LAB_SABOTAGE: 'served-cert-other-ca',
      ACCEPT_REPORTS_DIR: 'out',
      ACCEPT_KEEP: 'always',
      ACCEPT_STATE_DIR: '/tmp/state',
      ACCEPT_SSH_HOST: ' cc-nix-test.example.net ',
      ACCEPT_SSH_PORT: '2222',
      ACCEPT_SSH_USER: 'deploy',
      ACCEPT_SSH_KEY: '/etc/accept/id_ed25519',
      ACCEPT_SSH_HOST_KEY: `SHA256:${'A'.repeat(43)}=`,
    });
    expect(config).toMatchObject({
      target: 'incus',
      ssh: { host: 'cc-nix-test.example.net', port: 2222, user: 'deploy', keyFile: '/etc/accept/id_ed25519', hostKey: `SHA256:${'A'.repeat(43)}` },
      incus: {
        url: 'https://b1.example.net:8443',
        clientCertFile: '/etc/accept/client.crt',
        clientKeyFile: '/etc/accept/client.key',
        serverCertFile: '/etc/accept/server.crt',
        project: 'other_project.1',
        image: 'debian/12',
        instanceType: 'container',
        memory: '512MiB',
        profiles: ['default', 'vm-nixos'],
        rootSize: '40GiB',
        address: { family: 'inet6', nic: 'enp5s0' },
      },
      socks: 'socks5h://127.0.0.1:1080',
      ttlMs: 90 * 60_000,
      lab: { dir: '/tmp/lab', layout: 'input', sabotage: 'served-cert-other-ca' },
      keep: 'always',
      stateDir: '/tmp/state',
    });
  });

  it('normalises a server fingerprint to lowercase hex without colons', () => {
    const hex = 'ab'.repeat(32);
    const colons = Array.from({ length: 32 }, () => 'AB').join(':');
    expect(loadConfig({ ACCEPT_INCUS_SERVER_FINGERPRINT: colons }).incus.serverFingerprint).toBe(hex);
    expect(loadConfig({ ACCEPT_INCUS_SERVER_FINGERPRINT: hex.toUpperCase() }).incus.serverFingerprint).toBe(hex);
  });
});

describe('ACCEPT_INCUS_CERT_DIR', () => {
  const dir = '/srv/incus-terraform-nix-vm-creator/terraform-secrets/';

  it('fills the three Incus files from the directory', () => {
    expect(loadConfig({ ACCEPT_INCUS_CERT_DIR: dir }).incus).toMatchObject({
      clientCertFile: `${dir}client.crt`,
      clientKeyFile: `${dir}client.key`,
      serverCertFile: `${dir}server.crt`,
      certDir: dir,
    });
  });

  it('lets each explicit path win, and names which setting gave each file', () => {
    const incus = loadConfig({ ACCEPT_INCUS_CERT_DIR: dir, ACCEPT_INCUS_CLIENT_KEY: '/elsewhere/key.pem' }).incus;
    expect(incus.clientKeyFile).toBe('/elsewhere/key.pem');
    expect(incus.clientCertFile).toBe(`${dir}client.crt`);
    expect(incusFileSetting(incus, 'clientKeyFile')).toEqual({ variable: 'ACCEPT_INCUS_CLIENT_KEY' });
    expect(incusFileSetting(incus, 'clientCertFile')).toEqual({ variable: 'ACCEPT_INCUS_CERT_DIR', inDir: 'client.crt', instead: 'ACCEPT_INCUS_CLIENT_CERT' });
    expect(incusFileSetting(loadConfig({ ACCEPT_INCUS_SERVER_CERT: '/s.crt' }).incus, 'serverCertFile')).toEqual({ variable: 'ACCEPT_INCUS_SERVER_CERT' });
  });

  it('takes no server.crt from the directory when a fingerprint pins the server', () => {
    const incus = loadConfig({ ACCEPT_INCUS_CERT_DIR: dir, ACCEPT_INCUS_SERVER_FINGERPRINT: 'ab'.repeat(32) }).incus;
    expect(incus.serverCertFile).toBeUndefined();
    expect(incus.clientCertFile).toBe(`${dir}client.crt`);
  });

  it('is not recorded when every file is named explicitly', () => {
    const env = { ACCEPT_INCUS_CERT_DIR: dir, ACCEPT_INCUS_CLIENT_CERT: '/c', ACCEPT_INCUS_CLIENT_KEY: '/k', ACCEPT_INCUS_SERVER_CERT: '/s' };
    expect(loadConfig(env).incus.certDir).toBeUndefined();
  });
});

describe('loadConfig validation names the variable at fault', () => {
  const bad: [variable: string, value: string, message: RegExp][] = [
    ['ACCEPT_TARGET', 'local', /must be one of lab, incus, ssh; got "local"/],
    ['ACCEPT_INCUS_URL', 'http://b1.example.net:8443', /must use https:/],
    ['ACCEPT_INCUS_URL', 'b1.example.net:8443', /must use https:; got "b1.example.net:8443"/],
    ['ACCEPT_INCUS_URL', 'not a url', /is not a URL/],
    ['ACCEPT_SOCKS', 'http://127.0.0.1:1055', /must use socks5: or socks5h:/],
    ['ACCEPT_SOCKS', 'socks4://127.0.0.1:1055', /must use socks5: or socks5h:/],
    ['ACCEPT_SOCKS', '127.0.0.1 1055', /is not a URL/],
    ['ACCEPT_INCUS_SERVER_FINGERPRINT', 'abc', /SHA-256 fingerprint/],
    ['ACCEPT_INCUS_SERVER_FINGERPRINT', 'a'.repeat(63), /SHA-256 fingerprint/],
    ['ACCEPT_INCUS_SERVER_FINGERPRINT', 'g'.repeat(64), /SHA-256 fingerprint/],
    ['ACCEPT_INCUS_PROJECT', '-leading-hyphen', /is not a valid project name/],
    ['ACCEPT_INCUS_PROJECT', 'with space', /is not a valid project name/],
    ['ACCEPT_INCUS_PROJECT', 'a/b', /is not a valid project name/],
    ['ACCEPT_INCUS_MEMORY', '4G', /must be a size such as 4GiB/],
    ['ACCEPT_INCUS_MEMORY', 'lots', /must be a size such as 4GiB/],
    ['ACCEPT_INCUS_PROFILES', 'default,', /must be a comma-separated list of Incus profile names such as default,vm-nixos; got "default,"/],
    ['ACCEPT_INCUS_PROFILES', 'default,with space', /must be a comma-separated list of Incus profile names.*got "with space"/],
    ['ACCEPT_INCUS_PROFILES', 'default,default', /names a profile twice/],
    ['ACCEPT_INCUS_ROOT_SIZE', '40G', /must be a size such as 4GiB/],
    ['ACCEPT_INCUS_ADDRESS_FAMILY', 'ipv4', /must be one of inet, inet6; got "ipv4"/],
    ['ACCEPT_INCUS_NIC', 'a/b', /must be a network interface name inside the guest/],
    ['ACCEPT_INCUS_NIC', 'much-too-long-name0', /must be a network interface name/],
    ['ACCEPT_TTL', 'soon', /must be a duration/],
    ['ACCEPT_TTL', '0h', /longer than zero/],
    ['ACCEPT_TTL', '2', /must be a duration/],
    ['ACCEPT_KEEP', 'yes', /must be one of never, on-failure, always; got "yes"/],
    ['ACCEPT_LAB_LAYOUT', 'flake', /must be one of submodule, input/],
    ['ACCEPT_SELFTEST_WORKERS', '0', /must be a whole number from 1 to 8; got "0"/],
    ['ACCEPT_SELFTEST_WORKERS', '9', /must be a whole number from 1 to 8/],
    ['ACCEPT_SELFTEST_WORKERS', 'two', /must be a whole number from 1 to 8/],
    ['ACCEPT_INCUS_TYPE', 'vm', /must be one of container, virtual-machine/],
    ['ACCEPT_SSH_HOST', 'root@cc-nix-test', /put the user in ACCEPT_SSH_USER/],
    ['ACCEPT_SSH_HOST', 'cc-nix-test:22', /put the port in ACCEPT_SSH_PORT/],
    ['ACCEPT_SSH_HOST', '[::1]:22', /put the port in ACCEPT_SSH_PORT/],
    ['ACCEPT_SSH_HOST', 'two words', /must be a DNS name or an IP address/],
    ['ACCEPT_SSH_HOST', '-leading.example', /must be a DNS name or an IP address/],
    ['ACCEPT_SSH_PORT', '0', /must be a TCP port, 1 to 65535; got "0"/],
    ['ACCEPT_SSH_PORT', '65536', /must be a TCP port/],
    ['ACCEPT_SSH_PORT', 'ssh', /must be a TCP port/],
    ['ACCEPT_SSH_PORT', '22.5', /must be a TCP port/],
    ['ACCEPT_SSH_USER', 'root user', /is not a valid user name/],
    ['ACCEPT_SSH_USER', '-oProxyCommand=x', /is not a valid user name/],
    ['ACCEPT_SSH_HOST_KEY', 'ab:cd:ef', /must be a host key fingerprint as `ssh-keygen -lf` prints it/],
    ['ACCEPT_SSH_HOST_KEY', `MD5:${'a'.repeat(43)}`, /must be a host key fingerprint/],
    ['ACCEPT_SSH_HOST_KEY', `SHA256:${'a'.repeat(42)}`, /must be a host key fingerprint/],
    ['ACCEPT_BOOT_TIMEOUT', '10', /must be a duration such as 90s, 30m, 2h or 1d; got "10"/],
    ['ACCEPT_REBUILD_TIMEOUT', '45 min', /must be a duration/],
    ['ACCEPT_CONVERGE_TIMEOUT', '0m', /longer than zero/],
    ['ACCEPT_BUILD_START_TIMEOUT', '1.5m', /must be a duration/],
    ['ACCEPT_BUILD_FINISH_TIMEOUT', 'forever', /must be a duration/],
    ['ACCEPT_CHECK_TIMEOUT', '-1m', /must be a duration/],
    ['ACCEPT_LAB_SLOW', 'very', /must be a duration/],
  ];

  it.each(bad)('%s=%j', (variable, value, message) => {
    const error = configError({ [variable]: value });
    expect(error.variable).toBe(variable);
    expect(error.message.startsWith(`${variable}: `)).toBe(true);
    expect(error.message).toMatch(message);
    expect(error.verdict).toBe('ERROR');
  });

  it('covers every validated variable', () => {
    expect(new Set(bad.map(([variable]) => variable))).toEqual(
      new Set([
        'ACCEPT_TARGET',
        'ACCEPT_INCUS_URL',
        'ACCEPT_SOCKS',
        'ACCEPT_INCUS_SERVER_FINGERPRINT',
        'ACCEPT_INCUS_PROJECT',
        'ACCEPT_INCUS_MEMORY',
        'ACCEPT_INCUS_PROFILES',
        'ACCEPT_INCUS_ROOT_SIZE',
        'ACCEPT_INCUS_ADDRESS_FAMILY',
        'ACCEPT_INCUS_NIC',
        'ACCEPT_TTL',
        'ACCEPT_KEEP',
        'ACCEPT_LAB_LAYOUT',
        'ACCEPT_SELFTEST_WORKERS',
        'ACCEPT_INCUS_TYPE',
        'ACCEPT_SSH_HOST',
        'ACCEPT_SSH_PORT',
        'ACCEPT_SSH_USER',
        'ACCEPT_SSH_HOST_KEY',
        ...Object.values(DURATION_VARIABLES),
        'ACCEPT_LAB_SLOW',
      ]),
    );
  });

  it('accepts the forms of ACCEPT_SSH_HOST that ssh itself takes', () => {
    expect(loadConfig({ ACCEPT_SSH_HOST: 'cc-nix-test' }).ssh.host).toBe('cc-nix-test');
    expect(loadConfig({ ACCEPT_SSH_HOST: '10.0.0.5' }).ssh.host).toBe('10.0.0.5');
    expect(loadConfig({ ACCEPT_SSH_HOST: 'fd42::5' }).ssh.host).toBe('fd42::5');
    expect(loadConfig({ ACCEPT_SSH_HOST: '[fd42::5]' }).ssh.host).toBe('fd42::5');
    expect(loadConfig({ ACCEPT_TARGET: 'ssh' }).target).toBe('ssh');
  });
});

describe("cc-ci's own names", () => {
  const names: SystemNames = {
    oneshots: ['a.service', 'b.service'],
    d8Doc: 'docs/d8.md',
    buildParams: { recipe: 'CCCI_RECIPE', pull: 'CCCI_PR', comment: 'CCCI_COMMENT' },
    stageWords: { install: 'deploy', upgrade: 'upgrade', backupRestore: 'backup|restore', recipeTests: 'local tests', browser: 'playwright' },
    enrolment: { list: 'recipes.txt', tree: 'recipes/{recipe}/', doc: 'docs/enrol.md' },
    runbookDoc: 'docs/ops.md',
  };

  it('reads back what systemNamesEnv writes, and nothing when unset', () => {
    expect(loadConfig(systemNamesEnv(names)).names).toEqual(names);
    expect(loadConfig({}).names).toEqual({});
  });

  it.each([
    ['ACCEPT_BUILD_PARAMS', 'recipe=RECIPE,pull=PR', /^ACCEPT_BUILD_PARAMS: lacks comment: it must be recipe=…,pull=…,comment=…$/],
    [
      'ACCEPT_BUILD_PARAMS',
      'recipe=RECIPE,pull=PR,comment=COMMENT_ID,branch=B',
      /^ACCEPT_BUILD_PARAMS: has no key branch: its keys are recipe, pull, comment$/,
    ],
    [
      'ACCEPT_BUILD_PARAMS',
      'recipe=RECIPE,pull=PR,comment=COMMENT-ID',
      /^ACCEPT_BUILD_PARAMS: comment must be an environment variable name such as RECIPE; got "COMMENT-ID"$/,
    ],
    ['ACCEPT_BUILD_PARAMS', 'recipe=A,recipe=B,pull=PR,comment=C', /^ACCEPT_BUILD_PARAMS: sets recipe twice$/],
    [
      'ACCEPT_STAGE_WORDS',
      'install=install,upgrade=upgrade,backup-restore=backup|restore,recipe-tests=recipe|local,browser=play.*',
      /^ACCEPT_STAGE_WORDS: browser must be words separated by \|/,
    ],
    ['ACCEPT_STAGE_WORDS', 'install=install', /^ACCEPT_STAGE_WORDS: lacks upgrade, backup-restore, recipe-tests, browser/],
    ['ACCEPT_ENROLMENT', 'list=tests/enrolled,tree=tests/,doc=docs/enroll.md', /^ACCEPT_ENROLMENT: tree must hold \{recipe\}/],
    [
      'ACCEPT_ENROLMENT',
      'list=/etc/enrolled,tree=tests/{recipe}/,doc=docs/enroll.md',
      /^ACCEPT_ENROLMENT: list must be a path inside the base repo; got "\/etc\/enrolled"$/,
    ],
    ['ACCEPT_RUNBOOK_DOC', '../runbook.md', /^ACCEPT_RUNBOOK_DOC: must be a path inside the repo/],
    ['ACCEPT_D8_DOC', '/docs/d8.md', /^ACCEPT_D8_DOC: must be a path inside the repo/],
  ])('%s=%s is refused, naming the setting and what is wrong', (variable, value, message) => {
    expect(() => loadConfig({ [variable]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [variable]: value })).toThrow(message);
  });
});

describe('durations', () => {
  const MIN = 60_000;

  it('a real target gets the documented defaults when nothing is set: boot 10m, rebuild 45m, converge 10m, build start 5m, build finish 40m, check 10m', () => {
    expect(realTargetDurations(loadConfig({}))).toEqual({
      boot: 10 * MIN,
      rebuild: 45 * MIN,
      converge: 10 * MIN,
      buildStart: 5 * MIN,
      buildFinish: 40 * MIN,
      check: 10 * MIN,
    });
  });

  it('reads each one from its variable, and leaves the others to the target', () => {
    const config = loadConfig({ ACCEPT_REBUILD_TIMEOUT: '90m', ACCEPT_BUILD_FINISH_TIMEOUT: ' 2h ', ACCEPT_LAB_SLOW: '135s' });
    expect(config.durations).toEqual({ rebuild: 90 * MIN, buildFinish: 120 * MIN });
    expect(config.lab.slowMs).toBe(135_000);
    expect(realTargetDurations(config)).toMatchObject({ boot: 10 * MIN, rebuild: 90 * MIN, buildFinish: 120 * MIN });
  });

  it.each(Object.entries(DURATION_VARIABLES) as [DurationName, string][])('%s is read from %s', (name, variable) => {
    expect(loadConfig({ [variable]: '7s' }).durations).toEqual({ [name]: 7000 });
  });

  it.each(Object.entries(REAL_TARGET_DURATIONS) as [DurationName, string][])('setting %s to its default %s changes nothing', (name, value) => {
    expect(realTargetDurations(loadConfig({ [DURATION_VARIABLES[name]]: value }))).toEqual(realTargetDurations(loadConfig({})));
  });
});

describe('parseDuration', () => {
  it.each([
    ['90s', 90_000],
    ['30m', 1_800_000],
    ['2h', 7_200_000],
    ['1d', 86_400_000],
    ['0001m', 60_000],
  ])('%s is %d ms', (value, ms) => {
    expect(parseDuration('ACCEPT_TTL', value)).toBe(ms);
  });

  it.each(['', '0s', '0d', '1.5h', '2H', '2 h', ' 2h', '-1h', '2w', 'h', '1h30m'])('rejects %j, naming the variable', (value) => {
    expect(() => parseDuration('SOME_VAR', value)).toThrow(ConfigError);
    expect(() => parseDuration('SOME_VAR', value)).toThrow(/^SOME_VAR: /);
  });
});

describe('parseBytes', () => {
  it.each([
    ['4GiB', 4 * 2 ** 30],
    ['512MiB', 512 * 2 ** 20],
    ['1KiB', 1024],
    ['2TiB', 2 * 2 ** 40],
    ['12GB', 12e9],
    ['3MB', 3e6],
    ['1KB', 1000],
    ['1TB', 1e12],
    ['100B', 100],
    ['1.5GiB', 1.5 * 2 ** 30],
    ['4 GiB', 4 * 2 ** 30],
  ])('%s is %d bytes', (value, bytes) => {
    expect(parseBytes('ACCEPT_INCUS_MEMORY', value)).toBe(bytes);
  });

  it.each(['', '4', '4G', '4gib', '4GIB', 'GiB', '-1GiB', '4 GiB ', '1e3MB', '4PiB'])('rejects %j, naming the variable', (value) => {
    expect(() => parseBytes('SOME_VAR', value)).toThrow(ConfigError);
    expect(() => parseBytes('SOME_VAR', value)).toThrow(/^SOME_VAR: /);
  });
});

// --- the variables, the docs and the code agree -----------------------------------------

const ACCEPT_NAME = /\bACCEPT_[A-Z0-9_]*[A-Z0-9]\b/g;

/**
 * Names in code that are not configuration, each with why. ACCEPT_REAPER_SPEC carries the
 * reaper's job from the harness to its own child process (machines/reaper.ts); no user sets it.
 */
const INTERNAL_NAMES = new Set(['ACCEPT_REAPER_SPEC']);

/** Splits a markdown table row on unescaped pipes. */
function cells(row: string): string[] {
  return row
    .trim()
    .replace(/^\|/, '')
    .replace(/\|$/, '')
    .split(/(?<!\\)\|/)
    .map((cell) => cell.trim());
}

/** The rows of the one table in docs/configuration.md whose header starts `variable | default`. */
async function docRows(): Promise<{ name: string; cells: string[] }[]> {
  const text = await readFile(join(REPO_ROOT, 'docs/configuration.md'), 'utf8');
  const tables: string[][][] = [];
  let current: string[][] | undefined;
  for (const line of text.split('\n')) {
    if (!line.trimStart().startsWith('|')) {
      current = undefined;
      continue;
    }
    if (!current) tables.push((current = []));
    current.push(cells(line));
  }
  const variableTables = tables.filter(([header]) => header?.[0] === 'variable' && header[1] === 'default');
  expect(variableTables, 'docs/configuration.md should have one `| variable | default | …` table').toHaveLength(1);
  const rows: { name: string; cells: string[] }[] = [];
  // Header and separator first; group rows carry no ACCEPT_* name.
  for (const row of variableTables[0]!.slice(2)) {
    for (const name of row[0]?.match(ACCEPT_NAME) ?? []) rows.push({ name, cells: row });
  }
  return rows;
}

/** The harness's own source, without its tests and dependencies. */
async function sourceFiles(): Promise<string[]> {
  const files: string[] = [join(REPO_ROOT, 'vitest.config.ts')];
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules' && !entry.name.startsWith('.')) await walk(path);
      } else if (/\.(ts|mjs)$/.test(entry.name) && !entry.name.endsWith('.test.ts')) {
        files.push(path);
      }
    }
  };
  for (const dir of ['helpers', 'machines', 'lab', 'cli', 'acceptance', 'reporting', 'bin']) await walk(join(REPO_ROOT, dir));
  return files;
}

describe('CONFIG_VARIABLES, docs/configuration.md and the code agree', () => {
  it('lists each variable once', () => {
    expect(new Set(CONFIG_VARIABLES).size).toBe(CONFIG_VARIABLES.length);
  });

  it('names only variables that loadConfig reads', async () => {
    const source = await readFile(join(REPO_ROOT, 'helpers/common/config.ts'), 'utf8');
    const body = source.slice(source.indexOf('export function loadConfig'), source.indexOf('export const CONFIG_VARIABLES'));
    const read = new Set(body.match(ACCEPT_NAME));
    expect([...CONFIG_VARIABLES].filter((name) => !read.has(name))).toEqual([]);
    expect([...read].filter((name) => !(CONFIG_VARIABLES as readonly string[]).includes(name))).toEqual([]);
  });

  it('has exactly one docs table row per variable, and none for unknown names', async () => {
    const rows = await docRows();
    const documented = rows.map((row) => row.name);
    expect(
      documented.filter((name, index) => documented.indexOf(name) !== index),
      'documented twice',
    ).toEqual([]);
    expect(
      documented.filter((name) => !(CONFIG_VARIABLES as readonly string[]).includes(name)),
      'not in CONFIG_VARIABLES',
    ).toEqual([]);
    expect(
      CONFIG_VARIABLES.filter((name) => !documented.includes(name)),
      'missing from docs/configuration.md',
    ).toEqual([]);
  });

  it('mentions no unknown ACCEPT_* name anywhere in the docs', async () => {
    const text = await readFile(join(REPO_ROOT, 'docs/configuration.md'), 'utf8');
    const unknown = (text.match(ACCEPT_NAME) ?? []).filter((name) => !(CONFIG_VARIABLES as readonly string[]).includes(name));
    expect(unknown).toEqual([]);
  });

  it("documents each loadConfig default in the variable's row", async () => {
    const rows = await docRows();
    for (const [name, value] of Object.entries(CODE_DEFAULTS)) {
      const row = rows.find((candidate) => candidate.name === name);
      expect(row?.cells[1], `default of ${name}`).toContain(`\`${value}\``);
    }
  });

  it("documents each real-target duration default in the variable's row", async () => {
    const rows = await docRows();
    for (const [name, value] of Object.entries(REAL_TARGET_DURATIONS)) {
      const variable = DURATION_VARIABLES[name as DurationName];
      expect(rows.find((candidate) => candidate.name === variable)?.cells[1], `default of ${variable}`).toMatch(new RegExp(`^\`${value}\``));
    }
  });

  it('uses no ACCEPT_* name in code that is neither documented nor internal', async () => {
    const files = await sourceFiles();
    expect(files.length).toBeGreaterThan(20);
    const seen = new Map<string, Set<string>>();
    for (const file of files) {
      for (const name of (await readFile(file, 'utf8')).match(ACCEPT_NAME) ?? []) {
        if (!seen.has(name)) seen.set(name, new Set());
        seen.get(name)!.add(relative(REPO_ROOT, file));
      }
    }
    const undocumented = [...seen]
      .filter(([name]) => !(CONFIG_VARIABLES as readonly string[]).includes(name) && !INTERNAL_NAMES.has(name))
      .map(([name, where]) => `${name} (${[...where].join(', ')})`);
    expect(undocumented, 'add these to CONFIG_VARIABLES and docs/configuration.md, or to INTERNAL_NAMES with a reason').toEqual([]);
    // A stale allow-list entry would let a real variable through unnoticed later.
    for (const name of INTERNAL_NAMES) {
      expect(seen.has(name), `${name} is allow-listed but no longer used`).toBe(true);
      expect(CONFIG_VARIABLES as readonly string[]).not.toContain(name);
    }
  });
});
