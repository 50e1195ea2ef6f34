/** The reaper process: see reaper.ts. Runs detached; logs to reports/.reaper/. */
import { errorMessage } from '../common/errors.ts';
import { isOurs } from './labels.ts';
import type { ReaperSpec } from './reaper.ts';
import { openIncus } from './resolve.ts';

const spec = JSON.parse(process.env.ACCEPT_REAPER_SPEC ?? 'null') as ReaperSpec | null;
if (!spec) {
  console.error('reaper: ACCEPT_REAPER_SPEC is not set');
  process.exit(2);
}

function parentAlive(): boolean {
  try {
    process.kill(spec!.parentPid, 0);
    return true;
  } catch {
    return false;
  }
}

// SIGTERM from the parent means "released": the parent tore down itself.
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => undefined);
process.on('SIGHUP', () => undefined);

async function reap(): Promise<void> {
  for (let attempt = 1; attempt <= 10; attempt++) {
    try {
      const client = await openIncus(spec!.target);
      try {
        const instance = await client.getInstance(spec!.instance);
        if (instance && isOurs(instance, spec!.runId)) {
          await client.deleteInstance(spec!.instance);
          console.log(`${new Date().toISOString()} reaper: parent ${spec!.parentPid} is gone; deleted ${spec!.instance}`);
        } else {
          console.log(`${new Date().toISOString()} reaper: parent ${spec!.parentPid} is gone; ${spec!.instance} already absent`);
        }
        return;
      } finally {
        await client.close();
      }
    } catch (error) {
      console.error(`${new Date().toISOString()} reaper: attempt ${attempt} failed: ${errorMessage(error)}`);
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }
  console.error(`reaper: giving up; the sweeper will remove ${spec!.instance} after it expires`);
}

const timer = setInterval(() => {
  if (parentAlive()) return;
  clearInterval(timer);
  void reap().then(() => process.exit(0));
}, 500);
