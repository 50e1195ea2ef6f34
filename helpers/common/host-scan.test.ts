import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HarnessError } from './errors.ts';
import { exec, type CommandResult } from './exec.ts';
import { CommandNotStartedError, hostChannel, hostShellArgv, type HostChannel } from './host.ts';
import { HostScanError, fileHashesOnHost, filesMatchingOnHost } from './host-scan.ts';
import { rawAnsweringHost } from './testing/recording-host.ts';
import { rejectionOf } from './testing/rejection.ts';

/** A host whose every command gets `reply`, built without hostChannel: the scans must judge 126/127 themselves. */
function fakeHost(reply: (script: string) => Partial<CommandResult>): HostChannel & { scripts: string[] } {
  return rawAnsweringHost((script) => ({ command: script, exitCode: 0, stdout: '', stderr: '', ...reply(script) }));
}

/** The roots step answers that every root exists; the grep gets `grep`. */
const withGrep = (grep: Partial<CommandResult>) => (script: string) => (script.startsWith('for root in') ? { stdout: '/etc\n/root\n' } : grep);

/** This machine's shell, as a host: real grep and sha256sum exit codes. */
const localHost = hostChannel({
  name: 'local-sh',
  exec: async (script, options) => {
    const [file, ...args] = hostShellArgv(script, options?.strict);
    return { ...(await exec(file!, args)), command: script };
  },
  pushFile: async () => undefined,
  readFile: async () => Buffer.alloc(0),
});

const work = mkdtempSync(join(tmpdir(), 'host-scan-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const KEY_PATTERN = '^-----BEGIN ([A-Z]+ )?PRIVATE KEY-----$';

describe('filesMatchingOnHost', () => {
  it('reads grep exit 1 as nothing found', async () => {
    const host = fakeHost(withGrep({ exitCode: 1 }));
    expect(await filesMatchingOnHost(host, { pattern: KEY_PATTERN, roots: ['/etc', '/root'] })).toEqual({ files: [], searched: ['/etc', '/root'], absent: [] });
    expect(host.scripts.at(-1)).toBe(`grep -rlE -e '${KEY_PATTERN}' -- /etc /root`);
  });

  it('lists each file once, sorted, on exit 0', async () => {
    const host = fakeHost(withGrep({ stdout: '/root/b\n/etc/a\n/root/b\n' }));
    expect((await filesMatchingOnHost(host, { pattern: KEY_PATTERN, roots: ['/etc', '/root'] })).files).toEqual(['/etc/a', '/root/b']);
  });

  it('is an ERROR naming grep and the host when grep is missing (127), never "no keys"', async () => {
    const host = fakeHost(withGrep({ exitCode: 127, stderr: 'sh: 1: grep: not found\n' }));
    const error = await rejectionOf(filesMatchingOnHost(host, { pattern: KEY_PATTERN, roots: ['/etc', '/root'] }), CommandNotStartedError);
    expect(error).toBeInstanceOf(HarnessError);
    expect(error.message).toMatch(/^command not found on fake-host: `grep`/);
  });

  it('takes a file that vanished while grep ran as gone, not as a failed search', async () => {
    const host = fakeHost(withGrep({ exitCode: 2, stdout: '/etc/a\n', stderr: 'grep: /run/secrets.d/2/tmp.x1: No such file or directory\n' }));
    expect((await filesMatchingOnHost(host, { pattern: 'x', roots: ['/etc'] })).files).toEqual(['/etc/a']);
  });

  it('is an ERROR naming the command and the host when grep fails (2), even with matches printed', async () => {
    const host = fakeHost(withGrep({ exitCode: 2, stdout: '/etc/a\n', stderr: 'grep: /root/x: Input/output error\n' }));
    const error = await rejectionOf(filesMatchingOnHost(host, { pattern: KEY_PATTERN, roots: ['/etc', '/root'] }), HostScanError);
    expect(error.message).toMatch(
      /^on fake-host: `grep -rlE -e .* -- \/etc \/root` failed \(exit 2\), so what it looked for is unknown\n--- stderr ---\ngrep: \/root\/x: Input\/output error$/,
    );
  });

  it('is an ERROR when it cannot tell which roots exist', async () => {
    const host = fakeHost(() => ({ exitCode: 127, stderr: 'sh: 1: printf: not found\n' }));
    await rejectionOf(filesMatchingOnHost(host, { pattern: KEY_PATTERN, roots: ['/etc'] }), CommandNotStartedError);
  });

  it('on a real shell: finds the key, skips an absent root, and reads no match as nothing', async () => {
    const dir = join(work, 'grep');
    mkdirSync(join(dir, 'nested'), { recursive: true });
    writeFileSync(join(dir, 'nested', 'id_ed25519'), '-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n');
    writeFileSync(join(dir, 'code.py'), 'MARKER = "-----BEGIN PRIVATE KEY-----" # only names it\n');
    const absent = join(work, 'no-such-dir');
    expect(await filesMatchingOnHost(localHost, { pattern: KEY_PATTERN, roots: [dir, absent] })).toEqual({
      files: [join(dir, 'nested', 'id_ed25519')],
      searched: [dir],
      absent: [absent],
    });
    expect((await filesMatchingOnHost(localHost, { pattern: 'AGE-SECRET-KEY-1[0-9A-Z]{58}', roots: [dir] })).files).toEqual([]);
  });
});

describe('fileHashesOnHost', () => {
  const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

  it('on a real shell: hashes regular files through symlinks, and gives none for an absent path or a directory', async () => {
    const dir = join(work, 'hash');
    mkdirSync(join(dir, 'sub'), { recursive: true });
    writeFileSync(join(dir, "it's $x"), 'one');
    symlinkSync(join(dir, "it's $x"), join(dir, 'link'));
    const paths = [join(dir, "it's $x"), join(dir, 'link'), join(dir, 'absent'), join(dir, 'sub')];
    const hashes = await fileHashesOnHost(localHost, paths);
    expect([...hashes]).toEqual([
      [paths[0], sha256('one')],
      [paths[1], sha256('one')],
      [paths[2], undefined],
      [paths[3], undefined],
    ]);
  });

  it('is an ERROR naming sha256sum and the host when it is missing (127), never "not decrypted"', async () => {
    const host = fakeHost(() => ({ exitCode: 127, stderr: 'sh: 1: sha256sum: not found\n' }));
    const error = await rejectionOf(fileHashesOnHost(host, ['/run/secrets/a']), CommandNotStartedError);
    expect(error.message).toMatch(/^command not found on fake-host: `sha256sum`/);
  });

  it('is an ERROR when sha256sum fails on a file that is there (exit 1)', async () => {
    const host = fakeHost(() => ({ exitCode: 1, stderr: 'sha256sum: /run/secrets/a: Permission denied\n' }));
    const error = await rejectionOf(fileHashesOnHost(host, ['/run/secrets/a']), HostScanError);
    expect(error.message).toMatch(/^on fake-host: `for f in \/run\/secrets\/a; do .*` failed \(exit 1\)/);
  });

  it('is an ERROR when the output is no hash of a path asked for', async () => {
    const host = fakeHost(() => ({ stdout: 'garbage\n' }));
    await rejectionOf(fileHashesOnHost(host, ['/run/secrets/a']), HostScanError);
  });
});
