import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { takePidFile, withPidLock } from './lock.ts';

describe('withPidLock', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'accept-lock-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('runs two holders one after the other, never both at once', async () => {
    const file = join(dir, 'state.lock');
    const events: string[] = [];
    let releaseFirst!: () => void;
    const firstMayEnd = new Promise<void>((resolve) => (releaseFirst = resolve));
    const first = withPidLock(file, { what: 'first', pollMs: 5 }, async () => {
      events.push('first in');
      await firstMayEnd;
      events.push('first out');
    });
    // The same pid for both, as two concurrent callers in one process would be: still exclusive.
    const second = withPidLock(file, { what: 'second', pollMs: 5 }, async () => {
      events.push('second in');
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(events).toEqual(['first in']);
    releaseFirst();
    await Promise.all([first, second]);
    expect(events).toEqual(['first in', 'first out', 'second in']);
    await expect(readFile(file)).rejects.toThrow(/ENOENT/);
  });

  it('lets go when the work throws, and takes over a lock whose owner died', async () => {
    const file = join(dir, 'state.lock');
    await expect(withPidLock(file, { what: 'x' }, async () => { throw new Error('boom'); })).rejects.toThrow('boom');
    await writeFile(file, '2147480000\n');
    expect(await takePidFile(file, process.pid)).toBe(true);
    expect((await readFile(file, 'utf8')).trim()).toBe(String(process.pid));
  });
});
