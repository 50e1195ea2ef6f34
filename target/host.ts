/** A command channel to a host. Before SSH is up, `incus exec` is that channel. */
import { CommandError, type CommandResult } from '../helpers/common/exec.ts';
import type { Ledger } from '../helpers/common/ledger.ts';
import type { IncusClient } from '../helpers/incus/client.ts';

export interface HostExecOptions {
  timeoutMs?: number;
  /** Why the command runs; kept in the ledger. */
  purpose?: string;
  /** Run with `sh -eu`, as runbook steps are. */
  strict?: boolean;
}

export interface HostChannel {
  /** The host's name, for messages. */
  readonly name: string;
  /** Runs a shell line as root; never throws for a non-zero exit. */
  exec(script: string, options?: HostExecOptions): Promise<CommandResult>;
  /** As exec, but throws (with the output) unless it exits 0. */
  succeed(script: string, options?: HostExecOptions): Promise<CommandResult>;
  /** As exec, but throws unless it exits non-zero. */
  fail(script: string, options?: HostExecOptions): Promise<CommandResult>;
  pushFile(path: string, content: Buffer, options: { mode: number; purpose: string; secret: boolean }): Promise<void>;
  readFile(path: string): Promise<Buffer>;
}

export function incusChannel(client: IncusClient, instance: string, ledger?: Ledger): HostChannel {
  const exec = async (script: string, options: HostExecOptions = {}): Promise<CommandResult> => {
    const started = performance.now();
    const result = await client.exec(instance, ['sh', options.strict ? '-euc' : '-c', script], { timeoutMs: options.timeoutMs ?? 600_000 });
    const recorded = { ...result, command: script };
    ledger?.recordExec(script, result.exitCode, performance.now() - started, options.purpose ?? 'check', `${result.stdout}\n${result.stderr}`);
    return recorded;
  };
  return {
    name: instance,
    exec,
    async succeed(script, options) {
      const result = await exec(script, options);
      if (result.exitCode !== 0) throw new CommandError(result, 'was expected to succeed', `on ${instance}`);
      return result;
    },
    async fail(script, options) {
      const result = await exec(script, options);
      if (result.exitCode === 0) throw new CommandError(result, 'was expected to fail', `on ${instance}`);
      return result;
    },
    async pushFile(path, content, options) {
      // Through the files API, not a command: placing a file must not add a step to the ledger.
      const parts = path.split('/').slice(1, -1);
      for (let depth = 1; depth <= parts.length; depth++) {
        await client.mkdir(instance, `/${parts.slice(0, depth).join('/')}`, { mode: 0o755, uid: 0, gid: 0 }).catch(() => undefined);
      }
      await client.pushFile(instance, path, content, { mode: options.mode, uid: 0, gid: 0 });
      ledger?.recordPush(path, content, options.mode, options.purpose, options.secret);
    },
    readFile(path) {
      return client.pullFile(instance, path);
    },
  };
}
