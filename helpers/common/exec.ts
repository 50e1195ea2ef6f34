import { execa } from 'execa';
import { HarnessError } from './errors.ts';
import { redact } from './redact.ts';

export interface CommandResult {
  /** What was run, for messages: argv joined, or the shell line. */
  command: string;
  exitCode: number;
  stdout: string;
  stderr: string;
}

export class CommandError extends HarnessError {
  override readonly name: string = 'CommandError';
  /** `meaning`: what the exit code says, when it says more than a number (e.g. "command not found on ci-1"). */
  constructor(
    readonly result: CommandResult,
    readonly expectation: string,
    where = '',
    meaning?: string,
  ) {
    super(
      redact(
        `${where ? `${where}: ` : ''}\`${result.command}\` ${expectation} but exited ${result.exitCode}${meaning ? ` (${meaning})` : ''}` +
          `\n--- stdout ---\n${tail(result.stdout)}\n--- stderr ---\n${tail(result.stderr)}`,
      ),
    );
  }
}

function tail(text: string, max = 4000): string {
  // Redact before cutting: a secret cut in half would no longer match.
  const trimmed = redact(text).trimEnd();
  return trimmed.length > max ? `…${trimmed.slice(-max)}` : trimmed || '(empty)';
}

export interface LocalExecOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
  input?: string;
  timeoutMs?: number;
}

/** Runs a local program. Never throws for a non-zero exit: that is the caller's to judge. */
export async function exec(file: string, args: string[], options: LocalExecOptions = {}): Promise<CommandResult> {
  const command = [file, ...args].join(' ');
  const result = await execa(file, args, {
    cwd: options.cwd,
    env: options.env,
    // Some CLIs (incus among them) read stdin when it is not a terminal: give them none.
    ...(options.input === undefined ? { stdin: 'ignore' as const } : { input: options.input }),
    timeout: options.timeoutMs,
    reject: false,
    stripFinalNewline: false,
  });
  if (result.failed && result.exitCode === undefined) {
    throw new HarnessError(`could not run \`${command}\`: ${result.shortMessage ?? result.message}`);
  }
  return { command, exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
}

export function expectSuccess(result: CommandResult, where?: string): CommandResult {
  if (result.exitCode !== 0) throw new CommandError(result, 'was expected to succeed', where);
  return result;
}

export function expectFailure(result: CommandResult, where?: string): CommandResult {
  if (result.exitCode === 0) throw new CommandError(result, 'was expected to fail', where);
  return result;
}

/** Runs a local program and throws (with its output) unless it exits 0. */
export async function succeed(file: string, args: string[], options?: LocalExecOptions): Promise<CommandResult> {
  return expectSuccess(await exec(file, args, options));
}

/** Runs a local program and throws unless it exits non-zero. */
export async function fail(file: string, args: string[], options?: LocalExecOptions): Promise<CommandResult> {
  return expectFailure(await exec(file, args, options));
}
