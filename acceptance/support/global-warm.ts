/**
 * Warm run: the specs against a host as it stands. Nothing is created or destroyed. The provider
 * of ACCEPT_TARGET finds the host (a kept throwaway, or the configured host for ssh) and builds
 * the run context from the settings in force now.
 *
 * In a long-lived session (`accept watch`), every re-run attaches again before its specs run: it
 * reads the settings and the kept record as they are then, not as they were when the session
 * started. A re-run that cannot attach (the kept record is gone, of another generation, or a
 * setting no longer holds) has every check ERROR with that cause; it never reuses the host the
 * session began with.
 */
import type { TestProject } from 'vitest/node';
import { loadConfig } from '../../helpers/common/config.ts';
import { errorMessage } from '../../helpers/common/errors.ts';
import { redact } from '../../helpers/common/redact.ts';
import { providerFor } from '../../machines/index.ts';
import { freshResultsDir } from './reports.ts';

/** The run context as the settings and the kept record give it now. */
async function attachNow(): Promise<{ config: ReturnType<typeof loadConfig>; run: Awaited<ReturnType<ReturnType<typeof providerFor>['attach']>> }> {
  const config = loadConfig();
  return { config, run: await providerFor(config).attach() };
}

export default async function setupWarm(project: TestProject): Promise<void> {
  // Registered before the first attach: a session whose first run could not attach (no kept host
  // yet) still attaches afresh when the builder re-runs it.
  project.onTestsRerun(async () => {
    try {
      const now = await attachNow();
      await freshResultsDir(now.config.reportsDir);
      project.provide('run', now.run);
      project.provide('runRefused', '');
    } catch (error) {
      // Whatever context an earlier run had stays provided only so that reports can name the host
      // the session faced; every spec's `run` throws this instead of using it (dod.ts).
      await Promise.resolve()
        .then(() => freshResultsDir(loadConfig().reportsDir))
        .catch(() => undefined);
      project.provide('runRefused', `this re-run could not attach to the kept host: ${redact(errorMessage(error))}`);
    }
  });
  const { config, run } = await attachNow();
  await freshResultsDir(config.reportsDir);
  project.provide('run', run);
  project.provide('runRefused', '');
}
