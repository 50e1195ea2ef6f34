/** What global setup hands to every spec worker (through Vitest's provide/inject). No secrets. */
import type { RunContext } from '../../machines/index.ts';

export type { RunContext } from '../../machines/index.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    run: RunContext;
    /**
     * Empty, or why this run has no valid run context: a re-run of a long-lived warm session
     * whose settings or kept record no longer hold (global-warm.ts). The specs then ERROR with it.
     */
    runRefused: string;
  }
}
