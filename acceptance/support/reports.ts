/** Report files that live outside Vitest's own reporters. */
import { appendFile, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { log } from '../../helpers/common/log.ts';
import type { IncusClient } from '../../helpers/incus/client.ts';
import { LABEL_RUN_ID } from '../../target/labels.ts';
import type { D8Evidence } from './d8.ts';
import { d8Markdown } from './d8.ts';

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
 * the project. The line goes to the console and to the DoD summary; a leak fails the run.
 */
export async function reportCleanup(reportsDir: string, client: IncusClient, name: string, runId: string, destroyedAt: string): Promise<void> {
  const left = (await client.listInstances()).filter((instance) => instance.name === name || instance.config[LABEL_RUN_ID] === runId);
  const line = left.length
    ? `| C6 cleanup after teardown | FAIL | still present after teardown: ${left.map((instance) => instance.name).join(', ')} |`
    : `| C6 cleanup after teardown | PASS | ${name} deleted at ${destroyedAt}; no instance of run ${runId} remains in ${client.project} |`;
  if (left.length) {
    log.warn(line);
    process.exitCode = 1;
  } else {
    log.info(line);
  }
  await appendFile(join(reportsDir, 'dod-summary.md'), `\nLast step of the run:\n\n| check | verdict | evidence |\n| --- | --- | --- |\n${line}\n`).catch(() => undefined);
  const d8 = join(reportsDir, 'evidence', 'd8.json');
  const evidence = await readFile(d8, 'utf8').then((text) => JSON.parse(text) as D8Evidence, () => undefined);
  if (evidence?.live) {
    evidence.live.destroyedAt = destroyedAt;
    await writeFile(d8, `${JSON.stringify(evidence, null, 2)}\n`);
    await writeFile(join(reportsDir, 'evidence', 'd8.md'), d8Markdown(evidence));
  }
}

/** Whether the DoD summary of this run says PASS (for ACCEPT_KEEP=on-failure); no summary is no pass. */
export async function runPassed(reportsDir: string, runId: string): Promise<boolean> {
  const summary = await readFile(join(reportsDir, 'dod-summary.md'), 'utf8').catch(() => '');
  return summary.includes(`**Run ${runId}: PASS**`);
}
