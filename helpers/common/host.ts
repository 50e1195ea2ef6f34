/**
 * A command channel to a host: a shell line as root, files in and out. Incus (`incus exec`,
 * before SSH is up) and SSH provide one; `hostChannel` adds succeed and fail to either.
 */
import { CommandError, type CommandResult } from './exec.ts';

export interface HostExecOptions {
  timeoutMs?: number;
  /** Why the command runs; kept in the ledger. */
  purpose?: string;
  /** Run with `sh -eu`, as runbook steps are. */
  strict?: boolean;
}

export interface PushFileOptions {
  mode: number;
  purpose: string;
  secret: boolean;
}

export interface HostChannel {
  /** The host's name, for messages. */
  readonly name: string;
  /** Runs a shell line as root; never throws for a non-zero exit. */
  exec(script: string, options?: HostExecOptions): Promise<CommandResult>;
  /** As exec, but throws a CommandError (with the output) unless it exits 0. */
  succeed(script: string, options?: HostExecOptions): Promise<CommandResult>;
  /** As exec, but throws a CommandError unless it exits non-zero. */
  fail(script: string, options?: HostExecOptions): Promise<CommandResult>;
  pushFile(path: string, content: Buffer, options: PushFileOptions): Promise<void>;
  readFile(path: string): Promise<Buffer>;
}

/** What a transport provides; succeed and fail are built on its exec. */
export type HostTransport = Pick<HostChannel, 'name' | 'exec' | 'pushFile' | 'readFile'>;

/** The shell's own exit codes for a program it could not start (POSIX 2.8.2), said plainly. */
export function shellExitMeaning(exitCode: number, host: string): string | undefined {
  if (exitCode === 127) return `command not found on ${host}`;
  if (exitCode === 126) return `found on ${host} but not executable`;
  return undefined;
}

export function hostChannel(transport: HostTransport): HostChannel {
  const { name, exec } = transport;
  return {
    name,
    exec,
    async succeed(script, options) {
      const result = await exec(script, options);
      if (result.exitCode !== 0) throw new CommandError(result, 'was expected to succeed', `on ${name}`, shellExitMeaning(result.exitCode, name));
      return result;
    },
    async fail(script, options) {
      const result = await exec(script, options);
      if (result.exitCode === 0) throw new CommandError(result, 'was expected to fail', `on ${name}`);
      return result;
    },
    pushFile: transport.pushFile,
    readFile: transport.readFile,
  };
}
