/**
 * Cold run: the provider of ACCEPT_TARGET provisions a brand-new throwaway (given only the
 * bootstrap age key, built by the runbook in docs/install.md). Torn down on every path; a reaper
 * covers the ones we cannot catch.
 */
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { loadConfig } from '../../helpers/common/config.ts';
import { Ledger } from '../../helpers/common/ledger.ts';
import { errorMessage } from '../../helpers/common/errors.ts';
import { log } from '../../helpers/common/log.ts';
import { forgetKept } from '../../machines/kept.ts';
import { newRunId } from '../../machines/labels.ts';
import { providerFor, type CreatedThrowaway, type Provisioned } from '../../machines/index.ts';
import { finishRunEvidence, recordRunStart } from './evidence-dir.ts';
import { freshResultsDir, reportCleanup, runPassed } from './reports.ts';
import type { CleanupRecord } from '../../reporting/run-record.ts';

export default async function setupCold(project: TestProject): Promise<() => Promise<void>> {
  const config = loadConfig();
  await freshResultsDir(config.reportsDir);
  const provider = providerFor(config, { bringUpLab: true });
  const runId = newRunId();
  const ledger = new Ledger();
  // Set as soon as the throwaway exists, before the runbook runs.
  let created: CreatedThrowaway | undefined;
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    const code = signal === 'SIGINT' ? 130 : 143;
    if (signalled || !created) {
      // A second signal means "now" (and before creation there is nothing to delete yet): the
      // labels, the reaper and the sweeper cover any instance a create in flight still makes.
      log.warn(`${signalled ? 'second ' : ''}${signal}: exiting at once; the reaper and \`accept sweep\` remove any throwaway of run ${runId}`);
      process.exit(code);
    }
    signalled = true;
    // Vitest exits the process right after its own handler: delete synchronously, or not at all.
    log.warn(`${signal}: deleting ${created.name} before exiting`);
    const deleted = created.stopNowSync();
    log.warn(
      deleted
        ? `${created.name} deleted`
        : `could not delete ${created.name} now; its reaper keeps trying, and \`accept sweep\` removes it after ${created.expiresAt}`,
    );
    process.exit(code);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const unhook = () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };

  let provisioned: Provisioned;
  try {
    provisioned = await provider.provision({
      runId,
      mode: 'cold',
      ledger,
      logDir: join(config.reportsDir, '.reaper'),
      keepOnFailure: config.keep !== 'never',
      onCreated: (throwaway) => (created = throwaway),
    });
  } catch (error) {
    unhook();
    await finishRunEvidence(config.reportsDir, { runId, ledger: ledger.entries });
    throw error;
  }
  const { context } = provisioned;
  const done = provisioned;
  const teardown = async () => {
    unhook();
    let deleteMs: number | undefined;
    let cleanup: CleanupRecord | undefined;
    const name = context.instance.name;
    const keep = config.keep === 'always' || (config.keep === 'on-failure' && !(await runPassed(config.reportsDir, runId)));
    if (keep) {
      done.keep();
      log.info(
        `ACCEPT_KEEP=${config.keep}: keeping ${name} until ${context.instance.expiresAt}; \`npx vitest run --project warm\` runs against it, \`npx accept down\` removes it`,
      );
    } else {
      // Before the delete: the lab's forge of this run stops once its throwaway is gone.
      const reach = await done.reach().catch((error: unknown) => `could not be observed: ${errorMessage(error)}`);
      const deleteStarted = performance.now();
      const { destroyedAt } = await done.stop();
      deleteMs = performance.now() - deleteStarted;
      cleanup = await reportCleanup(
        config.reportsDir,
        done.client,
        name,
        runId,
        destroyedAt,
        context.machinesBefore ? { machines: context.machines, before: context.machinesBefore } : undefined,
        reach,
      );
      if (config.keep === 'on-failure') await forgetKept(config.stateDir);
    }
    await done.close();
    await finishRunEvidence(config.reportsDir, { runId, ledger: ledger.entries, deleteMs, cleanup });
  };
  try {
    if (config.keep !== 'never') log.info(`kept-host record: ${await done.recordKept(config.stateDir)}`);
    await recordRunStart(config.reportsDir, context);
    project.provide('run', context);
  } catch (error) {
    await teardown();
    throw error;
  }
  return teardown;
}
