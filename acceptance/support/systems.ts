/**
 * Expected = current = booted: the clean-checkout build, /run/current-system and, where the host
 * has one, /run/booted-system are one system. C1 and D8 both record the three and judge them;
 * on a mismatch they attach what differs (paths, narHashes, `nix store diff-closures`).
 */
import type { HostChannel } from '../../helpers/common/host.ts';
import { closure, compareClosures, diffClosuresOnHost, diffClosuresWherever, formatClosureDiff, type ClosureDiff, type NixOptions } from '../../helpers/nix/index.ts';

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

/** The three systems in words; a host without /run/booted-system is said so, and is no failure. */
export function describeSystems(systems: Omit<Systems, 'diff'>, host: string): string {
  return [
    `expected (${BUILT}): ${systems.built}`,
    `current (${CURRENT} on ${host}): ${systems.running}`,
    `booted (${BOOTED} on ${host}): ${systems.booted ?? `none: ${host} has no ${BOOTED} (NixOS makes it at boot; a container started without NixOS's stage 2 has none)`}`,
  ].join('\n');
}

/** What differs between two closures, in one line: counts, then the first path of each kind. */
export function summariseDifference(diff: ClosureDiff, [labelA, labelB]: [string, string]): string {
  const first = (what: string, paths: string[]) => (paths.length > 0 ? `${paths.length} ${what} (first ${paths[0]})` : `0 ${what}`);
  return [
    first(`only in ${labelA}`, diff.onlyInA),
    first(`only in ${labelB}`, diff.onlyInB),
    first('with a different narHash', diff.narHashDiffers.map(({ path }) => path)),
  ].join(', ');
}

/**
 * Judges expected = current (by path, and by narHash when `narHashes`) and current = booted (by
 * path). Reads the booted closure and runs diff-closures only on a mismatch.
 */
export async function judgeSystems(systems: Systems, host: HostChannel, options: { narHashes: boolean; nix?: NixOptions }): Promise<SystemsVerdict> {
  const mismatches: string[] = [];
  const attachments: SystemsVerdict['attachments'] = [];
  const builtLabels: [string, string] = [BUILT, CURRENT];
  if (systems.built !== systems.running || (options.narHashes && !systems.diff.identical)) {
    mismatches.push(`${BUILT} ${systems.built} ≠ ${CURRENT} ${systems.running}: ${summariseDifference(systems.diff, builtLabels)}`);
    const tool = await diffClosuresWherever(systems.built, systems.running, host, options.nix);
    attachments.push({ name: `closure difference: ${BUILT} vs ${CURRENT}`, text: formatClosureDiff(systems.diff, { labels: builtLabels, diffClosures: tool }) });
  }
  if (systems.booted !== undefined && systems.booted !== systems.running) {
    const bootedLabels: [string, string] = [BOOTED, CURRENT];
    const diff = compareClosures(await closure(host, { path: systems.booted }), await closure(host, { path: systems.running }));
    mismatches.push(`${BOOTED} ${systems.booted} ≠ ${CURRENT} ${systems.running}: ${summariseDifference(diff, bootedLabels)}`);
    const tool = await diffClosuresOnHost(host, systems.booted, systems.running);
    attachments.push({ name: `closure difference: ${BOOTED} vs ${CURRENT}`, text: formatClosureDiff(diff, { labels: bootedLabels, diffClosures: tool }) });
  }
  return { record: describeSystems(systems, host.name), mismatches, attachments };
}
