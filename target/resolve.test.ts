import { describe, expect, it } from 'vitest';
import { loadConfig } from '../helpers/common/config.ts';
import { ConfigError } from '../helpers/common/errors.ts';
import { resolveIncusBacked } from './index.ts';
import { resolveSshTarget } from './resolve.ts';

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
    });
  });

  it('names the first missing setting, in the documented order', () => {
    const order = ['ACCEPT_SSH_HOST', 'ACCEPT_SSH_KEY', 'ACCEPT_AGE_KEY_FILE', 'ACCEPT_BASE_REPO', 'ACCEPT_INSTANCE_REPO', 'ACCEPT_DOMAIN', 'ACCEPT_TLS_CA_FILE'];
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
