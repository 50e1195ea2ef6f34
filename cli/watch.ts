/**
 * `accept watch`: the builder's long-lived warm session. One Vitest (its Node API, watch mode)
 * stays open against the kept host; each re-run reuses its config, reporters, global setup,
 * transforms, one worker process and helpers/ (acceptance/support/session-pool.ts), and pays
 * for the evaluation of the specs and the layers above helpers/ (its fixtures are then made
 * afresh), the checks and the reports. `--new-worker-each-run` starts a worker per run, as Vitest does (the bench compares). Every re-run attaches afresh (acceptance/support/global-warm.ts):
 * it faces the settings and the kept record as they are then, and ERRORs naming what no longer
 * holds rather than reading the host the session began with.
 *
 * Re-runs come from a key (Enter or r in a terminal; a line on a piped stdin), from a change to
 * a spec or a module it imports (Vitest's watcher), or from a change to the kept record.
 */
import { watch as watchFile, type FSWatcher } from 'node:fs';
import { createInterface } from 'node:readline';
import { basename, dirname } from 'node:path';
import type { Vitest } from 'vitest/node';
import { runDoneLine } from '../reporting/session-line.ts';
import type { Config } from '../helpers/common/config.ts';
import { keptFile } from '../machines/kept.ts';

/**
 * The specs a session runs when it is given none: those that only read the host (D1-D7 and D10
 * comment !testme and read builds; D4, D5 and D6 commit and rebuild). bench/warm-checks.sh makes
 * the same checks.
 */
export const READ_ONLY_SPECS = [
  'c1-repo-split',
  'c2-cert-in-git',
  'c3-one-out-of-band-secret',
  'c4-live-rebuild',
  'c5-honest-d8',
  'c6-resource-fit',
  'c7-docs',
  'd8-reproducible-server',
  'd9-documentation',
].map((name) => `acceptance/${name}.spec.ts`);

export async function watch(config: Config, args: string[]): Promise<number> {
  const { createVitest, registerConsoleShortcuts } = await import('vitest/node');
  const newWorkerEachRun = args.includes('--new-worker-each-run');
  const specs = args.filter((arg) => arg !== '--new-worker-each-run');
  const files = specs.length ? specs : READ_ONLY_SPECS;
  const { closeSessionWorker, sessionPool } = await import('../acceptance/support/session-pool.ts');
  // One worker process for the whole session (session-pool.ts): each run still evaluates the specs and the layers above helpers/, and makes its fixtures afresh.
  const vitest: Vitest = await createVitest('test', { watch: true, project: ['warm'], ...(newWorkerEachRun ? {} : { pool: sessionPool }) } as Parameters<
    typeof createVitest
  >[1]);
  const closed = new Promise<void>((resolve) => vitest.onClose(() => resolve()));

  // Every re-run reads kept.json afresh; a new record (a new kept host, or `accept down`) is a
  // reason to run again at once. Its directory is watched: the file is replaced, not edited.
  const kept = keptFile(config.stateDir);
  let keptWatcher: FSWatcher | undefined;
  try {
    keptWatcher = watchFile(dirname(kept), (_event, name) => {
      if (name === basename(kept)) rerun('a change to kept.json');
    });
  } catch {
    process.stderr.write(`accept watch: ${dirname(kept)} (ACCEPT_STATE_DIR) cannot be watched; re-run by hand after a new kept host\n`);
  }
  // Re-runs the files of the session, as Vitest's own `r` does. One at a time: a re-run's
  // attach (global-warm.ts) clears the reports, so it must not start while a run writes them; a
  // trigger during a run is dropped, and said so.
  let running: Promise<void> | undefined;
  let closing = false;
  // Closing waits for the run under way: a run that went on after Vitest closed would find its
  // transformed modules gone.
  const close = (): void => {
    if (closing) return;
    closing = true;
    void Promise.resolve(running).then(() => vitest.close());
  };
  const rerun = (why: string): void => {
    if (closing) return;
    if (running) {
      process.stdout.write(`accept watch: a run is under way; ${why} is ignored (press Enter again once it ends)\n`);
      return;
    }
    running = (async () => {
      // A run Vitest started itself (a changed spec; its keys in a terminal) ends first: Vitest's
      // field, not in its types, and absent when nothing runs.
      await (vitest as unknown as { runningPromise?: Promise<unknown> }).runningPromise?.catch(() => undefined);
      const specifications = (await vitest.getRelevantTestSpecifications(files)).filter((spec) => spec.project.name === 'warm');
      await vitest.rerunTestSpecifications(specifications, false).catch((error: unknown) => {
        process.stderr.write(`accept watch: the re-run (${why}) did not run: ${String(error)}\n`);
      });
    })().finally(() => {
      running = undefined;
    });
  };

  let cleanup: (() => void) | undefined;
  if (process.stdin.isTTY) {
    cleanup = registerConsoleShortcuts(vitest, process.stdin, process.stdout);
  } else {
    // A pipe (the bench, the scenario tests, an editor): each line re-runs; `q` quits.
    const lines = createInterface({ input: process.stdin });
    lines.on('line', (line) => {
      if (line.trim() === 'q') close();
      else rerun('the line on stdin');
    });
    lines.on('close', close);
    cleanup = () => lines.close();
  }
  // The first run counts as running: a key pressed during it is dropped too.
  const started = performance.now();
  running = vitest.start(files).then(
    () => undefined,
    (error: unknown) => {
      // The first run could not run (its global setup threw, say, for want of a kept host): the
      // session stays open, and the next re-run attaches afresh.
      vitest.logger.printError(error, { fullStack: false, type: 'the first run' });
      process.stdout.write(runDoneLine(1, performance.now() - started, 'ERROR', 'start; the error is above'));
    },
  );
  await running;
  running = undefined;
  await closed;
  await closeSessionWorker();
  cleanup?.();
  keptWatcher?.close();
  return 0;
}
