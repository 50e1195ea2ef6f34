/**
 * The D8 record: what the harness itself saw of D8 in this run, the static half (a clean-checkout
 * build equals the running system) and the live half (a brand-new machine rebuilt from git by the
 * runbook), each with hashes and times. Written to reports/evidence/d8.{json,md}, and so into the
 * run's evidence directory; the cold teardown adds when the throwaway was destroyed. Not the D8
 * document the system publishes (helpers/docs/d8-document.ts), which C5 holds against it.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { displayUrl } from '../../helpers/common/credentials.ts';
import { redact } from '../../helpers/common/redact.ts';
import type { ClosureDiff } from '../../helpers/nix/index.ts';

export interface D8Record {
  runId: string;
  static: { builtAt: string; baseRepo: string; commit: string; composition: string; toplevel: string; closureHash: string; paths: number };
  /** `booted`: /run/booted-system, null where the host has none; absent in a record from before it was recorded. */
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

export function d8Markdown(record: D8Record, diff?: ClosureDiff): string {
  const lines = [
    '# D8 evidence: reproducible server',
    '',
    `Run ${record.runId}.`,
    '',
    '## Static half: a clean checkout builds the running system',
    '',
    `- ${record.static.builtAt}: built \`${record.static.toplevel}\` from a fresh clone of ${displayUrl(record.static.baseRepo)} at ${record.static.commit} (${record.static.composition} layout)`,
    `- closure: ${record.static.paths} paths, ${record.static.closureHash}`,
    `- ${record.running.observedAt}: \`/run/current-system\` on ${record.running.host} is \`${record.running.toplevel}\`, closure ${record.running.paths} paths, ${record.running.closureHash}`,
    ...(record.running.booted === undefined
      ? []
      : [
          `- \`/run/booted-system\` on ${record.running.host}: ${record.running.booted === null ? 'none (the host was not booted by NixOS: a container)' : `\`${record.running.booted}\`${record.running.booted === record.running.toplevel ? ' (= current)' : ' (≠ current)'}`}`,
        ]),
    `- byte-identical: ${record.identical ? 'yes' : `no${diff ? ` (${diff.onlyInA.length} paths only in the build, ${diff.onlyInB.length} only on the host, ${diff.narHashDiffers.length} with different narHash)` : ''}`}`,
    '',
    '## Live half: a brand-new machine rebuilt from git',
    '',
  ];
  if (!record.live) {
    lines.push('Not in this run: the live half needs a cold run (the host was not created by it).');
  } else {
    const live = record.live;
    lines.push(
      `- ${live.createdAt}: created ${live.instance} blank in project ${live.project}`,
      ...live.runbook.steps.map(
        (step) =>
          `- ${step.startedAt}: runbook step ${step.index} (${live.runbook.source}): \`${step.text.split('\n')[0]}\` → ${step.channel?.lostForMs !== undefined ? `exit unknown: its channel dropped and answered again after ${Math.round(step.channel.lostForMs / 1000)} s` : `exit ${step.exitCode}`}${step.channel ? ` (over ${step.channel.via})` : ''}`,
      ),
      `- rebuild exit code: ${live.rebuildExitCode ?? 'not reached'}`,
      `- running toplevel: \`${live.toplevel}\``,
      `- destroyed: ${live.destroyedAt ?? 'after the specs (see the teardown line of the DoD summary)'}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

export async function writeD8(reportsDir: string, given: D8Record, diff?: ClosureDiff): Promise<void> {
  const dir = join(reportsDir, 'evidence');
  await mkdir(dir, { recursive: true });
  // The repo URL is recorded without credentials, and every string redacted before it is escaped.
  const record = { ...given, static: { ...given.static, baseRepo: displayUrl(given.static.baseRepo) } };
  await writeFile(join(dir, 'd8.json'), `${JSON.stringify(record, (_key, value: unknown) => (typeof value === 'string' ? redact(value) : value), 2)}\n`);
  await writeFile(join(dir, 'd8.md'), redact(d8Markdown(record, diff)));
}
