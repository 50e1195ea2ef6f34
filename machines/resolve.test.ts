import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONFIG_VARIABLES, SYSTEM_NAME_SETTINGS, loadConfig, realTargetDurations, systemNamesEnv } from '../helpers/common/config.ts';
import { ConfigError } from '../helpers/common/errors.ts';
import { Ledger } from '../helpers/common/ledger.ts';
import { realForgeWrites } from '../helpers/forge/writes.ts';

import { resolveIncusBacked } from './index.ts';
import { incusProvider } from './providers/incus.ts';
import { resolveIncusTarget, resolveSshTarget } from './resolve.ts';
import { EXAMPLE_NAMES, exampleProfile } from './system-profile.fixture.ts';

describe('the ssh target', () => {
  const full: Record<string, string> = {
    ACCEPT_TARGET: 'ssh',
    ACCEPT_SSH_HOST: 'cc-nix-test',
    ACCEPT_SSH_KEY: '/root/.ssh/id_ed25519',
    ACCEPT_AGE_KEY_FILE: '/root/bootstrap.age',
    ACCEPT_BASE_REPO: 'https://git.example.net/cc-ci.git',
    ACCEPT_INSTANCE_REPO: 'https://git.example.net/cc-ci-secrets.git',
    ACCEPT_DOMAIN: 'ci.commoninternet.net',
    ACCEPT_TLS_CA_FILE: '/etc/ssl/certs/ISRG_Root_X1.pem',
    ...systemNamesEnv(EXAMPLE_NAMES),
  };

  it('resolves from the settings alone, with root on port 22 through the default proxy', () => {
    expect(resolveSshTarget(loadConfig(full))).toEqual({
      kind: 'ssh',
      ssh: { host: 'cc-nix-test', port: 22, user: 'root', keyFile: '/root/.ssh/id_ed25519', hostKey: undefined },
      socks: 'socks5://127.0.0.1:1055',
      ageKeyFile: '/root/bootstrap.age',
      baseRepo: 'https://git.example.net/cc-ci.git',
      instanceRepo: 'https://git.example.net/cc-ci-secrets.git',
      domain: 'ci.commoninternet.net',
      tlsCaFile: '/etc/ssl/certs/ISRG_Root_X1.pem',
      durations: realTargetDurations(loadConfig({})),
      forgeWrites: realForgeWrites(undefined),
      profile: exampleProfile(full),
      machines: { production: { name: 'cc-nix-test', via: 'run-host', memory: '4GiB' }, neighbours: [] },
      rebootCheck: false,
    });
  });

  it('names the first missing setting, in the documented order', () => {
    const order = [
      'ACCEPT_SSH_HOST',
      'ACCEPT_SSH_KEY',
      'ACCEPT_AGE_KEY_FILE',
      'ACCEPT_BASE_REPO',
      'ACCEPT_INSTANCE_REPO',
      'ACCEPT_DOMAIN',
      'ACCEPT_TLS_CA_FILE',
    ];
    for (const [index, variable] of order.entries()) {
      // Unset this one and every later one: the message must name this one.
      const env = { ...full, ...Object.fromEntries(order.slice(index).map((name) => [name, ''])) };
      expect(() => resolveSshTarget(loadConfig(env))).toThrow(new ConfigError(variable, 'is required when ACCEPT_TARGET=ssh'));
    }
  });

  it('refuses every path that would provision or sweep, pointing at the warm project', async () => {
    const error = await resolveIncusBacked(loadConfig(full), { bringUpLab: true }).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).variable).toBe('ACCEPT_TARGET');
    expect((error as ConfigError).message).toMatch(/^ACCEPT_TARGET: is ssh: .*never provisions or destroys anything.*`npx vitest run --project warm`$/);
  });
});

const PROFILE = fileURLToPath(new URL('../profiles/b1.env.example', import.meta.url));

/** The profile as `set -a; . profiles/b1.env` reads it: KEY=VALUE lines, comments and blank lines skipped. */
async function readProfile(): Promise<Record<string, string>> {
  const env: Record<string, string> = {};
  for (const [index, line] of (await readFile(PROFILE, 'utf8')).split('\n').entries()) {
    if (line.trim() === '' || line.trimStart().startsWith('#')) continue;
    const match = /^([A-Z][A-Z0-9_]*)=(\S*)$/.exec(line);
    if (!match) throw new Error(`profiles/b1.env.example line ${index + 1} is not a plain KEY=VALUE line: ${line}`);
    env[match[1]!] = match[2]!;
  }
  return env;
}

