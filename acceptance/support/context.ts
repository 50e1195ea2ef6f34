/** What global setup hands to every spec worker (through Vitest's provide/inject). No secrets. */
import type { IncusSettings } from '../../helpers/common/config.ts';
import type { LedgerEntry } from '../../helpers/common/ledger.ts';
import type { RunbookOutcome } from '../../helpers/runbook/run.ts';
import type { Endpoint } from '../../helpers/target/throwaway.ts';

export interface RunContext {
  runId: string;
  mode: 'cold' | 'warm';
  target: { kind: string; incus: IncusSettings; socks?: string };
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
