/**
 * A command channel to a host: a shell line as root, files in and out. Incus (`incus exec`,
 * before SSH is up) and SSH provide one; `hostChannel` adds succeed and fail to either.
 *
 * Every line runs in `/bin/sh` with HOST_PATH, over either transport: the target's own PATH is
 * never used, because a NixOS VM's Incus agent gives only the usual directories, which on
 * NixOS hold nothing but `sh` and `env`.
 */
import { CommandError, type CommandResult } from './exec.ts';
import { HarnessError } from './errors.ts';
import { redact } from './redact.ts';

/** Where NixOS keeps its programs: setuid wrappers, the system profile, the default Nix profile. */
const NIXOS_PROGRAM_DIRS = ['/run/wrappers/bin', '/run/current-system/sw/bin', '/nix/var/nix/profiles/default/bin'];
/** The usual directories, for hosts that are not NixOS (and for /bin/sh, /usr/bin/env on NixOS). */
const USUAL_PROGRAM_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** The PATH of every command the harness runs on a host. */
export const HOST_PATH = [...NIXOS_PROGRAM_DIRS, ...USUAL_PROGRAM_DIRS].join(':');

/** By absolute path: the one program every NixOS system has at a fixed place. */
export const HOST_SHELL = '/bin/sh';

/** argv of the shell a host line runs in; `strict` is `sh -eu`, as runbook steps run. */
export function hostShellArgv(script: string, strict = false): string[] {
  return [HOST_SHELL, strict ? '-euc' : '-c', script];
}

/** A word for any POSIX shell: bare when it is plainly safe, else single-quoted. */
export function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

/**
 * The host line as one command for a login shell (SSH's exec): PATH is set in the line itself,
 * through /usr/bin/env (on NixOS as fixed as /bin/sh), so the login environment never matters.
 */
export function hostCommandLine(script: string, strict = false): string {
  return ['/usr/bin/env', `PATH=${HOST_PATH}`, ...hostShellArgv(script, strict)].map(shellWord).join(' ');
}

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
  /** How the harness reaches it ("incus exec", "ssh"), as the run record and the ledger name the channel a step used. */
  readonly transport: string;
  /**
   * Runs a shell line as root. Never throws for a non-zero exit, except 126 and 127: a program
   * the line names could not be started, so nothing the line printed can be trusted.
   */
  exec(script: string, options?: HostExecOptions): Promise<CommandResult>;
  /** As exec, but throws a CommandError (with the output) unless it exits 0. */
  succeed(script: string, options?: HostExecOptions): Promise<CommandResult>;
  /** As exec, but throws a CommandError unless it exits non-zero. */
  fail(script: string, options?: HostExecOptions): Promise<CommandResult>;
  pushFile(path: string, content: Buffer, options: PushFileOptions): Promise<void>;
  readFile(path: string): Promise<Buffer>;
}

/** What a transport provides; succeed and fail are built on its exec. */
export type HostTransport = Pick<HostChannel, 'name' | 'exec' | 'pushFile' | 'readFile'> & { transport?: string };

/**
 * The channel to the machine dropped while a command ran (a VM's agent went away, say, as it does
 * when a switch restarts it): whether the command finished, and how, is unknown. Transient: the
 * channel may come back.
 */
export class ChannelLostError extends HarnessError {
  override readonly name = 'ChannelLostError';
  constructor(
    readonly host: string,
    readonly transport: string,
    readonly command: string,
    reason: string,
    options: { cause?: unknown } = {},
  ) {
    super(redact(`the ${transport} channel to ${host} dropped while \`${command.split('\n')[0]}\` ran (${reason}): whether it finished, and how, is unknown`), {
      ...options,
      transient: true,
    });
  }
}

/** The shell's own exit codes for a program it could not start (POSIX 2.8.2), said plainly. */
export function shellExitMeaning(exitCode: number, host: string): string | undefined {
  if (exitCode === 127) return `command not found on ${host}`;
  if (exitCode === 126) return `found on ${host} but not executable`;
  return undefined;
}

/**
 * The programs a shell says it could not start, from its stderr: dash's "sh: 1: grep: not
 * found", bash's "bash: line 1: grep: command not found", zsh's "command not found: grep", and
 * "x: Permission denied" for 126. Incus's own "Command not found" names none.
 */
export function programsNotStarted(stderr: string, exitCode: number): string[] {
  const names = new Set<string>();
  for (const line of stderr.split('\n')) {
    const parts = line.trim().split(': ');
    if (parts.length < 2) continue;
    const last = parts.at(-1)!;
    let name: string | undefined;
    if (exitCode === 127 && /^(command )?not found$/i.test(last)) name = parts.at(-2);
    else if (exitCode === 127 && /^command not found$/i.test(parts.at(-2)!)) name = last;
    else if (exitCode === 126 && /^permission denied$/i.test(last)) name = parts.at(-2);
    if (name) names.add(name.replace(/^[‘'`"]|[’'`"]$/g, ''));
  }
  return [...names];
}

/**
 * A line on a host exited 126 or 127: a program it names is missing or not executable there.
 * Always an ERROR (the harness could not find out), whatever the line was meant to check.
 */
export class CommandNotStartedError extends HarnessError {
  override readonly name = 'CommandNotStartedError';
  constructor(
    readonly result: CommandResult,
    readonly host: string,
    /** What the shell named; empty when it named nothing. */
    readonly programs: string[],
  ) {
    const named = programs.length > 0 ? programs.map((program) => `\`${program}\``).join(', ') : 'a program the line names (the shell did not say which)';
    super(
      redact(
        `${shellExitMeaning(result.exitCode, host)}: ${named}, exit ${result.exitCode} from \`${result.command}\`. ` +
          `Host commands run in ${HOST_SHELL} with PATH=${HOST_PATH}; install the program on ${host}, or name it by a path that exists there.` +
          `\n--- stderr ---\n${result.stderr.trimEnd().slice(-2000) || '(empty)'}`,
      ),
    );
  }
}

/** The error for a result whose program could not be started, else undefined. */
export function notStarted(result: CommandResult, host: string): CommandNotStartedError | undefined {
  if (result.exitCode !== 126 && result.exitCode !== 127) return undefined;
  return new CommandNotStartedError(result, host, programsNotStarted(result.stderr, result.exitCode));
}

/**
 * For code that reads a result's output whatever its exit code: throws for 126/127 even when the
 * channel is not one hostChannel made (test fakes, a future transport).
 */
export function requireStarted(result: CommandResult, host: Pick<HostChannel, 'name'>): CommandResult {
  const error = notStarted(result, host.name);
  if (error) throw error;
  return result;
}

export function hostChannel(transport: HostTransport): HostChannel {
  const { name } = transport;
  const exec: HostChannel['exec'] = async (script, options) => {
    const result = await transport.exec(script, options);
    const error = notStarted(result, name);
    if (error) throw error;
    return result;
  };
  return {
    name,
    transport: transport.transport ?? 'a command channel',
    exec,
    async succeed(script, options) {
      const result = await exec(script, options);
      if (result.exitCode !== 0) throw new CommandError(result, 'was expected to succeed', `on ${name}`);
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