describe('the b1 profile', () => {
  it('sets only documented variables, with the real names of the deployment', async () => {
    const env = await readProfile();
    expect(Object.keys(env).filter((name) => !(CONFIG_VARIABLES as readonly string[]).includes(name))).toEqual([]);
    expect(env).toMatchObject({
      ACCEPT_TARGET: 'incus',
      ACCEPT_SOCKS: 'socks5://127.0.0.1:1055',
      ACCEPT_INCUS_CERT_DIR: '/srv/incus-terraform-nix-vm-creator/terraform-secrets/',
      ACCEPT_INCUS_PROJECT: 'terraform-ci',
      ACCEPT_INCUS_IMAGE: 'incus-base',
      ACCEPT_INCUS_TYPE: 'virtual-machine',
      ACCEPT_INCUS_MEMORY: '4GiB',
      ACCEPT_AGE_KEY_FILE: '/srv/cc-ci/.sops/master-age.txt',
      ACCEPT_DOMAIN: 'ci.commoninternet.net',
      ACCEPT_INSTANCE_REPO: 'https://git.autonomic.zone/recipe-maintainers/cc-ci-instance.git',
    });
    const config = loadConfig(env);
    expect(config.incus).toMatchObject({
      clientCertFile: '/srv/incus-terraform-nix-vm-creator/terraform-secrets/client.crt',
      clientKeyFile: '/srv/incus-terraform-nix-vm-creator/terraform-secrets/client.key',
      serverCertFile: '/srv/incus-terraform-nix-vm-creator/terraform-secrets/server.crt',
      profiles: ['default'],
      address: { family: 'inet' },
    });
  });

  describe('with its files in a temporary directory', () => {
    let dir: string;
    /** Counts every connection: the Incus URL and the proxy both point here, so none may arrive. */
    let listener: Server;
    let connections = 0;
    let env: Record<string, string>;

    const files = {
      'client.crt': 'certs/client.crt',
      'client.key': 'certs/client.key',
      'server.crt': 'certs/server.crt',
      'master-age.txt': 'master-age.txt',
      'ca.pem': 'ca.pem',
      'host-git-credentials': 'host-git-credentials',
    };

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'accept-profile-'));
      await mkdir(join(dir, 'certs'));
      listener = createServer((socket) => {
        connections += 1;
        socket.destroy();
      });
      await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
      const port = (listener.address() as AddressInfo).port;
      env = {
        ...(await readProfile()),
        ACCEPT_INCUS_URL: `https://127.0.0.1:${port}`,
        ACCEPT_SOCKS: `socks5://127.0.0.1:${port}`,
        ACCEPT_INCUS_CERT_DIR: join(dir, 'certs'),
        ACCEPT_AGE_KEY_FILE: join(dir, files['master-age.txt']),
        ACCEPT_TLS_CA_FILE: join(dir, files['ca.pem']),
        ACCEPT_HOST_GIT_CREDENTIALS_FILE: join(dir, files['host-git-credentials']),
        ACCEPT_STATE_DIR: dir,
      };
    });

    afterAll(async () => {
      await new Promise((resolve) => listener.close(resolve));
      await rm(dir, { recursive: true, force: true });
    });

    async function allFilesBut(missing?: keyof typeof files): Promise<void> {
      for (const [name, path] of Object.entries(files)) {
        if (name === missing) await rm(join(dir, path), { force: true });
        else if (name.endsWith('git-credentials'))
          await writeFile(join(dir, path), 'https://ci-bot:not-a-real-token-0451@git.autonomic.zone\n', { mode: 0o600 });
        else await writeFile(join(dir, path), `not a real ${name}\n`);
      }
    }

    it('resolves when every file is there, taking the three Incus files from the cert dir', async () => {
      await allFilesBut();
      const resolved = resolveIncusTarget(loadConfig(env));
      expect(resolved.incus).toMatchObject({
        clientCertFile: join(dir, 'certs/client.crt'),
        clientKeyFile: join(dir, 'certs/client.key'),
        serverCertFile: join(dir, 'certs/server.crt'),
        image: 'incus-base',
        project: 'terraform-ci',
        instanceType: 'virtual-machine',
      });
    });

    const cases: [missing: keyof typeof files, variable: string, message: RegExp][] = [
      [
        'client.crt',
        'ACCEPT_INCUS_CERT_DIR',
        /^ACCEPT_INCUS_CERT_DIR: has no readable client\.crt: cannot read \S+\/certs\/client\.crt \(ENOENT\); put the file there, or name it with ACCEPT_INCUS_CLIENT_CERT$/,
      ],
      [
        'client.key',
        'ACCEPT_INCUS_CERT_DIR',
        /^ACCEPT_INCUS_CERT_DIR: has no readable client\.key: cannot read \S+\/certs\/client\.key \(ENOENT\); .*ACCEPT_INCUS_CLIENT_KEY$/,
      ],
      [
        'server.crt',
        'ACCEPT_INCUS_CERT_DIR',
        /^ACCEPT_INCUS_CERT_DIR: has no readable server\.crt: cannot read \S+\/certs\/server\.crt \(ENOENT\); .*ACCEPT_INCUS_SERVER_CERT$/,
      ],
      ['master-age.txt', 'ACCEPT_AGE_KEY_FILE', /^ACCEPT_AGE_KEY_FILE: cannot read \S+\/master-age\.txt \(ENOENT\); fix the path$/],
      ['ca.pem', 'ACCEPT_TLS_CA_FILE', /^ACCEPT_TLS_CA_FILE: cannot read \S+\/ca\.pem \(ENOENT\); fix the path$/],
    ];

    it.each(cases)('without %s, provision fails before any Incus request, naming %s and the path', async (missing, variable, message) => {
      await allFilesBut(missing);
      const config = loadConfig(env);
      expect(() => resolveIncusTarget(config)).toThrow(message);
      const error = await incusProvider(config)
        .provision({ runId: '20261201t000000-test', mode: 'cold', ledger: new Ledger(), logDir: dir })
        .then(
          () => undefined,
          (caught: unknown) => caught,
        );
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).variable).toBe(variable);
      expect((error as ConfigError).message).toMatch(message);
      expect(connections, 'no connection to the proxy or the Incus API').toBe(0);
    });

    it("without the VM's git credentials file, provision fails before any Incus request, naming ACCEPT_HOST_GIT_CREDENTIALS_FILE and the path", async () => {
      await allFilesBut('host-git-credentials');
      const error = await incusProvider(loadConfig(env))
        .provision({ runId: '20261201t000000-test', mode: 'cold', ledger: new Ledger(), logDir: dir })
        .then(
          () => undefined,
          (caught: unknown) => caught,
        );
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).message).toMatch(
        /^ACCEPT_HOST_GIT_CREDENTIALS_FILE: cannot read the git credentials file \S+\/host-git-credentials \(ENOENT\)/,
      );
      expect(connections, 'no connection to the proxy or the Incus API').toBe(0);
    });

    it('names the explicit variable, not the dir, when an explicit path wins', async () => {
      await allFilesBut();
      const config = loadConfig({ ...env, ACCEPT_INCUS_CLIENT_KEY: join(dir, 'elsewhere.key') });
      expect(() => resolveIncusTarget(config)).toThrow(/^ACCEPT_INCUS_CLIENT_KEY: cannot read \S+\/elsewhere\.key \(ENOENT\)/);
    });

    it('refuses a directory where a file belongs', async () => {
      await allFilesBut();
      expect(() => resolveIncusTarget(loadConfig({ ...env, ACCEPT_TLS_CA_FILE: dir }))).toThrow(/^ACCEPT_TLS_CA_FILE: cannot read \S+ \(not a regular file\)/);
    });
  });
});

