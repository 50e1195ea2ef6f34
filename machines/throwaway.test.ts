import { describe, expect, it } from 'vitest';
import { loadConfig } from '../helpers/common/config.ts';
import { resolveLabTarget } from './providers/lab.ts';
import { throwawayConfig } from './throwaway.ts';

describe('throwawayConfig', () => {
  const lab = resolveLabTarget(loadConfig({ ACCEPT_TARGET: 'lab', ACCEPT_LAB_DIR: '/tmp/accept-lab-unit' }));

  it("gives the lab's container, from its creation, the exec PATH of a NixOS VM's agent: the image's sh-and-env directory", () => {
    const config = throwawayConfig(lab, 'run-1', new Date('2026-12-02T03:00:00Z'));
    expect(config['environment.PATH']).toBe('/usr/libexec/accept-vm-exec-path');
  });

  it('is the labels of this run, the memory limit and ACCEPT_INCUS_INSTANCE_CONFIG, and nothing else', () => {
    const incus = resolveLabTarget(
      loadConfig({ ACCEPT_TARGET: 'lab', ACCEPT_LAB_DIR: '/tmp/accept-lab-unit', ACCEPT_INCUS_INSTANCE_CONFIG: 'security.secureboot=false, limits.cpu=2' }),
    );
    const config = throwawayConfig(incus, 'run-1', new Date('2026-12-02T03:00:00Z'));
    expect(config['limits.memory']).toBe(lab.incus.memory);
    expect(config['user.accept.run-id']).toBe('run-1');
    expect(
      Object.keys(config)
        .filter((key) => key !== 'limits.memory' && !key.startsWith('user.accept.'))
        .sort(),
    ).toEqual(['environment.PATH', 'limits.cpu', 'security.secureboot']);
  });

  it('refuses ACCEPT_INCUS_INSTANCE_CONFIG that sets what the harness sets, naming the variable and the key', () => {
    expect(() => loadConfig({ ACCEPT_INCUS_INSTANCE_CONFIG: 'limits.memory=8GiB' })).toThrow(
      /ACCEPT_INCUS_INSTANCE_CONFIG.*limits\.memory.*ACCEPT_INCUS_MEMORY/,
    );
    expect(() => loadConfig({ ACCEPT_INCUS_INSTANCE_CONFIG: 'user.accept.run-id=x' })).toThrow(/ACCEPT_INCUS_INSTANCE_CONFIG.*user\.accept\.run-id/);
    expect(() => loadConfig({ ACCEPT_INCUS_INSTANCE_CONFIG: 'secureboot' })).toThrow(/ACCEPT_INCUS_INSTANCE_CONFIG.*"secureboot"/);
    expect(() => loadConfig({ ACCEPT_INCUS_INSTANCE_CONFIG: 'boot.autostart=false' })).toThrow(
      /ACCEPT_INCUS_INSTANCE_CONFIG: sets boot\.autostart: only limits\.\* and security\.\* keys pass through/,
    );
  });
});
