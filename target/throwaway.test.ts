import { describe, expect, it } from 'vitest';
import { loadConfig } from '../helpers/common/config.ts';
import { HOST_PATH } from '../helpers/common/host.ts';
import { resolveLabTarget } from './providers/lab.ts';
import { throwawayConfig } from './throwaway.ts';

describe('throwawayConfig', () => {
  const lab = resolveLabTarget(loadConfig({ ACCEPT_TARGET: 'lab', ACCEPT_LAB_DIR: '/tmp/accept-lab-unit' }));

  it("gives the lab's throwaway a NixOS VM's exec PATH: one directory, on none of the harness's PATH", () => {
    const config = throwawayConfig(lab, 'run-1', new Date('2026-12-02T03:00:00Z'));
    expect(config['environment.PATH']).toBe('/usr/libexec/accept-vm-exec-path');
    expect(HOST_PATH.split(':')).not.toContain(config['environment.PATH']);
  });

  it('lets no provider extra override the labels or the memory limit', () => {
    const target = { ...lab, instanceConfig: { 'environment.PATH': '/x', 'limits.memory': '64GiB', 'user.accept.run-id': 'forged' } };
    const config = throwawayConfig(target, 'run-1', new Date('2026-12-02T03:00:00Z'));
    expect(config['limits.memory']).toBe(lab.incus.memory);
    expect(config['user.accept.run-id']).not.toBe('forged');
  });

  it('adds nothing for a target whose provider asks for nothing', () => {
    const { instanceConfig: _, ...plain } = lab;
    expect(Object.keys(throwawayConfig(plain, 'run-1', new Date())).filter((key) => key.startsWith('environment.'))).toEqual([]);
  });
});
