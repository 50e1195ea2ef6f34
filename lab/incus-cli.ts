/** The lab's own administration of the local daemon goes through the `incus` CLI (unix socket, as root). */
import { HarnessError } from '../helpers/common/errors.ts';
import { exec, expectSuccess, type CommandResult } from '../helpers/common/exec.ts';

export async function incus(args: string[], options: { input?: string; timeoutMs?: number } = {}): Promise<CommandResult> {
  return exec('incus', args, { input: options.input, timeoutMs: options.timeoutMs ?? 300_000 });
}

export async function incusOk(args: string[], options?: { input?: string; timeoutMs?: number }): Promise<string> {
  return expectSuccess(await incus(args, options), 'lab').stdout;
}

/** GET on the local API; undefined for 404. */
export async function incusQuery<T>(path: string): Promise<T | undefined> {
  const result = await incus(['query', path]);
  if (result.exitCode === 0) return JSON.parse(result.stdout) as T;
  if (/not found/i.test(result.stderr)) return undefined;
  throw new HarnessError(`incus query ${path} failed: ${result.stderr.trim()}`);
}
