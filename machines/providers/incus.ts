/** A real Incus server (b1): a VM per cold run; warm runs face a kept throwaway under the current settings. */
import type { Config } from '../../helpers/common/config.ts';
import { log } from '../../helpers/common/log.ts';
import { newRunId } from '../labels.ts';
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
    provision: async (options) =>
      provisionOnIncus(resolveIncusTarget(config), describe(), {
        ...options,
        ttlMs: options.ttlMs ?? config.ttlMs,
        hostGitCredentialsFile: config.hostGitCredentialsFile,
        cloneCacheDir: cloneCacheDir(config.stateDir),
      }),
    attach: async () => {
      const resolved = resolveIncusTarget(config);
      return (await attachKept(config, resolved, describe(), undefined)) ?? attachProductionAlone(config, resolved, describe());
    },
  };
}

/**
 * A warm run against a kept throwaway: the host's facts from kept.json, everything else from
 * the configuration in force now. A record of another target, server or generation is refused;
 * undefined when none is recorded.
 */
export async function attachKept(
  config: Config,
  resolved: ResolvedTarget,
  faced: TargetDescription,
  generation: string | undefined,
): Promise<RunContext | undefined> {
  const file = keptFile(config.stateDir);
  const kept = await readKept(config.stateDir);
  if (!kept) return undefined;
  if (kept.target !== resolved.kind) throw new KeptHostError(file, `records a throwaway of the ${kept.target} target, but ACCEPT_TARGET is ${resolved.kind}`);
  if (kept.server !== resolved.incus.url)
    throw new KeptHostError(file, `records ${kept.host.name} on ${kept.server}, but the Incus API in force is ${resolved.incus.url}`);
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

/**
 * A warm run with no kept throwaway faces the running cc-ci alone, read only: its own checks run
 * there (zero drift, its served cert, its host scan, D1–D10), a throwaway's are SKIPPED saying
 * so, and a check that changes the host runs only with ACCEPT_ALLOW_HOST_CHANGES=1, as on the ssh
 * target. Without a running cc-ci either, there is nothing to face: an ERROR naming both settings.
 */
export function attachProductionAlone(config: Config, resolved: ResolvedTarget, faced: TargetDescription): RunContext {
  const production = resolved.machines.production;
  if (!('name' in production)) {
    throw new ConfigError(
      'ACCEPT_STATE_DIR',
      `no kept throwaway recorded in ${keptFile(config.stateDir)}, and no running cc-ci to check alone (${production.unreachable}): run \`ACCEPT_KEEP=always npm run accept\` once first, or set ACCEPT_PRODUCTION`,
    );
  }
  log.info(
    `no kept throwaway recorded in ${keptFile(config.stateDir)}: this warm run faces the running cc-ci ${production.name} alone; the throwaway's checks are skipped`,
  );
  return runContext({
    runId: newRunId(),
    mode: 'warm',
    access: { kind: resolved.kind, incus: resolved.incus, socks: resolved.socks },
    faced,
    system: { ...systemOf(resolved), machines: { ...resolved.machines, production: { ...production, via: 'run-host' } } },
    // Where its :443 is dialled: its own endpoint where the target gives one (the lab), else its
    // names through the proxy (every name under the domain is the one machine).
    host: {
      name: production.name,
      project: resolved.incus.project,
      createdAt: '',
      expiresAt: '',
      https: production.https ?? { host: `drone.${resolved.domain}`, port: 443 },
      ...(production.forgeUrl ? { forgeUrl: production.forgeUrl } : {}),
      ledger: [],
    },
  });
}
