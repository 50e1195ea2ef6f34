/** A real Incus server (b1): a VM per cold run; warm runs face a kept throwaway under the current settings. */
import type { Config } from '../../helpers/common/config.ts';
import { KeptHostError, keptFile, readKept } from '../kept.ts';
import { ConfigError } from '../../helpers/common/errors.ts';
import { cloneCacheDir } from '../../helpers/git/index.ts';
import type { TargetProvider } from '../provider.ts';
import { provisionOnIncus, systemOf } from '../provision.ts';
import { resolveIncusTarget, type ResolvedTarget } from '../resolve.ts';
import { runContext, type RunContext, type TargetDescription } from '../run-context.ts';

/**
 * What a throwaway built from production's instance repo can reach, said in every real run's
 * evidence: the harness cannot see what the throwaway's own bridge and runner did out there.
 */
export const THROWAWAY_REACH =
  "the throwaway is built from ACCEPT_INSTANCE_REPO, production's instance repo: it carries production's domain, forge bot token, OAuth app and Drone RPC secret, " +
  "so its bridge can poll and comment on the same pull requests as production's, and its runner can reach Drone's RPC; what it did there cannot be observed from this machine";

export function incusProvider(config: Config): TargetProvider & { resolve(): Promise<ResolvedTarget> } {
  const describe = (): TargetDescription => ({
    kind: 'incus',
    server: config.incus.url ?? '(ACCEPT_INCUS_URL unset)',
    instanceType: config.incus.instanceType,
    standIns: [],
    notes: [THROWAWAY_REACH],
  });
  return {
    kind: 'incus',
    describe,
    resolve: async () => resolveIncusTarget(config),
    provision: async (options) => provisionOnIncus(resolveIncusTarget(config), describe(), { ...options, ttlMs: options.ttlMs ?? config.ttlMs, hostGitCredentialsFile: config.hostGitCredentialsFile, cloneCacheDir: cloneCacheDir(config.stateDir) }),
    attach: async () => attachKept(config, resolveIncusTarget(config), describe(), undefined),
  };
}

/**
 * A warm run against a kept throwaway: the host's facts from kept.json, everything else from
 * the configuration in force now. A record of another target, server or generation is refused.
 */
export async function attachKept(config: Config, resolved: ResolvedTarget, faced: TargetDescription, generation: string | undefined): Promise<RunContext> {
  const file = keptFile(config.stateDir);
  const kept = await readKept(config.stateDir);
  if (!kept) throw new ConfigError('ACCEPT_STATE_DIR', `no kept throwaway recorded in ${file}: run \`ACCEPT_KEEP=always npm run accept\` once first`);
  if (kept.target !== resolved.kind) throw new KeptHostError(file, `records a throwaway of the ${kept.target} target, but ACCEPT_TARGET is ${resolved.kind}`);
  if (kept.server !== resolved.incus.url) throw new KeptHostError(file, `records ${kept.host.name} on ${kept.server}, but the Incus API in force is ${resolved.incus.url}`);
  if (kept.generation !== generation) {
    throw new KeptHostError(
      file,
      `records ${kept.host.name}, built from ${kept.generation ?? 'an unrecorded generation'}, but the ${resolved.kind} target is now ${generation ?? 'of no recorded generation'}: its repos and keys no longer match that host`,
    );
  }
  return runContext({
    runId: kept.runId,
    mode: 'warm',
    access: { kind: resolved.kind, incus: { ...resolved.incus, project: kept.host.project }, socks: resolved.socks },
    faced,
    system: systemOf(resolved),
    host: kept.host,
  });
}
