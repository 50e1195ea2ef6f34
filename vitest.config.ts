import { resolve } from 'node:path';
import { defineConfig } from 'vitest/config';
import { ALLURE_CATEGORIES, allureVerdictListener } from './reporting/allure.ts';
import { DodOrderSequencer } from './acceptance/support/sequencer.ts';
import { budgetMs } from './helpers/common/budget.ts';
import { loadConfig, realTargetDurations } from './helpers/common/config.ts';

const reportsDir = process.env.ACCEPT_REPORTS_DIR ?? 'reports';
// Evidence reports are for acceptance runs; the harness's own tests report under selftest/.
// `accept watch` is a warm session in the accept process itself.
const session = /(^|\/)accept(\.mjs)?$/.test(process.argv[1] ?? '') && process.argv[2] === 'watch';
const runsProject = (name: string) => process.argv.some((arg) => arg === name || arg === `--project=${name}`);
const acceptanceRun = runsProject('cold') || runsProject('warm') || session;
const allureResults = acceptanceRun ? `${reportsDir}/allure-results` : `${reportsDir}/selftest/allure-results`;

// Project defaults from the durations (a real target's, unless set): each spec's suite and each
// test that waits set their own timeouts from the run's durations (`within` in dod.ts). Global
// setup (provisioning and the runbook) is not timed by Vitest: its waits are (ACCEPT_BOOT_TIMEOUT,
// ACCEPT_REBUILD_TIMEOUT for each runbook step).
const checkMs = budgetMs(realTargetDurations(loadConfig()));

// A builder's warm loop keeps Vitest's transforms on disk (node_modules/.experimental-vitest-cache,
// keyed by each file's content), the main process's (config, reporters, global setup) as the
// worker's: a whole-process warm run then transforms almost nothing (npm run bench). Cold runs, and
// the matrix that established their verdicts, transform afresh.
const warmRun = runsProject('warm') || session;

interface SourceMapped {
  evaluatedModules?: {
    getModuleById(id: string): { meta?: { code?: unknown } } | undefined;
    getModuleSourceMapById(id: string): unknown;
  };
}
const TEXT_CODE = Symbol('accept: cached code read as text');

/**
 * Vitest 4.1.12's main-process module runner takes a module from the on-disk cache as a Buffer
 * (a readFile without an encoding; 5.x reads it as UTF-8), and its error mapping, which wants a
 * string, then fails: a global setup's error read "TypeError: code.charCodeAt is not a function"
 * in place of the harness's message. This makes that code text before its source map is looked
 * for (test/e2e/bad-input.test.ts checks the message under the cache).
 */
function cachedCodeAsText(runner: unknown): void {
  const modules = (runner as SourceMapped | undefined)?.evaluatedModules;
  if (!modules || (modules as Record<symbol, unknown>)[TEXT_CODE]) return;
  (modules as Record<symbol, unknown>)[TEXT_CODE] = true;
  const sourceMapOf = modules.getModuleSourceMapById.bind(modules);
  modules.getModuleSourceMapById = (id) => {
    const meta = modules.getModuleById(id)?.meta;
    if (meta && Buffer.isBuffer(meta.code)) meta.code = meta.code.toString('utf8');
    return sourceMapOf(id);
  };
}

const cachedCodeAsTextPlugin = {
  name: 'accept-cached-code-as-text',
  configureVitest({ vitest, project }: { vitest: { runner?: unknown }; project: { runner?: unknown } }) {
    cachedCodeAsText(vitest.runner);
    cachedCodeAsText(project.runner);
  },
};

// Acceptance specs share one expensive throwaway: run them in one worker, in DoD order (see the sequencer).
const acceptance = {
  include: ['acceptance/**/*.spec.ts'],
  setupFiles: ['allure-vitest/setup', 'acceptance/support/redact-reports.ts'],
  fileParallelism: false,
  // One worker for every spec file: the worker-scoped fixtures (channel, clones, decryption, the
  // clean-checkout build) are then made once per run, and no file pays a new process's start-up.
  isolate: false,
  testTimeout: checkMs,
  hookTimeout: checkMs,
  sequence: { shuffle: false },
};

// The harness's own scenarios (e2e and the sabotage matrix) run files and concurrent tests side by
// side: every cold run among them first leases one of the lab's worker projects
// (ACCEPT_SELFTEST_WORKERS, test/e2e/support.ts), and that lease, not Vitest, bounds how many
// throwaways exist at once. A test's time includes its wait for a lease, so the timeouts are for
// hangs; each child run also has its own limit, which starts once it holds a lease.
const scenarios = {
  maxWorkers: 6,
  maxConcurrency: 8,
  testTimeout: 3_600_000,
  hookTimeout: 3_600_000,
};

export default defineConfig({
  // A long-lived session watches the specs and what they import, not what runs write: each run's
  // reports (Allure results, the evidence directory) and the transform cache set the watcher
  // stat-ing every new file, most of the main process's time between runs (npm run bench).
  server: { watch: { ignored: [`${resolve(reportsDir)}/**`, '**/reports/**', '**/.experimental-vitest-cache/**'] } },
  test: {
    experimental: { fsModuleCache: warmRun },
    sequence: { sequencer: DodOrderSequencer },
    reporters: [
      'default',
      // The listener gives each result the DoD verdict (FAIL = failed, ERROR = broken) and its plan
      // link; matcher steps are left out so that steps keep the readable names the specs give them.
      ['allure-vitest/reporter', { resultsDir: allureResults, reportMatchers: false, categories: ALLURE_CATEGORIES, listeners: [allureVerdictListener] }],
      // Vitest's JUnit reporter, with the run's target as <properties> of each testsuite.
      ['./acceptance/support/junit-reporter.ts', { outputFile: acceptanceRun ? `${reportsDir}/junit.xml` : `${reportsDir}/selftest/junit.xml` }],
      './acceptance/support/dod-reporter.ts',
      // One line per run of a long-lived session (accept watch); silent outside watch mode.
      './acceptance/support/session-reporter.ts',
      // Each test that skipped itself, with its reason; the harness's own tests only.
      './acceptance/support/skip-reporter.ts',
    ],
    projects: [
      {
        test: {
          name: 'unit',
          include: [
            'reporting/**/*.test.ts',
            'helpers/**/*.test.ts',
            'machines/**/*.test.ts',
            'lab/**/*.test.ts',
            'cli/**/*.test.ts',
            'acceptance/support/**/*.test.ts',
            'test/deps/**/*.test.ts',
            'test/docs/**/*.test.ts',
            'test/ci/**/*.test.ts',
            'test/selftest/judge.test.ts',
          ],
          setupFiles: ['allure-vitest/setup'],
          testTimeout: 30_000,
          // Vitest's default is one fewer worker than cores: one file at a time on this 2-core
          // machine, and the files mostly wait on git, nix, openssl and sockets.
          maxWorkers: 3,
        },
      },
      {
        test: {
          name: 'cold',
          ...acceptance,
          globalSetup: ['acceptance/support/global-cold.ts'],
        },
      },
      {
        plugins: [cachedCodeAsTextPlugin],
        test: {
          name: 'warm',
          ...acceptance,
          globalSetup: ['acceptance/support/global-warm.ts'],
        },
      },
      {
        test: { name: 'selftest', include: ['test/selftest/**/*.test.ts'], ...scenarios },
      },
      {
        test: { name: 'e2e', include: ['test/e2e/**/*.test.ts'], ...scenarios },
      },
    ],
  },
});
