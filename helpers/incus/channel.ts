/**
 * `incus exec` and the files API as a HostChannel: the channel before SSH is up. The shell is
 * named by absolute path and PATH goes in the request: Incus resolves argv[0] through the
 * request's PATH, and a VM's agent would otherwise give only the usual directories.
 */
import type { CommandResult } from '../common/exec.ts';
import { ChannelLostError, HOST_PATH, HOST_SHELL, hostChannel, hostShellArgv, type HostChannel, type HostExecOptions } from '../common/host.ts';
import type { Ledger } from '../common/ledger.ts';
import { IncusError, type IncusClient } from './client.ts';

export function incusChannel(client: IncusClient, instance: string, ledger?: Ledger): HostChannel {
  return hostChannel({
    name: instance,
    transport: 'incus exec',
    async exec(script: string, options: HostExecOptions = {}): Promise<CommandResult> {
      const started = performance.now();
      const result = await client
        .exec(instance, hostShellArgv(script, options.strict), {
          env: { PATH: HOST_PATH },
          timeoutMs: options.timeoutMs ?? 600_000,
        })
        .catch((error: unknown) => {
          // An operation that ended with no exit code: the command's channel (a VM's agent) went away under it.
          if (error instanceof IncusError && error.operation && typeof error.operation.metadata?.return !== 'number') {
            throw new ChannelLostError(instance, 'incus exec', script, error.operation.err || error.message, { cause: error });
          }
          throw error;
        });
      ledger?.recordExec(script, result.exitCode, performance.now() - started, options.purpose ?? 'check', `${result.stdout}\n${result.stderr}`);
      // Incus's own refusal ("Command not found") means the shell itself could not start: say which.
      const refused = /^Command not (found|executable)$/.test(result.stderr.trim());
      return {
        ...result,
        command: script,
        stderr: refused ? `incus exec: ${HOST_SHELL}: ${result.stderr.trim().endsWith('found') ? 'not found' : 'Permission denied'}` : result.stderr,
      };
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
  });
}
