/** Warm run: the specs against a host as it stands (a kept throwaway). Nothing is created or destroyed. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { loadConfig } from '../../helpers/common/config.ts';
import { ConfigError } from '../../helpers/common/errors.ts';
import type { RunContext } from './context.ts';
import { freshResultsDir } from './reports.ts';

export default async function setupWarm(project: TestProject): Promise<void> {
  const config = loadConfig();
  await freshResultsDir(config.reportsDir);
  const file = join(config.stateDir, 'kept.json');
  const text = await readFile(file, 'utf8').catch(() => undefined);
  if (!text) {
    throw new ConfigError('ACCEPT_STATE_DIR', `no kept instance recorded in ${file}: run \`ACCEPT_KEEP=always npm run accept\` once first`);
  }
  const kept = JSON.parse(text) as RunContext;
  project.provide('run', { ...kept, mode: 'warm', instance: { ...kept.instance, createdInThisRun: false } });
}
