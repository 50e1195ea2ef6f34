import { describe, expect, it } from 'vitest';
import { HarnessError } from '../common/errors.ts';
import { CommandNotStartedError, HOST_PATH } from '../common/host.ts';
import { Ledger } from '../common/ledger.ts';
import { rejectionOf } from '../common/testing/rejection.ts';
import { incusChannel } from './channel.ts';
import type { IncusClient, IncusExecResult } from './client.ts';

/** An IncusClient with only exec, answering every request with `reply` and keeping the requests. */
function clientAnswering(reply: Omit<IncusExecResult, 'command'>) {
  const calls: { name: string; command: string[]; options: unknown }[] = [];
  const client = {
    async exec(name: string, command: string[], options: unknown): Promise<IncusExecResult> {
      calls.push({ name, command, options });
      return { command: command.join(' '), ...reply };
    },
  } as unknown as IncusClient;
  return { client, calls };
}

describe('incusChannel', () => {
  it('asks for /bin/sh by absolute path with PATH set, and records the line, not the argv', async () => {
    const { client, calls } = clientAnswering({ exitCode: 0, stdout: 'ok\n', stderr: '' });
    const ledger = new Ledger();
    const result = await incusChannel(client, 'ci-1', ledger).exec('systemctl is-system-running', { purpose: 'probe' });
    expect(result).toEqual({ command: 'systemctl is-system-running', exitCode: 0, stdout: 'ok\n', stderr: '' });
    expect(calls).toEqual([
      { name: 'ci-1', command: ['/bin/sh', '-c', 'systemctl is-system-running'], options: { env: { PATH: HOST_PATH }, timeoutMs: 600_000 } },
    ]);
    expect(ledger.entries.at(-1)).toMatchObject({ kind: 'exec', command: 'systemctl is-system-running', purpose: 'probe' });
  });

  it('turns a shell exit 127 into an ERROR naming the program and the instance', async () => {
    const { client } = clientAnswering({ exitCode: 127, stdout: '', stderr: 'sh: 1: grep: not found\n' });
    const error = await rejectionOf(incusChannel(client, 'ci-1').exec('grep -r x /etc'), CommandNotStartedError);
    expect(error).toBeInstanceOf(HarnessError);
    expect(error.message).toMatch(/^command not found on ci-1: `grep`, exit 127 from `grep -r x \/etc`/);
  });

  it('names /bin/sh when Incus itself could not start the shell', async () => {
    const { client } = clientAnswering({ exitCode: 127, stdout: '', stderr: 'Command not found' });
    const error = await rejectionOf(incusChannel(client, 'ci-1').succeed('true'), CommandNotStartedError);
    expect(error.programs).toEqual(['/bin/sh']);
    expect(error.message).toMatch(/^command not found on ci-1: `\/bin\/sh`/);
  });
});
