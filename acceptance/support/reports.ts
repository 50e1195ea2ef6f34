/** Each acceptance run starts with an empty results directory, so a report shows one run only. */
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';

export async function freshResultsDir(reportsDir: string): Promise<void> {
  const dir = join(reportsDir, 'allure-results');
  await mkdir(dir, { recursive: true });
  for (const entry of await readdir(dir)) await rm(join(dir, entry), { recursive: true, force: true });
}
