/**
 * C6's "nothing else in the project was touched": the running cc-ci and the neighbours, as the
 * Incus API shows them (and production's /run/current-system, read without changing anything),
 * observed before the throwaway is created and again after it is gone.
 */
import { errorMessage } from '../helpers/common/errors.ts';
import type { IncusClient } from '../helpers/incus/client.ts';
import { incusChannel } from '../helpers/incus/channel.ts';
import type { RunMachines } from './run-context.ts';

export interface MachineObservation {
  name: string;
  role: 'production' | 'neighbour';
  /** Absent: no such instance in the project. */
  present: boolean;
  status?: string;
  memory?: string;
  createdAt?: string;
  /** Production only: /run/current-system, or why it could not be read. */
  currentSystem?: string;
}

async function readCurrentSystem(client: IncusClient, name: string): Promise<string> {
  try {
    const result = await incusChannel(client, name).exec('readlink /run/current-system');
    return result.exitCode === 0 ? result.stdout.trim() : `unreadable (readlink exited ${result.exitCode})`;
  } catch (error) {
    return `unreadable (${errorMessage(error)})`;
  }
}

/** Each machine a run must leave alone, as it stands now. */
export async function observeMachines(client: IncusClient, machines: RunMachines): Promise<MachineObservation[]> {
  const wanted: { name: string; role: MachineObservation['role'] }[] = [
    ...('name' in machines.production && machines.production.via === 'incus' ? [{ name: machines.production.name, role: 'production' as const }] : []),
    ...machines.neighbours.map((name) => ({ name, role: 'neighbour' as const })),
  ];
  const observed: MachineObservation[] = [];
  for (const { name, role } of wanted) {
    const instance = await client.getInstance(name);
    if (!instance) {
      observed.push({ name, role, present: false });
      continue;
    }
    observed.push({
      name,
      role,
      present: true,
      status: instance.status,
      memory: instance.expanded_config['limits.memory'],
      createdAt: instance.created_at,
      ...(role === 'production' && instance.status === 'Running' ? { currentSystem: await readCurrentSystem(client, name) } : {}),
    });
  }
  return observed;
}

const FIELDS = ['present', 'status', 'memory', 'createdAt', 'currentSystem'] as const;
const WORDS: Record<(typeof FIELDS)[number], string> = {
  present: 'present',
  status: 'status',
  memory: 'limits.memory',
  createdAt: 'created at',
  currentSystem: '/run/current-system',
};

/** One line per machine and field that changed between the two observations. */
export function changedMachines(before: readonly MachineObservation[], after: readonly MachineObservation[]): string[] {
  const changes: string[] = [];
  for (const earlier of before) {
    const later = after.find((machine) => machine.name === earlier.name);
    if (!later) {
      changes.push(`${earlier.name} (${earlier.role}) was not observed after the run`);
      continue;
    }
    for (const field of FIELDS) {
      if (earlier[field] !== later[field])
        changes.push(`${earlier.name} (${earlier.role}): ${WORDS[field]} ${String(earlier[field] ?? 'none')} → ${String(later[field] ?? 'none')}`);
    }
  }
  return changes;
}

/** The machines in one line, for the evidence. */
export function describeObservations(observed: readonly MachineObservation[]): string {
  return observed
    .map((machine) =>
      machine.present
        ? `${machine.name} (${machine.role}) ${machine.status} ${machine.memory ?? 'no limits.memory'}${machine.currentSystem ? ` ${machine.currentSystem}` : ''}`
        : `${machine.name} (${machine.role}) absent`,
    )
    .join('; ');
}
