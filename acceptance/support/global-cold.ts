/**
 * Cold run: a brand-new throwaway, given only the bootstrap age key, built by the runbook in the
 * base repo's docs/install.md. Torn down on every path; a reaper covers the ones we cannot catch.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { loadConfig } from '../../helpers/common/config.ts';
import { Ledger } from '../../helpers/common/ledger.ts';
import { log } from '../../helpers/common/log.ts';
import { cloneRepo } from '../../helpers/git/index.ts';
import { parseRunbook } from '../../helpers/runbook/index.ts';
import { runRunbook } from '../../helpers/runbook/run.ts';
import { incusChannel } from '../../target/host.ts';
import { newRunId } from '../../target/labels.ts';
import { SABOTAGES, cleanUpSabotage, describeSabotage, parseSabotage, type SabotageContext } from '../../lab/sabotage.ts';
import { openIncus, resolveTarget } from '../../target/resolve.ts';
import { sweep } from '../../target/sweep.ts';
import { startThrowaway } from '../../target/throwaway.ts';
import { throwawayContext } from './context.ts';
import { finishRunEvidence, recordRunStart } from './evidence-dir.ts';
import { freshResultsDir, reportCleanup, runPassed } from './reports.ts';

export default async function setupCold(project: TestProject): Promise<() => Promise<void>> {
  const config = loadConfig();
  await freshResultsDir(config.reportsDir);
  const sabotage = config.target === 'lab' ? parseSabotage(config.labSabotage) : undefined;
  const target = await resolveTarget(config, { bringUpLab: true });
  const client = await openIncus(target);
  const swept = await sweep(client);
  if (swept.deleted.length) log.info(`swept ${swept.deleted.length} expired throwaway(s): ${swept.deleted.join(', ')}`);

  const runId = newRunId();
  const ledger = new Ledger();
  const throwaway = await startThrowaway(client, target, { runId, ttlMs: config.ttlMs, ledger, logDir: join(config.reportsDir, '.reaper') });
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    const code = signal === 'SIGINT' ? 130 : 143;
    if (signalled) {
      // A second signal means "now": the labels, the reaper and the sweeper still cover the instance.
      log.warn(`second ${signal}: exiting at once; ${throwaway.name} keeps its labels (expires ${throwaway.expiresAt}) for the reaper and \`accept sweep\``);
      process.exit(code);
    }
    signalled = true;
    // Vitest exits the process right after its own handler: delete synchronously, or not at all.
    log.warn(`${signal}: deleting ${throwaway.name} before exiting`);
    const deleted = throwaway.stopNowSync();
    log.warn(deleted ? `${throwaway.name} deleted` : `could not delete ${throwaway.name} now; its reaper keeps trying, and \`accept sweep\` removes it after ${throwaway.expiresAt}`);
    process.exit(code);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const teardown = async (setupFailed = false) => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    const keep = config.keep === 'always' || (config.keep === 'on-failure' && (setupFailed || !(await runPassed(config.reportsDir, runId))));
    if (keep) {
      throwaway.keep();
      log.info(`ACCEPT_KEEP=${config.keep}: keeping ${throwaway.name} until ${throwaway.expiresAt}; \`npx vitest run --project warm\` runs against it, \`npx accept down\` removes it`);
    } else if (sabotage && SABOTAGES[sabotage]!.leakThrowaway) {
      // The check must see the leak; the lab then removes the instance so nothing really leaks.
      throwaway.keep();
      await reportCleanup(config.reportsDir, client, throwaway.name, runId, new Date().toISOString());
      await throwaway.stop();
    } else {
      const { destroyedAt } = await throwaway.stop();
      await reportCleanup(config.reportsDir, client, throwaway.name, runId, destroyedAt);
      if (config.keep === 'on-failure') await rm(join(config.stateDir, 'kept.json'), { force: true });
    }
    if (sabotage) await cleanUpSabotage(config.labDir, sabotage);
    await client.close();
    await finishRunEvidence(config.reportsDir, { runId, ledger: ledger.entries });
  };

  try {
    const sabotageContext: SabotageContext | undefined = sabotage
      ? { labDir: config.labDir, domain: target.domain, gitUrl: new URL(target.baseRepo).origin, host: incusChannel(client, throwaway.name), recordedHost: throwaway.host }
      : undefined;
    if (sabotage) {
      log.warn(describeSabotage(sabotage));
      Object.assign(target, await SABOTAGES[sabotage]!.forkRepos?.(sabotageContext!));
    }
    if (sabotage) await SABOTAGES[sabotage]!.beforeRunbook?.(sabotageContext!);
    await using base = await cloneRepo(target.baseRepo, { setting: 'ACCEPT_BASE_REPO' });
    const source = 'docs/install.md';
    const steps = parseRunbook(await readFile(join(base.dir, source), 'utf8'), `${target.baseRepo} ${source}`);
    const runbook = await runRunbook(steps, throwaway.host, { source, ageKeyFile: target.ageKeyFile });
    if (sabotage) await SABOTAGES[sabotage]!.afterRunbook?.(sabotageContext!);

    const context = throwawayContext({ target, throwaway, runbook, ledger: ledger.entries, mode: 'cold', sabotage });
    if (config.keep !== 'never') {
      await mkdir(config.stateDir, { recursive: true });
      await writeFile(join(config.stateDir, 'kept.json'), `${JSON.stringify({ ...context, mode: 'warm' }, null, 2)}\n`);
    }
    await recordRunStart(config.reportsDir, context);
    project.provide('run', context);
  } catch (error) {
    await teardown(true);
    throw error;
  }
  return teardown;
}
