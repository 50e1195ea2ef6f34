/** `accept lab up|down|status`: the embedded lab's own command, the one CLI file that imports lab/. */
import type { Config } from '../helpers/common/config.ts';
import { formatDuration } from '../helpers/common/log.ts';
import { ensureLabTools, ensureWorkerProjects, labDown, labStatus, labUp, workerProjects } from '../lab/index.ts';

// accept doctor reads the lab's status through the lab command, the CLI's one importer of lab/.
export { labStatus };
import { cleanUpEverySabotage } from '../lab/sabotage.ts';

export async function bringUpLabIfNeeded(config: Config): Promise<void> {
  if (config.target !== 'lab') return;
  const started = performance.now();
  process.stderr.write(`→ Bringing the embedded lab up (${config.lab.dir})\n`);
  await labUp(config.lab.dir, config.lab.layout);
  process.stderr.write(`✓ Lab up (${formatDuration(performance.now() - started)})\n`);
}

/** The lab's Debian packages only (Incus, Nix, age, openssl…), installed if missing: what the unit tests need of it. */
export async function installLabTools(config: Config): Promise<void> {
  if (config.target !== 'lab') return;
  await ensureLabTools();
}

/**
 * An interrupted sabotage run may have left what it changed in the lab: an extra instance (which
 * would fail every run's memory guard), a drifted production or a resized neighbour (which the
 * next run would rightly call the lab's fault, an ERROR). Every sabotage's clean-up runs in every
 * worker project before the rows start, so each run begins from the lab's own machines.
 */
export async function clearLabLeftovers(config: Config): Promise<void> {
  if (config.target !== 'lab') return;
  for (const project of workerProjects(config.selftest.workers + 1)) await cleanUpEverySabotage(config.lab.dir, project);
}

/** The lab projects of ACCEPT_SELFTEST_WORKERS concurrent selftest runs. */
export async function bringUpWorkers(config: Config): Promise<void> {
  if (config.target !== 'lab') return;
  // One more than the workers: the slow-lab scenario sleeps in a project of its own.
  const projects = await ensureWorkerProjects(config.lab.dir, config.selftest.workers + 1);
  process.stderr.write(`✓ lab workers: projects ${projects.slice(0, -1).join(', ')}, and ${projects.at(-1)} for runs that mostly sleep\n`);
}

export async function lab(config: Config, args: string[], usage: string): Promise<number> {
  const [action, ...rest] = args;
  switch (action) {
    case 'up':
      await bringUpLabIfNeeded(config);
      return 0;
    case 'down':
      await labDown(config.lab.dir, { purge: rest.includes('--purge') });
      return 0;
    case 'status': {
      const lines = await labStatus(config.lab.dir);
      for (const line of lines) process.stdout.write(`${line.ok ? '✓' : '✗'} ${line.what.padEnd(14)} ${line.detail}\n`);
      return lines.every((line) => line.ok) ? 0 : 1;
    }
    default:
      process.stderr.write(`accept lab: expected up, down or status; got ${action ? JSON.stringify(action) : 'nothing'}\n\n${usage}`);
      return 2;
  }
}
