import { describe, expect, it } from 'vitest';
import { loadConfig } from '../helpers/common/config.ts';
import { resolveLabTarget } from './providers/lab.ts';
import { throwawayConfig } from './throwaway.ts';

describe('throwawayConfig', () => {
  const lab = resolveLabTarget(loadConfig({ ACCEPT_TARGET: 'lab', ACCEPT_LAB_DIR: '/tmp/accept-lab-unit' }));

  it("sets no environment.PATH on the lab's container at creation: LXC would run its start hooks with it", () => {
    const config = throwawayConfig(lab, 'run-1', new Date('2026-12-02T03:00:00Z'));
    expect(config['environment.PATH']).toBeUndefined();
  });

  it("gives the lab's running container the exec PATH of a NixOS VM's agent: the image's sh-and-env directory", () => {
    expect(lab.configAfterStart).toEqual({ 'environment.PATH': '/usr/libexec/accept-vm-exec-path' });
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
