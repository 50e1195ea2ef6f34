/** Report files that live outside Vitest's own reporters. */
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage } from '../../helpers/common/errors.ts';
import { log } from '../../helpers/common/log.ts';
import { redact } from '../../helpers/common/redact.ts';
import type { IncusClient } from '../../helpers/incus/client.ts';
import { LABEL_RUN_ID } from '../../machines/labels.ts';
import { changedMachines, describeObservations, observeMachines, type MachineObservation } from '../../machines/neighbours.ts';
import type { RunMachines } from '../../machines/run-context.ts';
import type { D8Record } from './d8.ts';
import { d8Markdown } from './d8.ts';
import { newRunRecord } from './evidence-dir.ts';
import { findRunRecord, writeRunRecord } from '../../reporting/run-record-io.ts';
import { withCleanup, type CleanupRecord } from '../../reporting/run-record.ts';
import { cleanupRow, writeSummary } from '../../reporting/dod-summary.ts';

/** Each acceptance run starts with an empty results directory, so a report shows one run only. */
export async function freshResultsDir(reportsDir: string): Promise<void> {
  const dir = join(reportsDir, 'allure-results');
  await mkdir(dir, { recursive: true });
  for (const entry of await readdir(dir)) await rm(join(dir, entry), { recursive: true, force: true });
  // Only this run's working files: evidence/<run-id>/ of earlier runs outlives them.
  for (const name of ['d8.json', 'd8.md', 'current-run']) await rm(join(reportsDir, 'evidence', name), { recursive: true, force: true });
}

/**
 * C6's second half, the last step of a cold run: after teardown, nothing of this run is left in
 * the project. The check goes to the console and into the run record (and so the DoD summary);
 * a leak fails the run. Answers the check; finishRunEvidence records it with the rest of the teardown.
 */
export async function reportCleanup(
  reportsDir: string,
  client: IncusClient,
  name: string,
  runId: string,
  destroyedAt: string,
  neighbours?: { machines: RunMachines; before: MachineObservation[] },
  reach?: string,
): Promise<CleanupRecord> {
  const left = (await client.listInstances()).filter((instance) => instance.name === name || instance.config[LABEL_RUN_ID] === runId);
  // The running cc-ci and the neighbours, as they stood before the throwaway was created.
  const after = neighbours ? await observeMachines(client, neighbours.machines) : [];
  const changed = neighbours ? changedMachines(neighbours.before, after) : [];
  const failures = [
    ...(left.length ? [`still present after teardown: ${left.map((instance) => instance.name).join(', ')}`] : []),
    ...(changed.length ? [`the run changed what it must leave alone: ${changed.join('; ')}`] : []),
  ];
  const untouched = after.length ? `; untouched: ${describeObservations(after)}` : '';
  const cleanup: CleanupRecord = {
    ...(failures.length
      ? { verdict: 'FAIL', evidence: failures.join('; '), at: new Date().toISOString() }
      : {
          verdict: 'PASS',
          evidence: `${name} deleted at ${destroyedAt}; no instance of run ${runId} remains in ${client.project}${untouched}`,
          at: new Date().toISOString(),
        }),
    ...(reach ? { reach: redact(reach) } : {}),
  };
  if (reach) log.info(`the throwaway's reach: ${redact(reach)}`);
  if (failures.length) {
    log.warn(cleanupRow(cleanup));
    process.exitCode = 1;
  } else {
    log.info(cleanupRow(cleanup));
  }
  const d8 = join(reportsDir, 'evidence', 'd8.json');
  const record = await readFile(d8, 'utf8').then(
    (text) => JSON.parse(text) as D8Record,
    () => undefined,
  );
  if (record?.live) {
    record.live.destroyedAt = destroyedAt;
    await writeFile(d8, `${JSON.stringify(record, null, 2)}\n`);
    await writeFile(join(reportsDir, 'evidence', 'd8.md'), d8Markdown(record));
  }
  // Recorded once, with the teardown's timings, by finishRunEvidence.
  return cleanup;
}

/**
 * Adds the cleanup check to the run's record and renders the summary again. When setup failed
 * before the record was made, a record of the cold run is started, so the check is not lost.
 */
export async function recordCleanup(reportsDir: string, runId: string, cleanup: CleanupRecord): Promise<void> {
  const record = (await findRunRecord(reportsDir, runId)) ?? (await newRunRecord(runId, undefined, 'cold'));
  const updated = withCleanup(record, cleanup);
  await writeRunRecord(reportsDir, updated);
  await writeSummary(reportsDir, updated);
}

/** Whether the run record of this run says PASS (for ACCEPT_KEEP=on-failure); no record is no pass. */
export async function runPassed(reportsDir: string, runId: string): Promise<boolean> {
  try {
    return (await findRunRecord(reportsDir, runId))?.verdict?.overall === 'PASS';
  } catch (error) {
    log.warn(`${redact(errorMessage(error))}; counting run ${runId} as not passed`);
    return false;
  }
}
