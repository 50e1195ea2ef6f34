/**
 * D2 — a `!testme` build runs the install, upgrade and backup/restore stages for real, and each
 * stage reports its own result.
 */
import type { DroneBuild } from '../helpers/drone/index.ts';
import { buildLogs, MATRIX, matrixStages, runStart, testmeBuild, WAITS, type Ci } from './support/ci.ts';
import type { RunContext } from './support/context.ts';
import { attach, dodItem, observation, expectNone, step, test, unlessWriteRefused, within, observes, ciFaces } from './support/dod.ts';

dodItem('D2', () => {
  let found: Promise<{ build: DroneBuild; reused: boolean }> | undefined;
  const build = (ci: Ci, run: RunContext) =>
    (found ??= step(`a finished !testme build of ${ci.probeRecipe}`, () => testmeBuild(ci, ci.probeRecipe, runStart(run))));

  test(
    'install, upgrade and backup/restore are stages of the build, each with its own result',
    async ({ ci, run, task, skip }) => {
      observes(task, ciFaces());
      const { build: b } = await unlessWriteRefused({ task, skip }, () => build(ci, run));
      await attach(`build #${b.number}`, b);
      const stages = matrixStages(ci, b);
      expectNone(
        [...stages].filter(([, stage]) => !stage).map(([label]) => label),
        `stages missing from build #${b.number} (it has ${(b.stages ?? []).map((s) => s.name).join(', ') || 'none'})`,
      );
      const bad = [...stages].flatMap(([label, stage]) => {
        const s = stage!;
        const problems = [];
        if (s.status !== 'success' || s.exit_code !== 0) problems.push(`${label} (${s.name}) ended ${s.status}, exit ${s.exit_code}`);
        if (!(s.started > 0 && s.finished >= s.started))
          problems.push(`${label} (${s.name}) has no start and end time (started ${s.started}, finished ${s.finished})`);
        return problems;
      });
      expectNone(bad, `build #${b.number}: stages without a successful result of their own`);
      observation(
        task,
        `build #${b.number} (${ci.probeRecipe}): ${[...stages].map(([, s]) => `${s!.name} ${s!.status} (exit ${s!.exit_code}, ${s!.finished - s!.started} s)`).join(', ')}`,
      );
    },
    within(...WAITS.build),
  );

  test(
    "each of them did its work for real: the steps' logs show the install, the upgrade, the backup and the restore",
    async ({ ci, run, task, skip }) => {
      observes(task, ciFaces());
      const { build: b } = await unlessWriteRefused({ task, skip }, () => build(ci, run));
      const logs = await buildLogs(ci, b);
      const stages = matrixStages(ci, b);
      const lines: string[] = [];
      const missing = MATRIX.flatMap(({ label, work }) => {
        const stage = stages.get(label);
        if (!stage) return [`${label}: no such stage`];
        const text = logs
          .filter((log) => log.stage === stage.name)
          .map((log) => log.text)
          .join('\n');
        lines.push(`## ${stage.name}\n${text}`);
        if (text.trim() === '') return [`stage ${stage.name} reported ${stage.status}, but its steps' logs are empty: nothing ran`];
        return work
          .filter((pattern) => !pattern.test(text))
          .map((pattern) => `stage ${stage.name} reported ${stage.status}, but its log never shows ${pattern.source}`);
      });
      await attach('stage logs', lines.join('\n\n'));
      expectNone(missing, `build #${b.number}: stages reported without doing their work`);
      const counts = MATRIX.map(({ label }) => {
        const stage = stages.get(label)!;
        return `${stage.name}: ${logs.filter((log) => log.stage === stage.name).reduce((sum, log) => sum + log.text.split('\n').filter(Boolean).length, 0)} log lines`;
      });
      observation(task, `build #${b.number}: ${counts.join(', ')}, each showing its work`);
    },
    within(...WAITS.build),
  );
});
