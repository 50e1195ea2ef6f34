import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { processAlive, scratchDir, sweepOrphans } from './scratch.ts';

let parent: string | undefined;
afterEach(async () => parent && (await rm(parent, { recursive: true, force: true })));

/** The pid of a process that has ended. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(child.stdout.toString());
}

describe('sweepOrphans', () => {
  it("removes the directories of processes that are gone, and keeps this process's, a live one's and other names", async () => {
    parent = await mkdtemp(join(tmpdir(), 'scratch-test-'));
    const gone = deadPid();
    expect(processAlive(gone)).toBe(false);
    const names = [
      `accept-clone-${gone}-abc123`,
      `accept-clone-${process.pid}-def456`,
      `accept-clone-1-ghi789`,
      'accept-clone-xyz123',
      `accept-sabotage-${gone}-aaaaaa`,
    ];
    for (const name of names) await mkdir(join(parent, name, 'deep'), { recursive: true });
    // pid 1 (init) is alive.
    expect(await sweepOrphans('accept-clone', parent)).toEqual([`accept-clone-${gone}-abc123`]);
    expect((await readdir(parent)).sort()).toEqual(names.slice(1).sort());
  });
});

describe('scratchDir', () => {
  it('sweeps the orphans of its prefix on first use, as a run after a SIGKILLed one does', async () => {
    const orphan = join(tmpdir(), `accept-scratch-sweep-${deadPid()}-orphan`);
    await mkdir(orphan, { recursive: true });
    const dir = await scratchDir('accept-scratch-sweep');
    await rm(dir, { recursive: true, force: true });
    await expect(stat(orphan)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it("names its directory with this process's pid, so a later run can tell it is orphaned", async () => {
    const dir = await scratchDir('accept-scratch-test');
    try {
      expect(basename(dir)).toMatch(new RegExp(`^accept-scratch-test-${process.pid}-\\w{6}$`));
      expect(dirname(dir)).toBe(tmpdir());
      expect((await stat(dir)).isDirectory()).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
