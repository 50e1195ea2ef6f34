/** For tests: a HostChannel that answers each command from a function and records the time limit it was given. */
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
