import { defineConfig } from 'vitest/config';
import { ALLURE_CATEGORIES, allureVerdictListener } from './reporting/allure.ts';
import { DodOrderSequencer } from './acceptance/support/sequencer.ts';
import { budgetMs } from './helpers/common/budget.ts';
import { loadConfig, realTargetDurations } from './helpers/common/config.ts';

const reportsDir = process.env.ACCEPT_REPORTS_DIR ?? 'reports';
// Evidence reports are for acceptance runs; the harness's own tests report under selftest/.
// `accept watch` is a warm session in the accept process itself.
const acceptanceRun =
  process.argv.some((arg) => /^(--project=)?(cold|warm)$/.test(arg)) || (/(^|\/)accept(\.mjs)?$/.test(process.argv[1] ?? '') && process.argv[2] === 'watch');
const allureResults = acceptanceRun ? `${reportsDir}/allure-results` : `${reportsDir}/selftest/allure-results`;

// Project defaults from the durations (a real target's, unless set): each spec's suite and each
// test that waits set their own timeouts from the run's durations (`within` in dod.ts). Global
// setup (provisioning and the runbook) is not timed by Vitest: its waits are (ACCEPT_BOOT_TIMEOUT,
// ACCEPT_REBUILD_TIMEOUT for each runbook step).
const checkMs = budgetMs(realTargetDurations(loadConfig()));

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
  test: {
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
        test: { name: 'warm', ...acceptance, globalSetup: ['acceptance/support/global-warm.ts'] },
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
