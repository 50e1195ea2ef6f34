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

  it('is the labels of this run and the memory limit, and nothing else', () => {
    const config = throwawayConfig(lab, 'run-1', new Date('2026-12-02T03:00:00Z'));
    expect(config['limits.memory']).toBe(lab.incus.memory);
    expect(config['user.accept.run-id']).toBe('run-1');
    expect(Object.keys(config).filter((key) => key.startsWith('environment.'))).toEqual([]);
    expect(Object.keys(config).filter((key) => key !== 'limits.memory' && !key.startsWith('user.accept.'))).toEqual([]);
  });
});