describe("cc-ci's names on a real target", () => {
  const env = {
    ACCEPT_TARGET: 'ssh',
    ACCEPT_SSH_HOST: 'cc-nix-test',
    ACCEPT_SSH_KEY: '/k',
    ACCEPT_AGE_KEY_FILE: '/a',
    ACCEPT_BASE_REPO: 'https://g/b.git',
    ACCEPT_INSTANCE_REPO: 'https://g/i.git',
    ACCEPT_DOMAIN: 'ci.example.net',
    ACCEPT_TLS_CA_FILE: '/ca',
  };
  const named = systemNamesEnv(EXAMPLE_NAMES);

  it("a run with none of them is one ERROR naming every setting, before anything is created: never the lab's names", () => {
    const error = (() => {
      try {
        resolveSshTarget(loadConfig(env));
      } catch (caught) {
        return caught;
      }
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).variable).toBe('ACCEPT_ONESHOTS');
    for (const setting of Object.values(SYSTEM_NAME_SETTINGS)) expect((error as Error).message).toContain(setting);
    expect((error as Error).message).toMatch(
      /required when ACCEPT_TARGET=ssh: cc-ci's own names, which neither the DoD nor the seed gives \(profiles\/b1\.env\.example/,
    );
  });

  it.each(Object.values(SYSTEM_NAME_SETTINGS))('a run without %s alone is an ERROR naming it alone', (setting) => {
    const { [setting]: _left, ...rest } = named;
    expect(() => resolveSshTarget(loadConfig({ ...env, ...rest }))).toThrow(new RegExp(`^${setting}: is required when ACCEPT_TARGET=ssh: cc-ci's own names`));
  });

  it('with every one set, the profile holds what the settings say', () => {
    const profile = resolveSshTarget(
      loadConfig({
        ...env,
        ...named,
        ACCEPT_ONESHOTS: 'a.service',
        ACCEPT_BUILD_PARAMS: 'recipe=CCCI_RECIPE,pull=CCCI_PR,comment=CCCI_COMMENT',
        ACCEPT_ENROLMENT: 'list=recipes.txt,tree=recipes/{recipe}/,doc=docs/enrolling.md',
        ACCEPT_RUNBOOK_DOC: 'docs/ops.md',
      }),
    ).profile;
    expect(profile.host.oneshots).toEqual(['a.service']);
    expect(profile.build.params).toEqual({ recipe: 'CCCI_RECIPE', pull: 'CCCI_PR', comment: 'CCCI_COMMENT' });
    expect(profile.recipes).toMatchObject({ enrolled: 'recipes.txt', tree: 'recipes/{recipe}/' });
    expect(profile.docs).toMatchObject({ enroll: 'docs/enrolling.md', runbook: 'docs/ops.md', d8Document: EXAMPLE_NAMES.d8Doc });
  });
});
