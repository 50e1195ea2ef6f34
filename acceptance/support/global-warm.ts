/**
 * Warm run: the specs against a host as it stands. Nothing is created or destroyed. The provider
 * of ACCEPT_TARGET finds the host (a kept throwaway, or the configured host for ssh) and builds
 * the run context from the settings in force now.
 */
import type { TestProject } from 'vitest/node';
import { loadConfig } from '../../helpers/common/config.ts';
import { providerFor } from '../../target/index.ts';
import { freshResultsDir } from './reports.ts';

export default async function setupWarm(project: TestProject): Promise<void> {
  const config = loadConfig();
  await freshResultsDir(config.reportsDir);
  project.provide('run', await providerFor(config).attach());
}
