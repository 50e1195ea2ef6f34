/** For tests: a HostChannel that answers each command from a function and records the time limit it was given. */
import type { CommandResult } from '../exec.ts';
import { hostChannel, type HostChannel, type HostExecOptions } from '../host.ts';

export function limitRecordingHost(
  name: string,
  answer: (script: string, options: HostExecOptions) => Promise<{ exitCode?: number; stdout?: string }>,
): { host: HostChannel; limits: { script: string; timeoutMs?: number }[] } {
  const limits: { script: string; timeoutMs?: number }[] = [];
  const host = hostChannel({
    name,
    async exec(script, options = {}) {
      limits.push({ script, timeoutMs: options.timeoutMs });
      const { exitCode = 0, stdout = '' } = await answer(script, options);
      return { command: script, exitCode, stdout, stderr: '' };
    },
    async pushFile() {},
    async readFile() {
      return Buffer.alloc(0);
    },
  });
  return { host, limits };
}

/**
 * For tests: a HostChannel built without hostChannel(), so that an exit code of 126 or 127 comes
 * back as it is and the code under test must judge it; every command gets `answer`, and its script
 * is recorded in `scripts`.
 */
export function rawAnsweringHost(answer: (script: string) => CommandResult): HostChannel & { scripts: string[] } {
  const scripts: string[] = [];
  const exec = async (script: string): Promise<CommandResult> => {
    scripts.push(script);
    return answer(script);
  };
  return {
    name: 'fake-host',
    transport: 'fake',
    scripts,
    exec,
    succeed: exec,
    fail: exec,
    pushFile: async () => undefined,
    readFile: async () => Buffer.alloc(0),
  };
}
