import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HarnessError } from './errors.ts';
import { CommandError, exec } from './exec.ts';
import { CommandNotStartedError, HOST_PATH, hostChannel, hostCommandLine, hostShellArgv, programsNotStarted, type HostChannel } from './host.ts';
import { rejectionOf } from './testing/rejection.ts';

/** A channel over the local shell: real exit codes, as a host's `sh -c` gives them. */
function localShell(): HostChannel {
  return hostChannel({
    name: 'local-sh',
    exec: async (script) => ({ ...(await exec('sh', ['-c', script])), command: script }),
    pushFile: async () => undefined,
    readFile: async () => Buffer.from('content'),
  });
}

const commandError = (promise: Promise<unknown>): Promise<CommandError> => rejectionOf(promise, CommandError);

describe('hostChannel', () => {
  const host = localShell();

  it('succeed returns the result of a command that exits 0, and fail throws on it', async () => {
    expect((await host.succeed('echo ok')).stdout).toBe('ok\n');
    const error = await commandError(host.fail('echo ok'));
    expect(error.message).toMatch(/^on local-sh: `echo ok` was expected to fail but exited 0\n--- stdout ---\nok/);
  });

  it('succeed throws with the exit code and output, and fail returns the result', async () => {
    const error = await commandError(host.succeed('echo out; echo err >&2; exit 3'));
    expect(error.message).toBe('on local-sh: `echo out; echo err >&2; exit 3` was expected to succeed but exited 3\n--- stdout ---\nout\n--- stderr ---\nerr');
    expect(error.result.exitCode).toBe(3);
    expect((await host.fail('exit 3')).exitCode).toBe(3);
  });

  it('exec, succeed and fail all throw an ERROR naming the program and the host when the shell exits 127', async () => {
    for (const run of [host.exec, host.succeed, host.fail]) {
      const error = await rejectionOf(run('no-such-command-for-the-harness --flag'), CommandNotStartedError);
      expect(error).toBeInstanceOf(HarnessError);
      expect(error.message).toMatch(
        /^command not found on local-sh: `no-such-command-for-the-harness`, exit 127 from `no-such-command-for-the-harness --flag`\. /,
      );
      expect(error.message).toContain(`PATH=${HOST_PATH}`);
      expect(error.programs).toEqual(['no-such-command-for-the-harness']);
    }
  });

  it('throws an ERROR saying "not executable" when the shell exits 126', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'host-test-'));
    try {
      const script = join(dir, 'script');
      writeFileSync(script, 'echo hi\n', { mode: 0o644 });
      const error = await rejectionOf(host.exec(script), CommandNotStartedError);
      expect(error.message).toMatch(new RegExp(`^found on local-sh but not executable: \`${script}\`, exit 126 `));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('leaves other exit codes to the caller, with no meaning added', async () => {
    expect((await host.exec('exit 1')).exitCode).toBe(1);
    const error = await commandError(host.succeed('exit 1'));
    expect(error.message).not.toMatch(/not found|not executable/);
  });

  it('hands files through to the transport', async () => {
    expect((await host.readFile('/x')).toString()).toBe('content');
    await expect(host.pushFile('/x', Buffer.alloc(0), { mode: 0o600, purpose: 'test', secret: false })).resolves.toBeUndefined();
  });
});

describe('programsNotStarted', () => {
  it('reads the program from what dash, bash, zsh and env say', () => {
    expect(programsNotStarted('sh: 1: grep: not found\n', 127)).toEqual(['grep']);
    expect(programsNotStarted('bash: line 1: nixos-rebuild: command not found\nsh: 2: grep: not found\n', 127)).toEqual(['nixos-rebuild', 'grep']);
    expect(programsNotStarted('zsh:1: command not found: systemctl\n', 127)).toEqual(['systemctl']);
    expect(programsNotStarted('/usr/bin/env: ‘/bin/sh’: Permission denied\n', 126)).toEqual(['/bin/sh']);
    expect(programsNotStarted('Command not found', 127)).toEqual([]);
    // A "not found" from some program's own message is not read as a missing program on 126.
    expect(programsNotStarted('sh: 1: grep: not found\n', 126)).toEqual([]);
  });
});

describe('the host shell and its PATH', () => {
  it('puts the NixOS directories first, then the usual ones', () => {
    expect(HOST_PATH).toBe(
      '/run/wrappers/bin:/run/current-system/sw/bin:/nix/var/nix/profiles/default/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    );
  });

  it('names the shell by absolute path, strict as sh -eu', () => {
    expect(hostShellArgv('true')).toEqual(['/bin/sh', '-c', 'true']);
    expect(hostShellArgv('true', true)).toEqual(['/bin/sh', '-euc', 'true']);
  });

  it('makes one command line that sets PATH itself and keeps the script intact, quotes and $ included', async () => {
    const script = `printf '%s|' "$PATH" 'it'"'"'s' "\\$HOME" '$(no)' "\\\\"`;
    expect(hostCommandLine(script, true)).toMatch(/^\/usr\/bin\/env PATH=\/run\/wrappers\/bin:\S+ \/bin\/sh -euc '/);
    // As a login shell would run it, with a PATH that holds nothing.
    const result = await exec('/bin/sh', ['-c', hostCommandLine(script, true)], { env: { PATH: '/nonexistent', HOME: '/home/x' } });
    expect(result).toMatchObject({ exitCode: 0, stdout: `${HOST_PATH}|it's|$HOME|$(no)|\\|` });
  });

  it('keeps strict mode in the command line', async () => {
    expect((await exec('/bin/sh', ['-c', hostCommandLine('false; echo after', true)])).stdout).toBe('');
    expect((await exec('/bin/sh', ['-c', hostCommandLine('false; echo after')])).stdout).toBe('after\n');
  });
});
