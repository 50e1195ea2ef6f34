/**
 * The pool of a long-lived session (`accept watch`): one worker process kept for the whole
 * session, where Vitest would start one per run. A run's worker start and the import of the
 * harness's dependencies were most of a re-run (npm run bench, "worker" and "import"); each run
 * still evaluates the specs and the layers above helpers/ afresh (FRESH_EACH_RUN), so its fixtures
 * (channels, clones, decryption) and its run context are made afresh, and its fixtures'
 * clean-ups run when it ends.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ForksPoolWorker, type PoolOptions, type PoolWorker, type WorkerRequest } from 'vitest/node';

const ENTRY = fileURLToPath(new URL('./session-worker-entry.mjs', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * The harness's modules evaluated afresh in every run, as in a new worker, so that nothing a run
 * made (its fixtures, its run context, what a module keeps) reaches the next: the specs, the
 * machines layer, the lab and reporting. `helpers/` stays loaded: it keeps no run's state, only
 * what any run may reuse (this process's Incus connections, the registered secrets, parsed TLS
 * roots), and it imports none of these, so no kept module holds one of a past run. SSH is the
 * exception: it remembers the host keys it learned in its run. A change to any file is
 * re-evaluated with its importers all the same (Vitest's watcher).
 */
export const FRESH_EACH_RUN = ['acceptance', 'reporting', 'machines', 'lab', 'helpers/ssh'];

export function harnessModules(root = ROOT): string[] {
  return FRESH_EACH_RUN.flatMap((dir) =>
    readdirSync(join(root, dir), { recursive: true, encoding: 'utf8' })
      .filter((name) => /\.(ts|mts|js|mjs)$/.test(name) && !name.includes('node_modules'))
      .map((name) => join(root, dir, name)),
  );
}

/** Vitest's forks worker, started through the entry that keeps it listening between runs. */
class KeptFork extends ForksPoolWorker {
  constructor(options: PoolOptions) {
    super(options);
    (this as unknown as { entrypoint: string }).entrypoint = ENTRY;
  }
}

let kept: { fork: KeptFork; started: Promise<void>; busy: boolean } | undefined;

/**
 * One run's view of the kept worker: its listeners are its own, and its stop leaves the process
 * running. Should a run ask for a second worker while the kept one is busy (the acceptance
 * projects run one), that one is Vitest's usual worker, stopped with its run.
 */
class SessionWorker implements PoolWorker {
  readonly name = 'accept-session';
  readonly cacheFs = true;
  private readonly listeners: [string, (arg: unknown) => void][] = [];
  private own: ForksPoolWorker | undefined;
  private holds = false;

  constructor(private readonly options: PoolOptions) {}

  private get fork(): ForksPoolWorker {
    if (this.own) return this.own;
    if (!kept || !this.holds) throw new Error('accept watch: the kept worker was not started');
    return kept.fork;
  }

  on(event: string, callback: (arg: unknown) => void): void {
    this.listeners.push([event, callback]);
    this.fork.on(event, callback);
  }

  off(event: string, callback: (arg: unknown) => void): void {
    const index = this.listeners.findIndex(([name, listener]) => name === event && listener === callback);
    if (index !== -1) this.listeners.splice(index, 1);
    this.fork.off(event, callback);
  }

  send(message: WorkerRequest): void {
    if (message.type === 'run' && !this.own) {
      const context = message.context as { invalidates?: string[] };
      context.invalidates = [...(context.invalidates ?? []), ...harnessModules()];
    }
    this.fork.send(message);
  }

  async start(): Promise<void> {
    if (kept?.busy) {
      this.own = new ForksPoolWorker(this.options);
      return this.own.start();
    }
    if (!kept) {
      const fork = new KeptFork(this.options);
      const entry = { fork, started: fork.start(), busy: false };
      kept = entry;
      // A worker that died (a crash, a kill) is started afresh by the next run.
      fork.on('exit', () => {
        if (kept === entry) kept = undefined;
      });
    }
    kept.busy = true;
    this.holds = true;
    await kept.started;
  }

  /** The run is over: its listeners go, the kept process stays for the next run. */
  async stop(): Promise<void> {
    if (this.own) return this.own.stop();
    if (!this.holds) return;
    this.holds = false;
    for (const [event, callback] of this.listeners.splice(0)) kept?.fork.off(event, callback);
    if (kept) kept.busy = false;
  }

  deserialize(data: unknown): unknown {
    return data;
  }
}

export const sessionPool = { name: 'accept-session', createPoolWorker: (options: PoolOptions): PoolWorker => new SessionWorker(options) };

/** Ends the kept worker with the session. */
export async function closeSessionWorker(): Promise<void> {
  const entry = kept;
  kept = undefined;
  await entry?.fork.stop();
}
