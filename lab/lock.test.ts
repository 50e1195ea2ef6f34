import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
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
    let releaseHolder!: () => void;
    const holderMayEnd = new Promise<void>((resolve) => (releaseHolder = resolve));
    // Either may win the race for the file (both opens are in flight at once); the one that wins
    // holds until released, and the other must not get in meanwhile.
    const holder = (name: string) => async () => {
      events.push(`${name} in`);
      await holderMayEnd;
      events.push(`${name} out`);
    };
    // The same pid for both, as two concurrent callers in one process would be: still exclusive.
    const first = withPidLock(file, { what: 'first', pollMs: 5 }, holder('first'));
    const second = withPidLock(file, { what: 'second', pollMs: 5 }, holder('second'));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(events).toHaveLength(1);
    const winner = events[0]!.split(' ')[0]!;
    const other = winner === 'first' ? 'second' : 'first';
    releaseHolder();
    await Promise.all([first, second]);
    expect(events).toEqual([`${winner} in`, `${winner} out`, `${other} in`, `${other} out`]);
    await expect(readFile(file)).rejects.toThrow(/ENOENT/);
  });

  it('while another live process holds it, says so every heartbeatMs, naming the holder and the file', async () => {
    const file = join(dir, 'state.lock');
    await writeFile(file, `${process.ppid}\n`);
    const lines: string[] = [];
    const write = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
      lines.push(String(chunk));
      return true;
    });
    try {
      const waiting = withPidLock(file, { what: 'the lab state', pollMs: 5, heartbeatMs: 20 }, async () => 'done');
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(lines.length).toBeGreaterThan(0);
      expect(lines[0]).toMatch(new RegExp(`^  waiting for the lab state \\(held by pid ${process.ppid}, ${file.replaceAll('.', '\\.')}\\) for 0 s\n$`));
      await rm(file);
      expect(await waiting).toBe('done');
    } finally {
      write.mockRestore();
    }
  });

  it('lets go when the work throws, and takes over a lock whose owner died', async () => {
    const file = join(dir, 'state.lock');
    await expect(
      withPidLock(file, { what: 'x' }, async () => {
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    await writeFile(file, '2147480000\n');
    expect(await takePidFile(file, process.pid)).toBe(true);
    expect((await readFile(file, 'utf8')).trim()).toBe(String(process.pid));
  });
});
