/**
 * The running cc-ci against the clean-checkout build, as C1's zero drift (every narHash too) and
 * D8's static half (by path) both judge it: SKIPPED, naming why, where the run cannot reach it.
 */
import type { TestContext } from 'vitest';
import type { ProductionHost } from '../../machines/host.ts';
import type { RunContext } from './context.ts';
import { attach, expectNone, skipBecause, type MachineSystems, type Reproduction } from './dod.ts';
import { judgeSystems } from './systems.ts';

export async function judgeRunningCcci(
  context: { task: TestContext['task']; skip: (note?: string) => void },
  { reproduction, production, run }: { reproduction: Reproduction; production: ProductionHost; run: RunContext },
  { narHashes, failure }: { narHashes: boolean; failure: (machine: string) => string },
): Promise<MachineSystems> {
  const observed = reproduction.production;
  if ('unreachable' in observed || 'unreachable' in production)
    skipBecause(context, 'unreachable' in observed ? observed.unreachable : 'the running cc-ci is unreachable');
  const verdict = await judgeSystems(observed, production.host, { narHashes, nix: { nixConfig: run.nixConfig } });
  await attach(`expected, current and booted systems on ${observed.machine} (the running cc-ci)`, verdict.record);
  for (const { name, text } of verdict.attachments) await attach(`${name} on ${observed.machine}`, text);
  expectNone(verdict.mismatches, failure(observed.machine));
  return observed;
}
