// The worker process of a long-lived session (accept watch), kept between its runs: Vitest's own
// forks worker, except that a run's end (its "stop": the fixtures' clean-ups, the environment's
// teardown) leaves it listening for the next run. Each run still evaluates the specs and the
// layers above helpers/ afresh (session-pool.ts, FRESH_EACH_RUN); what stays loaded is helpers/, Node's own import
// of the dependencies (undici, ssh2, age, yaml, x509…) and the process itself.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

const removeAllListeners = process.removeAllListeners.bind(process);
process.removeAllListeners = (event) => (event === 'message' ? process : removeAllListeners(event));
const vitest = dirname(createRequire(import.meta.url).resolve('vitest/package.json'));
await import(pathToFileURL(join(vitest, 'dist/workers/forks.js')).href);
