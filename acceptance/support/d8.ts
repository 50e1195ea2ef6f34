/**
 * The D8 evidence: the static half (a clean-checkout build equals the running system) and the
 * live half (a brand-new machine rebuilt from git by the runbook), each with hashes and times.
 * Written to reports/evidence/d8.{json,md}; the cold teardown adds when the throwaway was destroyed.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { displayUrl } from '../../helpers/common/credentials.ts';
import { redact } from '../../helpers/common/redact.ts';
import type { ClosureDiff } from '../../helpers/nix/index.ts';

export interface D8Evidence {
  runId: string;
  static: { builtAt: string; baseRepo: string; commit: string; composition: string; toplevel: string; closureHash: string; paths: number };
  /** `booted`: /run/booted-system, null where the host has none; absent in evidence from before it was recorded. */
  running: { observedAt: string; host: string; toplevel: string; booted?: string | null; closureHash: string; paths: number };
  identical: boolean;
  live?: {
    instance: string;
    project: string;
    createdAt: string;
    destroyedAt: string | null;
    runbook: { source: string; steps: { index: number; text: string; exitCode: number; startedAt: string; channel?: { via: string; lostForMs?: number } }[] };
    rebuildExitCode: number | undefined;
    toplevel: string;
  };
}

export function d8Markdown(evidence: D8Evidence, diff?: ClosureDiff): string {
  const lines = [
    '# D8 evidence: reproducible server',
    '',
    `Run ${evidence.runId}.`,
    '',
    '## Static half: a clean checkout builds the running system',
    '',
    `- ${evidence.static.builtAt}: built \`${evidence.static.toplevel}\` from a fresh clone of ${displayUrl(evidence.static.baseRepo)} at ${evidence.static.commit} (${evidence.static.composition} layout)`,
    `- closure: ${evidence.static.paths} paths, ${evidence.static.closureHash}`,
    `- ${evidence.running.observedAt}: \`/run/current-system\` on ${evidence.running.host} is \`${evidence.running.toplevel}\`, closure ${evidence.running.paths} paths, ${evidence.running.closureHash}`,
    ...(evidence.running.booted === undefined ? [] : [`- \`/run/booted-system\` on ${evidence.running.host}: ${evidence.running.booted === null ? 'none (the host was not booted by NixOS: a container)' : `\`${evidence.running.booted}\`${evidence.running.booted === evidence.running.toplevel ? ' (= current)' : ' (≠ current)'}`}`]),
    `- byte-identical: ${evidence.identical ? 'yes' : `no${diff ? ` (${diff.onlyInA.length} paths only in the build, ${diff.onlyInB.length} only on the host, ${diff.narHashDiffers.length} with different narHash)` : ''}`}`,
    '',
    '## Live half: a brand-new machine rebuilt from git',
    '',
  ];
  if (!evidence.live) {
    lines.push('Not in this run: the live half needs a cold run (the host was not created by it).');
  } else {
    const live = evidence.live;
    lines.push(
      `- ${live.createdAt}: created ${live.instance} blank in project ${live.project}`,
      ...live.runbook.steps.map((step) => `- ${step.startedAt}: runbook step ${step.index} (${live.runbook.source}): \`${step.text.split('\n')[0]}\` → ${step.channel?.lostForMs !== undefined ? `exit unknown: its channel dropped and answered again after ${Math.round(step.channel.lostForMs / 1000)} s` : `exit ${step.exitCode}`}${step.channel ? ` (over ${step.channel.via})` : ''}`),
      `- rebuild exit code: ${live.rebuildExitCode ?? 'not reached'}`,
      `- running toplevel: \`${live.toplevel}\``,
      `- destroyed: ${live.destroyedAt ?? 'after the specs (see the teardown line of the DoD summary)'}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

export async function writeD8(reportsDir: string, given: D8Evidence, diff?: ClosureDiff): Promise<void> {
  const dir = join(reportsDir, 'evidence');
  await mkdir(dir, { recursive: true });
  // The repo URL is recorded without credentials, and every string redacted before it is escaped.
  const evidence = { ...given, static: { ...given.static, baseRepo: displayUrl(given.static.baseRepo) } };
  await writeFile(join(dir, 'd8.json'), `${JSON.stringify(evidence, (_key, value: unknown) => (typeof value === 'string' ? redact(value) : value), 2)}\n`);
  await writeFile(join(dir, 'd8.md'), redact(d8Markdown(evidence, diff)));
}
