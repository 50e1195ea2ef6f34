/**
 * One interface for every kind of target. `ACCEPT_TARGET` picks the provider (machines/index.ts);
 * everything above this layer sees a RunContext and a HostChannel, never the kind.
 */
import type { Ledger } from '../helpers/common/ledger.ts';
import type { IncusClient } from '../helpers/incus/client.ts';
import type { RunContext, TargetDescription, TargetKind } from './run-context.ts';

export interface ProvisionOptions {
  runId: string;
  mode: RunContext['mode'];
  ledger: Ledger;
  /** Where the reaper writes its log. */
  logDir: string;
  ttlMs?: number;
  /** A failed provisioning keeps its throwaway for debugging (ACCEPT_KEEP=on-failure or always). */
  keepOnFailure?: boolean;
  /** Time the provider already spent on the running cc-ci and the neighbours (the lab converges its stand-ins). */
  machinesReadyMs?: number;
  /** Called once the throwaway exists, before the runbook: a signal from then on can delete it at once. */
  onCreated?: (created: CreatedThrowaway) => void;
}

/** A throwaway that exists but may not be provisioned yet: enough for a signal handler. */
export interface CreatedThrowaway {
  name: string;
  expiresAt: string;
  /** Deletes before returning, blocking. */
  stopNowSync(): boolean;
}

/**
 * A provisioned throwaway, as a started handle: the runbook has run, and `context` is what the
 * specs get. stop() is idempotent, as is close().
 */
export interface Provisioned extends AsyncDisposable {
  context: RunContext;
  /** The Incus client the throwaway was created with (cleanup checks use it). */
  client: IncusClient;
  /** Deletes the throwaway (only one that carries this run's labels). */
  stop(): Promise<{ destroyedAt: string }>;
  /** Lets the throwaway outlive this process: the reaper stands down; the sweeper still removes it once expired. */
  keep(): void;
  /** What the throwaway did with what it can reach, before it is deleted; undefined where that cannot be observed. */
  reach(): Promise<string | undefined>;
  /** Deletes before returning, blocking: for signal handlers. */
  stopNowSync(): boolean;
  /** Records the kept host (ACCEPT_STATE_DIR/kept.json) for warm runs; returns the file. */
  recordKept(stateDir: string): Promise<string>;
  /** Releases everything else the provider holds (the lab: undoes a sabotage); the throwaway's fate is stop()'s or keep()'s. */
  close(): Promise<void>;
}

export interface TargetProvider {
  readonly kind: TargetKind;
  /** What the run faces, for the evidence header. Known before anything is created. */
  describe(): TargetDescription;
  /** Creates the throwaway, gives it only the bootstrap key, runs the runbook in docs/install.md. */
  provision(options: ProvisionOptions): Promise<Provisioned>;
  /** A warm run's context: the host as it stands, under the settings in force now. */
  attach(): Promise<RunContext>;
}
