/**
 * The reaper process: see reaper.ts. Runs detached and logs to reports/.reaper/. With `--now`
 * it deletes at once and exits, for a signal handler that must finish before the process does.
 */
import { errorMessage } from '../helpers/common/errors.ts';
import { WaitTimeoutError, waitFor } from '../helpers/common/wait.ts';
import { deleteOwnInstance } from './guard.ts';
import { isOurs } from './labels.ts';
import type { ReaperSpec } from './reaper.ts';
import { openIncus } from './resolve.ts';

const spec = JSON.parse(process.env.ACCEPT_REAPER_SPEC ?? 'null') as ReaperSpec | null;
if (!spec) {
  console.error('reaper: ACCEPT_REAPER_SPEC is not set');
  process.exit(2);
}

/** How long to keep trying: creation can take a while on a busy server, and a delete waits for it. */
const DEADLINE_MS = 10 * 60_000;
const NOW = process.argv.includes('--now');
/** An instance still absent after this long was never created (the run died before asking). */
const ABSENT_GRACE_MS = NOW ? 5_000 : 45_000;

function parentAlive(): boolean {
  try {
    process.kill(spec!.parentPid, 0);
    return true;
  } catch {
    return false;
  }
}

const stamp = () => new Date().toISOString();

// SIGTERM from the parent means "released": the parent tore down itself.
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => undefined);
process.on('SIGHUP', () => undefined);

/**
 * Deletes the instance once it exists and is ours. The run may have died while its create
 * request was in flight, so "absent" is only believed after a grace period, and a delete that
 * meets a running create operation is retried until the deadline.
 */
async function reap(why: string): Promise<void> {
  let firstAbsent: number | undefined;
  let attempt = 0;
  const done = await waitFor(
    `${spec!.instance} to be deleted`,
    async () => {
      attempt++;
      try {
        const client = await openIncus(spec!.target);
        try {
          const instance = await client.getInstance(spec!.instance);
          if (instance && !isOurs(instance, spec!.runId)) {
            console.error(`${stamp()} reaper: ${spec!.instance} does not carry this run's labels; leaving it alone`);
            return true;
          }
          if (instance) {
            await deleteOwnInstance(client, spec!.instance, spec!.runId);
            console.log(`${stamp()} reaper: ${why}; deleted ${spec!.instance}`);
            return true;
          }
          firstAbsent ??= Date.now();
          if (Date.now() - firstAbsent >= ABSENT_GRACE_MS) {
            console.log(`${stamp()} reaper: ${why}; ${spec!.instance} never appeared (or is already gone)`);
            return true;
          }
        } finally {
          await client.close();
        }
      } catch (error) {
        // Every failure is worth another try until the deadline: the reaper has no one to report to.
        console.error(`${stamp()} reaper: attempt ${attempt} failed: ${errorMessage(error)}`);
      }
      return false;
    },
    { timeoutMs: DEADLINE_MS, intervalMs: 1000 },
  ).catch((error: unknown) => {
    if (error instanceof WaitTimeoutError) return false;
    throw error;
  });
  if (!done) console.error(`${stamp()} reaper: giving up after ${DEADLINE_MS / 60_000} min; \`accept sweep\` removes ${spec!.instance} once it expires`);
}

if (NOW) {
  void reap('asked to delete now').then(() => process.exit(0));
} else {
  // As long as the run lives: the run ends it (SIGTERM, above) or its death does.
  void waitFor(`parent ${spec!.parentPid} to be gone`, async () => !parentAlive(), { timeoutMs: 'unbounded', intervalMs: 500 })
    .then(() => reap(`parent ${spec!.parentPid} is gone`))
    .then(() => process.exit(0));
}
