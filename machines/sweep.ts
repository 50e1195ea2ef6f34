/** Deletes what a killed run left behind: expired instances with this harness's labels, and nothing else. */
import { log } from '../helpers/common/log.ts';
import type { IncusClient } from '../helpers/incus/client.ts';
import { LABEL_EXPIRES, LABEL_RUN_ID, isExpired, isOurs } from './labels.ts';

export interface SweepResult {
  deleted: string[];
  kept: { name: string; why: string }[];
}

export async function sweep(client: IncusClient, options: { dryRun?: boolean; now?: Date } = {}): Promise<SweepResult> {
  const result: SweepResult = { deleted: [], kept: [] };
  for (const instance of await client.listInstances()) {
    if (!isOurs(instance)) continue;
    if (!isExpired(instance, options.now)) {
      result.kept.push({ name: instance.name, why: `run ${instance.config[LABEL_RUN_ID]} expires ${instance.config[LABEL_EXPIRES]}` });
      continue;
    }
    if (!options.dryRun) {
      await client.deleteInstance(instance.name);
      log.info(`swept expired ${instance.name} (run ${instance.config[LABEL_RUN_ID]})`);
    }
    result.deleted.push(instance.name);
  }
  return result;
}
