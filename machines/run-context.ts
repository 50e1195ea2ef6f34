/**
 * What a run faces, as the specs may know it. Built in one place (`runContext`), from the
 * current configuration and, for a warm run against a kept throwaway, the facts of that host.
 * No secrets: it crosses to the spec workers through Vitest's provide/inject.
 */
import type { Durations, IncusSettings, SshSettings } from '../helpers/common/config.ts';
import type { LedgerEntry } from '../helpers/common/ledger.ts';
import type { RunbookOutcome } from '../helpers/runbook/run.ts';
import type { RunCommits } from '../helpers/git/index.ts';
import type { ForgeWriteScope } from '../helpers/forge/writes.ts';
import type { SystemProfile } from './system-profile.ts';
import type { MachineObservation } from './neighbours.ts';

export type { TargetKind } from '../helpers/common/config.ts';
import type { TargetKind } from '../helpers/common/config.ts';
export type { Endpoint } from '../helpers/common/dial.ts';
import type { Endpoint } from '../helpers/common/dial.ts';

/** How the harness reaches the host: the Incus API (lab, incus), or SSH (an existing host). */
export type HostAccess =
  | { kind: 'lab' | 'incus'; incus: IncusSettings; socks: string }
  | { kind: 'ssh'; socks: string; ssh: SshSettings & { learnedHostKey?: string } };

/** What the run faced, for the evidence only: nothing branches on it. */
export interface TargetDescription {
  kind: TargetKind;
  /** The Incus API URL, or the SSH host. */
  server: string;
  /** container or virtual-machine; an existing host's type is not known. */
  instanceType?: string;
  /** What stands in for the real thing, so that a lab PASS never reads like a real one. */
  standIns: string[];
  /** Anything else a reader must know about this run (the lab: a sabotage applied). */
  notes: string[];
}

/**
 * How long the provisioning of a throwaway took, by phase (milliseconds). Each runbook step's
 * own time is in the runbook outcome (`steps[].durationMs`).
 */
export interface ProvisionTimings {
  /** The whole of provisioning: connect, sweep, create, boot, clone of the base repo, runbook. */
  totalMs: number;
  /** Incus creating and starting the instance. */
  createMs: number;
  /** From start until systemd reports running (or degraded). */
  bootMs: number;
  /** Every runbook step, end to end. */
  runbookMs: number;
  /** The running cc-ci and the neighbours: made ready where the target keeps them (the lab), and observed before the throwaway exists. */
  machinesMs?: number;
}

/** The facts of the host itself: where it is and how it was built. Never a setting. */
export interface HostFacts {
  name: string;
  project: string;
  createdAt: string;
  expiresAt: string;
  /** Where the host's :443 is dialled (through the proxy). */
  https: Endpoint;
  runbook?: RunbookOutcome;
  /** Where the harness dials the forge this host's bridge uses, where the target runs one per host (the lab). */
  forgeUrl?: string;
  /** Known only to the run that provisioned the host. */
  provisioning?: ProvisionTimings;
  /** The commits provisioning cloned and ran the runbook of: the run record's, not read again (cold runs). */
  commits?: RunCommits;
  machinesBefore?: MachineObservation[];
  ledger: LedgerEntry[];
}

/**
 * The DoD's machines besides the throwaway (docs/architecture.md, "The machines of a run"): the
 * running cc-ci, which a run reads and never changes, and the neighbours it must leave as they were.
 */
export interface RunMachines {
  /**
   * The running cc-ci: an instance in the run's Incus project (`incus`), or the host the run
   * faces itself (`run-host`: the ssh target is an existing host); or why this run cannot reach it.
   */
  production:
    | {
        name: string;
        via: 'incus' | 'run-host';
        memory: string;
        /** Where its :443 is dialled for cc-ci's faces; unset: each name under the domain is dialled by name (the proxy resolves it). */
        https?: Endpoint;
        /** The forge its bridge serves, where the target runs one (the lab's stand-in); unset: ACCEPT_FORGE_URL or git.<domain>. */
        forgeUrl?: string;
      }
    | { unreachable: string };
  /** Instances of the project that the run must leave as they were. */
  neighbours: string[];
}

/** The system under test, as the current configuration names it. */
export interface SystemUnderTest {
  machines: RunMachines;
  /** D8's optional last check (ACCEPT_REBOOT_CHECK): the throwaway rebooted comes back with booted = current = the clean build. */
  rebootCheck: boolean;
  domain: string;
  tlsCaFile: string;
  ageKeyFile: string;
  baseRepo: string;
  instanceRepo: string;
  /** NIX_CONFIG for operator-side builds that this target needs; unset means the operator's own. */
  nixConfig?: string;
  /** How long this target's slow things may take (ACCEPT_*_TIMEOUT): every wait and test timeout comes from these. */
  durations: Durations;
  /** Where the D specs may write to the forge: the lab's stand-in, a probe repo, or nowhere. */
  forgeWrites: ForgeWriteScope;
  /** The names the specs rely on in this system (its docs, units, build parameters, links). */
  profile: SystemProfile;
}

export interface RunContext extends SystemUnderTest {
  runId: string;
  mode: 'cold' | 'warm';
  target: HostAccess;
  faced: TargetDescription;
  instance: { name: string; project: string; createdAt: string; expiresAt: string; createdInThisRun: boolean };
  https: Endpoint;
  /** The run's host's own forge (the lab's, one per machine); unset: ACCEPT_FORGE_URL or git.<domain>. */
  forgeUrl?: string;
  runbook?: RunbookOutcome;
  /** Set when this run provisioned the host (cold runs, the bench). */
  provisioning?: ProvisionTimings;
  /** The commits this run's provisioning cloned (cold runs); a warm run reads them as they are at its start. */
  commits?: RunCommits;
  /** The running cc-ci and the neighbours as they stood before the throwaway was created (cold runs). */
  machinesBefore?: MachineObservation[];
  ledger: LedgerEntry[];
}

/** The one constructor of a RunContext. */
export function runContext(parts: {
  runId: string;
  mode: RunContext['mode'];
  access: HostAccess;
  faced: TargetDescription;
  system: SystemUnderTest;
  host: HostFacts;
}): RunContext {
  const { host } = parts;
  return {
    runId: parts.runId,
    mode: parts.mode,
    target: parts.access,
    faced: parts.faced,
    instance: { name: host.name, project: host.project, createdAt: host.createdAt, expiresAt: host.expiresAt, createdInThisRun: parts.mode === 'cold' },
    https: host.https,
    ...(host.forgeUrl ? { forgeUrl: host.forgeUrl } : {}),
    ...parts.system,
    runbook: host.runbook,
    ...(host.provisioning ? { provisioning: host.provisioning } : {}),
    ...(parts.mode === 'cold' && host.commits ? { commits: host.commits } : {}),
    ...(host.machinesBefore ? { machinesBefore: host.machinesBefore } : {}),
    ledger: host.ledger,
  };
}

/** One line for headers: `lab (stand-ins: …)` or `incus https://b1:8443`. */
export function describeFaced(faced: TargetDescription): string {
  const stand = faced.standIns.length ? ` (stand-ins: ${faced.standIns.join('; ')})` : '';
  return faced.kind === 'lab' ? `lab${stand}` : `${faced.kind} ${faced.server}${faced.instanceType ? ` (${faced.instanceType})` : ''}${stand}`;
}
