/** For unit tests: one of the lab's Python stand-ins run on this machine, on a free port. */
import { spawn, type ChildProcess } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../dial.ts';
import { waitFor } from '../wait.ts';

/** The lab's stand-ins, as the image ships them. */
export const SERVICES_DIR = join(dirname(fileURLToPath(import.meta.url)), '../../../lab/base/services');

export interface RunningService {
  url: string;
  port: number;
  /** What it wrote to stderr so far, for a failure's message. */
  log(): string;
  stop(): Promise<void>;
}

/** GET url's status, or undefined when nothing answers. */
function probe(url: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const request = http.get(url, { timeout: 1000 }, (response) => {
      response.resume();
      resolve(response.statusCode);
    });
    request.on('timeout', () => request.destroy());
    request.on('error', () => resolve(undefined));
  });
}

/** Starts `script` (from `dir`) with `args(port)` and waits until `readyPath` answers. */
export async function startService(
  dir: string,
  script: string,
  args: (port: number) => string[],
  env: Record<string, string>,
  readyPath: string,
): Promise<RunningService> {
  const port = await freePort();
  const child: ChildProcess = spawn('python3', [join(dir, script), ...args(port)], {
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  try {
    await waitFor(
      `${script} to answer ${readyPath}`,
      async () => {
        if (child.exitCode !== null) throw new Error(`${script} exited (${child.exitCode}) before answering`);
        return (await probe(`${url}${readyPath}`)) !== undefined;
      },
      { timeoutMs: 15_000, intervalMs: 100 },
    );
  } catch (error) {
    await stop();
    throw new Error(`${(error as Error).message}: ${stderr.slice(-2000)}`);
  }
  return { url, port, log: () => stderr, stop };
}

/**
 * A copy of the services dir in a temp dir with `patches` applied to `script`: a stand-in made
 * to drift on purpose. Each patch's text must be there, or the drift would silently not happen.
 */
export async function driftedServices(script: string, patches: Array<[string, string]>): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'accept-drifted-services-'));
  await cp(SERVICES_DIR, dir, { recursive: true, filter: (source) => !source.includes('__pycache__') });
  let text = await readFile(join(dir, script), 'utf8');
  for (const [from, to] of patches) {
    if (!text.includes(from)) throw new Error(`${script} no longer holds the text this drift patches: ${from}`);
    text = text.replace(from, to);
  }
  await writeFile(join(dir, script), text);
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}
