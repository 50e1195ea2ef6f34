import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CommandError, exec } from './exec.ts';
import { hostChannel, type HostChannel } from './host.ts';
import { rejectionOf } from './rejection.ts';

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

  it('says "command not found on <host>" when the shell exits 127', async () => {
    const error = await commandError(host.succeed('no-such-command-for-the-harness --flag'));
    expect(error.message).toMatch(/^on local-sh: `no-such-command-for-the-harness --flag` was expected to succeed but exited 127 \(command not found on local-sh\)\n/);
  });

  it('says "not executable" when the shell exits 126', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'host-test-'));
    try {
      const script = join(dir, 'script');
      writeFileSync(script, 'echo hi\n', { mode: 0o644 });
      const error = await commandError(host.succeed(script));
      expect(error.message).toMatch(/ but exited 126 \(found on local-sh but not executable\)\n/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('adds no meaning to other exit codes', async () => {
    const error = await commandError(host.succeed('exit 1'));
    expect(error.message).not.toMatch(/not found|not executable/);
  });

  it('hands files through to the transport', async () => {
    expect((await host.readFile('/x')).toString()).toBe('content');
    await expect(host.pushFile('/x', Buffer.alloc(0), { mode: 0o600, purpose: 'test', secret: false })).resolves.toBeUndefined();
  });
});
