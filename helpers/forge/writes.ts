/**
 * Where the harness may write to a forge. Against a real target the recipes' forge is
 * production's: anything a test comments or opens there, production's bridge sees too. So
 * writes go only to a probe repo the operator made for this, or nowhere; the lab's forge is a
 * stand-in of the lab's own, where every write stays in the lab.
 */
import { HarnessError } from '../common/errors.ts';

export type ForgeWriteScope =
  /** The lab's stand-in forge: the lab made every repo on it, and nobody else reads it. */
  | { kind: 'stand-in' }
  /** Only comments, pull requests and commits on new branches of this one repo (owner/name): ACCEPT_FORGE_PROBE_REPO. */
  | { kind: 'probe'; repo: string }
  /** No write at all, and why (the reason a SKIPPED check gives). */
  | { kind: 'none'; reason: string };

export const PROBE_REPO_SETTING = 'ACCEPT_FORGE_PROBE_REPO';

/** A write the harness may ask for: a comment, pull request or file (on a branch) on owner/repo, or the new repo owner/repo. */
export interface ForgeWrite {
  kind: 'comment' | 'pull' | 'file' | 'repo';
  owner: string;
  repo: string;
}

function describeWrite(write: ForgeWrite): string {
  const at = `${write.owner}/${write.repo}`;
  if (write.kind === 'comment') return `a comment on ${at}`;
  if (write.kind === 'pull') return `a pull request on ${at}`;
  return write.kind === 'file' ? `a commit to ${at}` : `a new repo ${at}`;
}

/** Why `write` may not be made under `scope`, or undefined when it may. */
export function forgeWriteRefusal(scope: ForgeWriteScope, write: ForgeWrite): string | undefined {
  if (scope.kind === 'stand-in') return undefined;
  if (scope.kind === 'none') return `${describeWrite(write)} would write to the forge: ${scope.reason}`;
  if (write.kind === 'repo')
    return `${describeWrite(write)} would create a repo on the real forge; the harness writes only comments, pull requests and commits on branches of its own, and only on ${scope.repo} (${PROBE_REPO_SETTING})`;
  if (`${write.owner}/${write.repo}`.toLowerCase() === scope.repo.toLowerCase()) return undefined;
  return `${describeWrite(write)} is outside the probe repo ${scope.repo} (${PROBE_REPO_SETTING}): the harness never writes to a recipe's real PRs`;
}

/** A write the scope forbids, refused before any request leaves the harness. */
export class ForgeWriteRefused extends HarnessError {
  override readonly name: string = 'ForgeWriteRefused';
  constructor(readonly reason: string) {
    super(`refusing to write to the forge: ${reason}`);
  }
}

export function requireForgeWrite(scope: ForgeWriteScope, write: ForgeWrite): void {
  const refusal = forgeWriteRefusal(scope, write);
  if (refusal) throw new ForgeWriteRefused(refusal);
}

/** The scope of a real target (incus, ssh): the probe repo when the operator named one, else none. */
export function realForgeWrites(probeRepo: string | undefined): ForgeWriteScope {
  return probeRepo
    ? { kind: 'probe', repo: probeRepo }
    : {
        kind: 'none',
        reason: `against a real target the recipes' forge is production's, and no probe repo is set: set ${PROBE_REPO_SETTING}=owner/name to a repo made for the harness (enrolled with the bridge, with an open pull request) to run the checks that write`,
      };
}
