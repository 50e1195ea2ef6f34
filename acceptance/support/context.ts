/** What global setup hands to every spec worker (through Vitest's provide/inject). No secrets. */
import type { RunContext } from '../../target/index.ts';

export type { RunContext } from '../../target/index.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    run: RunContext;
  }
}
