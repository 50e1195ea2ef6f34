import { lstatSync, mkdirSync, mkdtempSync, readlinkSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HarnessError } from '../helpers/common/errors.ts';
import { HOST_PATH } from '../helpers/common/host.ts';
import { rejectionOf } from '../helpers/common/testing/rejection.ts';
import { ensureHostExecPathLink, HOST_EXEC_PATH_TARGET, imageExecPath, makeExecPathDir, removeHostExecPathLink } from './image.ts';

const work = mkdtempSync(join(tmpdir(), 'lab-image-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A rootfs with just the two programs a NixOS system keeps at fixed places. */
function rootfs(name: string, programs = ['bin/sh', 'usr/bin/env']): string {
  const root = join(work, name);
  for (const program of programs) {
    mkdirSync(join(root, program, '..'), { recursive: true });
    writeFileSync(join(root, program), '#!/bin/true\n', { mode: 0o755 });
  }
  return root;
}

describe("the image's exec PATH (what a NixOS VM's agent gives)", () => {
  it('holds only sh and env, in a directory on none of the harness PATH', () => {
    const execPath = imageExecPath();
    expect(execPath.links).toEqual({ sh: '/bin/sh', env: '/usr/bin/env' });
    for (const dir of HOST_PATH.split(':')) expect(execPath.dir.startsWith(`${dir}/`) || execPath.dir === dir, `${execPath.dir} vs ${dir}`).toBe(false);
  });

  it('is made as symlinks to the programs, and nothing else', async () => {
    const root = rootfs('ok');
    await makeExecPathDir(root, imageExecPath());
    const dir = join(root, imageExecPath().dir);
    expect(readdirSync(dir).sort()).toEqual(['env', 'sh']);
    expect(lstatSync(join(dir, 'sh')).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(dir, 'sh'))).toBe('/bin/sh');
    expect(readlinkSync(join(dir, 'env'))).toBe('/usr/bin/env');
    // Again over an existing directory: still the same two.
    await makeExecPathDir(root, imageExecPath());
    expect(readdirSync(dir).sort()).toEqual(['env', 'sh']);
  });

  it('refuses a link to a program the image lacks, naming the recipe', async () => {
    const error = await rejectionOf(makeExecPathDir(rootfs('no-env', ['bin/sh']), imageExecPath()), HarnessError);
    expect(error.message).toMatch(/^lab\/image\/recipe\.json execPath: env points at \/usr\/bin\/env, which the image does not have/);
  });
});

describe("the host's link at the exec PATH (for LXC's hooks)", () => {
  it('links the path to the host programs, again without change, and is removed by lab down', async () => {
    const dir = join(work, 'host', 'usr', 'libexec', 'accept-vm-exec-path');
    await ensureHostExecPathLink(dir);
    expect(readlinkSync(dir)).toBe(HOST_EXEC_PATH_TARGET);
    await ensureHostExecPathLink(dir);
    expect(readlinkSync(dir)).toBe(HOST_EXEC_PATH_TARGET);
    await removeHostExecPathLink(dir);
    expect(() => lstatSync(dir)).toThrow();
  });

  it('refuses a path that holds something else, naming it, and never removes it', async () => {
    const dir = join(work, 'host-taken');
    mkdirSync(dir, { recursive: true });
    const error = await rejectionOf(ensureHostExecPathLink(dir), HarnessError);
    expect(error.message).toContain(`${dir} exists on this host and is not the lab's link to /usr/bin`);
    await removeHostExecPathLink(dir);
    expect(lstatSync(dir).isDirectory()).toBe(true);
  });
});
