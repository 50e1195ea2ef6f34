/**
 * Guardrails, enforced in code rather than trusted to review: creation must fit the project's
 * memory budget, and the harness deletes nothing it did not create and label for this run.
 */
import { parseBytes } from '../helpers/common/config.ts';
import { HarnessError } from '../helpers/common/errors.ts';
import type { IncusClient, IncusInstance } from '../helpers/incus/client.ts';
import { LABEL_OWNER, LABEL_RUN_ID, isOurs } from './labels.ts';

export interface MemoryRow {
  name: string;
  /** limits.memory as Incus holds it, or undefined when unset. */
  limit?: string;
  bytes: number;
  /** Why bytes is not simply the limit (unbounded, unreadable, a percentage). */
  note?: string;
}

export interface MemoryFit {
  project: string;
  running: MemoryRow[];
  runningBytes: number;
  newBytes: number;
  totalBytes: number;
  guidelineBytes: number;
  physicalBytes: number;
}

const GiB = 2 ** 30;
export const gib = (bytes: number): string => `${(bytes / GiB).toFixed(1)} GiB`;

// Incus also takes these spellings, which ACCEPT_INCUS_MEMORY does not.
const INCUS_ONLY_UNITS: Record<string, number> = { kB: 1e3, PB: 1e15, EB: 1e18, PiB: 2 ** 50, EiB: 2 ** 60 };

/**
 * What one instance's limits.memory reserves of a host with `physical` bytes. No limit means it
 * may take the whole host, and so does a value we cannot read: the guard errs towards refusing.
 */
export function reservedBytes(limit: string | undefined, physical: number): { bytes: number; note?: string } {
  if (limit === undefined || limit.trim() === '') return { bytes: physical, note: "no limits.memory: counted as the server's whole memory" };
  const value = limit.trim();
  const percent = /^(\d+(?:\.\d+)?)%$/.exec(value);
  if (percent) return { bytes: Math.round((Number(percent[1]) / 100) * physical), note: `${value} of ${gib(physical)}` };
  if (/^\d+$/.test(value)) return { bytes: Number(value) };
  const incusOnly = /^(\d+(?:\.\d+)?)\s*(kB|PB|EB|PiB|EiB)$/.exec(value);
  if (incusOnly) return { bytes: Math.round(Number(incusOnly[1]) * INCUS_ONLY_UNITS[incusOnly[2]!]!) };
  try {
    return { bytes: parseBytes('limits.memory', value) };
  } catch {
    return { bytes: physical, note: "unreadable limits.memory: counted as the server's whole memory" };
  }
}

/** Instances that hold memory now. A frozen instance keeps its memory while paused. */
export function holdsMemory(instance: Pick<IncusInstance, 'status'>): boolean {
  return instance.status === 'Running' || instance.status === 'Frozen';
}

function describeRows(rows: MemoryRow[]): string {
  if (rows.length === 0) return 'nothing running';
  return rows.map((row) => `${row.name} ${row.limit ?? '(unset)'}${row.note ? ` [${row.note}]` : ''}`).join(' + ');
}

/**
 * Refuses (HarnessError) when the project's running memory plus `memory` for the new instance
 * would exceed the guideline (ACCEPT_RAM_GUIDELINE) or reach the server's physical memory.
 * Two runs starting at once could each pass alone; the sum is checked, not reserved.
 */
export async function checkMemoryFits(
  client: Pick<IncusClient, 'listInstances' | 'resources' | 'project'>,
  request: { instance: string; memory: string; guidelineBytes: number },
): Promise<MemoryFit> {
  const [resources, instances] = await Promise.all([client.resources(), client.listInstances()]);
  const physical = resources.memory.total;
  const running: MemoryRow[] = instances.filter(holdsMemory).map((instance) => {
    const limit = instance.expanded_config?.['limits.memory'] ?? instance.config?.['limits.memory'];
    return { name: instance.name, limit, ...reservedBytes(limit, physical) };
  });
  const runningBytes = running.reduce((sum, row) => sum + row.bytes, 0);
  const newBytes = parseBytes('ACCEPT_INCUS_MEMORY', request.memory);
  const fit: MemoryFit = {
    project: client.project,
    running,
    runningBytes,
    newBytes,
    totalBytes: runningBytes + newBytes,
    guidelineBytes: request.guidelineBytes,
    physicalBytes: physical,
  };
  const sum =
    `project ${client.project} runs ${describeRows(running)} = ${gib(runningBytes)}; ` +
    `with ${request.instance} (${request.memory}) it would be ${gib(fit.totalBytes)}`;
  if (fit.totalBytes > request.guidelineBytes) {
    throw new HarnessError(
      `refusing to create ${request.instance}: ${sum}, over the ${gib(request.guidelineBytes)} guideline (ACCEPT_RAM_GUIDELINE). ` +
        'Stop something in the project, or lower ACCEPT_INCUS_MEMORY.',
    );
  }
  // C6 wants the sum strictly below physical memory; equal already fails it.
  if (fit.totalBytes >= physical) {
    throw new HarnessError(
      `refusing to create ${request.instance}: ${sum}, not below the server's ${gib(physical)} of physical memory (/1.0/resources), ` +
        'even though it fits ACCEPT_RAM_GUIDELINE. Stop something in the project, or lower ACCEPT_INCUS_MEMORY.',
    );
  }
  return fit;
}

/**
 * The only way the harness deletes an instance it created: it must carry this harness's labels
 * for `runId`. An instance already gone counts as deleted; anything else is refused, loudly.
 */
export async function deleteOwnInstance(
  client: Pick<IncusClient, 'getInstance' | 'deleteInstance' | 'project'>,
  name: string,
  runId: string,
): Promise<'deleted' | 'absent'> {
  const instance = await client.getInstance(name);
  if (!instance) return 'absent';
  if (!isOurs(instance, runId)) {
    const owner = instance.config?.[LABEL_OWNER];
    const run = instance.config?.[LABEL_RUN_ID];
    throw new HarnessError(
      `refusing to delete ${name} in project ${client.project}: it does not carry this harness's labels for run ${runId} ` +
        `(${LABEL_OWNER}=${owner ?? 'unset'}, ${LABEL_RUN_ID}=${run ?? 'unset'}); it was not created by this run, so it is left alone`,
    );
  }
  await client.deleteInstance(name);
  return 'deleted';
}

/**
 * The only way the harness reboots an instance: like deleteOwnInstance, only one with this
 * harness's labels for `runId` (the throwaway of this run). Stopped cleanly, then started.
 */
export async function rebootOwnInstance(client: Pick<IncusClient, 'getInstance' | 'stop' | 'start' | 'project'>, name: string, runId: string): Promise<void> {
  const instance = await client.getInstance(name);
  if (!instance || !isOurs(instance, runId)) {
    throw new HarnessError(
      `refusing to reboot ${name} in project ${client.project}: ${instance ? `it does not carry this harness's labels for run ${runId}` : 'it does not exist'}`,
    );
  }
  await client.stop(name);
  await client.start(name);
}
