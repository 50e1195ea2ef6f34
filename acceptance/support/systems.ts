/**
 * Expected = current: the clean-checkout build is /run/current-system. C1 and D8 both record it
 * with /run/booted-system and judge it; on a mismatch they attach what differs (paths, narHashes,
 * `nix store diff-closures`). Booted ≠ current is recorded, never a failure: NixOS's stage 2 links
 * /run/booted-system at boot only, so after `nixos-rebuild switch` without a reboot (every
 * throwaway the runbook rebuilt, and production after its last switch) they differ by design.
 */
import type { HostChannel } from '../../helpers/common/host.ts';
import { diffClosuresWherever, formatClosureDiff, type ClosureDiff, type NixOptions } from '../../helpers/nix/index.ts';

export interface Systems {
  /** The clean-checkout build (expected). */
  built: string;
  /** /run/current-system. */
  running: string;
  /** /run/booted-system; undefined where the host has none. */
  booted: string | undefined;
  /** The built closure against the running one. */
  diff: ClosureDiff;
}

export interface SystemsVerdict {
  /** The three systems, for an attachment. */
  record: string;
  /** One line per pair that differs, naming both paths and what differs. */
  mismatches: string[];
  /** The closure difference of each mismatch. */
  attachments: { name: string; text: string }[];
}

const BUILT = 'clean-clone toplevel';
const CURRENT = '/run/current-system';
const BOOTED = '/run/booted-system';

/** The three systems in words; a host without /run/booted-system, or one switched since boot, is said so, and is no failure. */
export function describeSystems(systems: Omit<Systems, 'diff'>, host: string): string {
  const booted =
    systems.booted === undefined
      ? `none: ${host} has no ${BOOTED} (NixOS makes it at boot; a container started without NixOS's stage 2 has none)`
      : systems.booted === systems.running
        ? `${systems.booted} (= current)`
        : `${systems.booted} (≠ current: switched since boot, as \`nixos-rebuild switch\` without a reboot leaves it; not a failure)`;
  return [`expected (${BUILT}): ${systems.built}`, `current (${CURRENT} on ${host}): ${systems.running}`, `booted (${BOOTED} on ${host}): ${booted}`].join(
    '\n',
  );
}

/** What differs between two closures, in one line: counts, then the first path of each kind. */
export function summariseDifference(diff: ClosureDiff, [labelA, labelB]: [string, string]): string {
  const first = (what: string, paths: string[]) => (paths.length > 0 ? `${paths.length} ${what} (first ${paths[0]})` : `0 ${what}`);
  return [
    first(`only in ${labelA}`, diff.onlyInA),
    first(`only in ${labelB}`, diff.onlyInB),
    first(
      'with a different narHash',
      diff.narHashDiffers.map(({ path }) => path),
    ),
  ].join(', ');
}

/**
 * Judges expected = current (by path, and by narHash when `narHashes`). Runs diff-closures only
 * on a mismatch.
 */
export async function judgeSystems(systems: Systems, host: HostChannel, options: { narHashes: boolean; nix?: NixOptions }): Promise<SystemsVerdict> {
  const mismatches: string[] = [];
  const attachments: SystemsVerdict['attachments'] = [];
  const builtLabels: [string, string] = [BUILT, CURRENT];
  if (systems.built !== systems.running || (options.narHashes && !systems.diff.identical)) {
    mismatches.push(`${BUILT} ${systems.built} ≠ ${CURRENT} ${systems.running}: ${summariseDifference(systems.diff, builtLabels)}`);
    const tool = await diffClosuresWherever(systems.built, systems.running, host, options.nix);
    attachments.push({
      name: `closure difference: ${BUILT} vs ${CURRENT}`,
      text: formatClosureDiff(systems.diff, { labels: builtLabels, diffClosures: tool }),
    });
  }
  return { record: describeSystems(systems, host.name), mismatches, attachments };
}
