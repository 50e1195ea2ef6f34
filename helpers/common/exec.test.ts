import { afterEach, describe, expect, it } from 'vitest';
import { HarnessError } from './errors.ts';
import { CommandError, exec, expectFailure, expectSuccess, fail, succeed } from './exec.ts';
import { forgetSecrets, registerSecret } from './redact.ts';

afterEach(() => forgetSecrets());

const NOISY = ['-c', 'echo out; echo err >&2; exit 3'];

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (error: unknown) => error,
  );
}

describe('exec', () => {
  it('returns the exit code and both streams without throwing on a non-zero exit', async () => {
    const result = await exec('sh', NOISY);
    expect(result).toEqual({ command: 'sh -c echo out; echo err >&2; exit 3', exitCode: 3, stdout: 'out\n', stderr: 'err\n' });
  });

  it('passes input on stdin', async () => {
    expect((await exec('cat', [], { input: 'hello\n' })).stdout).toBe('hello\n');
  });

  it('closes stdin when no input is given', async () => {
    // Left open, cat would read until the timeout killed it: exec would then throw "timed out".
    const result = await exec('sh', ['-c', 'cat; echo "cat reached the end of its input"'], { timeoutMs: 10_000 });
    expect(result).toMatchObject({ exitCode: 0, stdout: 'cat reached the end of its input\n', stderr: '' });
  });

  it('uses cwd and adds env to the inherited environment', async () => {
    const result = await exec('sh', ['-c', 'pwd; echo "$EXEC_TEST_VALUE"; test -n "$PATH"'], { cwd: '/', env: { EXEC_TEST_VALUE: 'v1' } });
    expect(result).toMatchObject({ exitCode: 0, stdout: '/\nv1\n' });
  });

  it('names a program that does not exist', async () => {
    const error = await rejection(exec('no-such-program-8f2c', ['--version']));
    expect(error).toBeInstanceOf(HarnessError);
    expect((error as Error).message).toContain('could not run `no-such-program-8f2c --version`');
    expect((error as Error).message).toMatch(/ENOENT/);
  });

  it('names a command that ran out of time', async () => {
    const error = await rejection(exec('sleep', ['10'], { timeoutMs: 200 }));
    expect(error).toBeInstanceOf(HarnessError);
    expect((error as Error).message).toContain('`sleep 10`');
    expect((error as Error).message).toMatch(/timed out/i);
  });
});

describe('succeed', () => {
  it('returns the result when the command exits 0', async () => {
    expect((await succeed('sh', ['-c', 'echo ok'])).stdout).toBe('ok\n');
  });

  it('throws a CommandError carrying the command and its output', async () => {
    const error = await rejection(succeed('sh', NOISY));
    expect(error).toBeInstanceOf(CommandError);
    expect(error).toBeInstanceOf(HarnessError);
    const commandError = error as CommandError;
    expect(commandError.result).toMatchObject({ exitCode: 3, stdout: 'out\n', stderr: 'err\n' });
    expect(commandError.expectation).toBe('was expected to succeed');
    expect(commandError.message).toBe('`sh -c echo out; echo err >&2; exit 3` was expected to succeed but exited 3\n--- stdout ---\nout\n--- stderr ---\nerr');
  });

  it('says so when a stream is empty, and keeps only the tail of long output', async () => {
    const error = (await rejection(succeed('sh', ['-c', 'head -c 10000 /dev/zero | tr "\\0" x; echo; echo END; exit 1']))) as CommandError;
    expect(error.message).toContain('--- stderr ---\n(empty)');
    expect(error.message).toMatch(/--- stdout ---\n…x+\nEND\n/);
    expect(error.message.length).toBeLessThan(4300);
  });

  it('redacts a secret that the output tail cuts through', async () => {
    const secret = 'tail-cut-secret-abcdefghijklmn';
    registerSecret(secret);
    // 3985 bytes follow the secret, so a 4000-character tail starts inside it.
    const error = (await rejection(succeed('sh', ['-c', `printf '%s' "${secret}"; head -c 3985 /dev/zero | tr "\\0" y; exit 1`]))) as CommandError;
    expect(error.message).toContain('yyyy');
    expect(error.message).not.toContain(secret.slice(-15));
  });

  it('redacts registered secrets from the message', async () => {
    registerSecret('bootstrap-secret-value');
    const error = (await rejection(succeed('sh', ['-c', 'echo bootstrap-secret-value >&2; exit 1']))) as CommandError;
    expect(error.message).not.toContain('bootstrap-secret-value');
    expect(error.message).toContain('[REDACTED]');
  });
});

describe('fail', () => {
  it('returns the result when the command exits non-zero', async () => {
    expect((await fail('sh', NOISY)).exitCode).toBe(3);
  });

  it('throws a CommandError when the command exits 0', async () => {
    const error = (await rejection(fail('sh', ['-c', 'echo fine']))) as CommandError;
    expect(error).toBeInstanceOf(CommandError);
    expect(error.message).toMatch(/^`sh -c echo fine` was expected to fail but exited 0\n--- stdout ---\nfine\n/);
  });
});

describe('expectSuccess / expectFailure', () => {
  const ok = { command: 'true', exitCode: 0, stdout: '', stderr: '' };
  const bad = { command: 'false', exitCode: 1, stdout: '', stderr: '' };

  it('judge a result they are given, naming where it came from', () => {
    expect(expectSuccess(ok)).toBe(ok);
    expect(expectFailure(bad)).toBe(bad);
    expect(() => expectSuccess(bad, 'on accept-x')).toThrow(/^on accept-x: `false` was expected to succeed but exited 1/);
    expect(() => expectFailure(ok)).toThrow(CommandError);
  });
});
