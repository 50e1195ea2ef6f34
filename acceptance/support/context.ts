/** What global setup hands to every spec worker (through Vitest's provide/inject). No secrets. */
import type { IncusSettings } from '../../helpers/common/config.ts';
import type { LedgerEntry } from '../../helpers/common/ledger.ts';
import type { RunbookOutcome } from '../../helpers/runbook/run.ts';
import type { Endpoint, Throwaway } from '../../target/throwaway.ts';
import type { ResolvedTarget } from '../../target/resolve.ts';
import type { SshRunTarget } from '../../target/ssh-host.ts';
import { OFFLINE_NIX_CONFIG } from '../../helpers/nix/index.ts';

/** Lab and incus runs carry their Incus settings; an ssh run has no Incus API, only its SSH settings. */
export type RunTarget = { kind: 'lab' | 'incus'; incus: IncusSettings; socks?: string } | SshRunTarget;

export interface RunContext {
  runId: string;
  mode: 'cold' | 'warm';
  target: RunTarget;
  instance: { name: string; project: string; createdAt: string; expiresAt: string; createdInThisRun: boolean };
  https: Endpoint;
  domain: string;
  tlsCaFile: string;
  ageKeyFile: string;
  baseRepo: string;
  instanceRepo: string;
  runbook?: RunbookOutcome;
  ledger: LedgerEntry[];
  /** NIX_CONFIG for operator-side builds: the lab's offline settings; unset means the operator's own. */
  nixConfig?: string;
  /** Set by the lab target only, so that a deliberately broken run is visible in the report. */
  sabotage?: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    run: RunContext;
  }
}

/** The context of a throwaway this process provisioned (cold run, or the bench). */
export function throwawayContext(parts: {
  target: ResolvedTarget;
  throwaway: Throwaway;
  runbook: RunbookOutcome;
  ledger: LedgerEntry[];
  mode: RunContext['mode'];
  sabotage?: string;
}): RunContext {
  const { target, throwaway } = parts;
  return {
    runId: throwaway.runId,
    mode: parts.mode,
    target: { kind: target.kind, incus: target.incus, socks: target.socks },
    instance: { name: throwaway.name, project: throwaway.project, createdAt: throwaway.createdAt, expiresAt: throwaway.expiresAt, createdInThisRun: parts.mode === 'cold' },
    https: throwaway.https,
    domain: target.domain,
    tlsCaFile: target.tlsCaFile,
    ageKeyFile: target.ageKeyFile,
    baseRepo: target.baseRepo,
    instanceRepo: target.instanceRepo,
    runbook: parts.runbook,
    ledger: parts.ledger,
    sabotage: parts.sabotage,
    nixConfig: target.kind === 'lab' ? OFFLINE_NIX_CONFIG : undefined,
  };
}
