/** Scenario tests run the real harness in a child process, as a user would, and read what it left. */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, onTestFinished } from 'vitest';
import { loadConfig } from '../../helpers/common/config.ts';
import { exec } from '../../helpers/common/exec.ts';
import { workerProjects } from '../../lab/index.ts';
import { leaseAllWorkers, leaseWorker, type WorkerLease } from '../../lab/workers.ts';

export const REPO_ROOT = resolve(import.meta.dirname, '../..');

export interface ChildRun {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  output: string;
  reportsDir: string;
}

export interface RunOptions {
  env?: Record<string, string>;
  /** Called with each chunk of output; may signal the child's process group. */
  onOutput?: (text: string, child: { pid: number }) => void;
  timeoutMs?: number;
  user?: { uid: number; gid: number };
  /** The test's own `onTestFinished` (from its context): needed in concurrent tests, which the global one cannot tell apart. */
  onTestFinished?: typeof onTestFinished;
}

/** Runs `vitest run` with these arguments in a child process, as a user would, with a reports directory of its own. */
export async function runVitest(
  args: string[],
  env: Record<string, string>,
  timeoutMs = 300_000,
): Promise<{ exitCode: number; output: string; reportsDir: string }> {
  const reportsDir = await reportsDirForTest();
  const result = await exec(process.execPath, [join(REPO_ROOT, 'node_modules/vitest/vitest.mjs'), 'run', ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, ACCEPT_REPORTS_DIR: reportsDir, ...env },
    timeoutMs,
  });
  return { exitCode: result.exitCode, output: `${result.stdout}\n${result.stderr}`, reportsDir };
}

/**
 * A reports directory for one child run. It is removed when the test passes; a failing test keeps
 * it, and says where, because its evidence is what explains the failure.
 */
export async function reportsDirForTest(onFinished: typeof onTestFinished = onTestFinished): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'accept-e2e-reports-'));
  try {
    onFinished(async ({ task }) => {
      if (task.result?.state === 'pass') await rm(dir, { recursive: true, force: true });
      else process.stderr.write(`${task.name}: reports kept in ${dir}\n`);
    });
  } catch {
    // Called from a hook, where there is no test to follow: removed when the file is done.
    hookReportDirs.push(dir);
  }
  return dir;
}

const hookReportDirs: string[] = [];
afterAll(async () => {
  await Promise.all(hookReportDirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

/**
 * Holds one of the lab's worker projects (ACCEPT_SELFTEST_WORKERS) until released: a test that
 * creates throwaways, or keeps one across several child runs, runs them in that project.
 */
export async function leaseLabWorker(): Promise<WorkerLease> {
  const config = loadConfig();
  return leaseWorker(config.lab.dir, config.selftest.workers);
}

/**
 * The one worker project beyond ACCEPT_SELFTEST_WORKERS, for a run that mostly sleeps (the slow
 * lab): it costs no CPU, so it need not hold one of the workers the busy runs share.
 */
export async function leaseSleeperWorker(): Promise<WorkerLease> {
  const config = loadConfig();
  return leaseWorker(config.lab.dir, config.selftest.workers + 1, { only: [sleeperProject()] });
}

function sleeperProject(): string {
  return workerProjects(loadConfig().selftest.workers + 1).at(-1)!;
}

/** Holds every worker project: for a test that changes the lab that every run reads. */
export async function leaseWholeLab(): Promise<WorkerLease> {
  const config = loadConfig();
  // The sleeper's slow run reads the lab's repos and keys until its end (C4 compares with git,
  // D5 rebuilds from the lab's git server), so the sleeper is waited for too. It comes first and
  // alone: while it is awaited, the other workers go on; only then are they all claimed.
  const sleeper = await leaseSleeperWorker();
  try {
    const workers = await leaseAllWorkers(config.lab.dir, config.selftest.workers);
    return {
      ...workers,
      release: async () => {
        await workers.release();
        await sleeper.release();
      },
    };
  } catch (error) {
    await sleeper.release();
    throw error;
  }
}

/**
 * Runs `accept` in a child process. A cold run (`run`) without a project of its own leases a
 * worker project for its length, so that concurrent tests never share a project.
 */
export async function runAccept(args: string[], options: RunOptions = {}): Promise<ChildRun> {
  const argv = [join(REPO_ROOT, 'bin/accept.mjs'), ...args];
  return args[0] === 'run' ? inWorkerProject(argv, options) : runChild(argv, options);
}

/**
 * A cold run as the adversary starts it, `vitest run --project cold`, without `accept run` in
 * front (the lab is up already): the sabotage matrix's rows, each one node process fewer.
 */
/** A cold run of the whole suite, or of `specs` only (paths under acceptance/). */
export async function runCold(options: RunOptions & { specs?: readonly string[] } = {}): Promise<ChildRun> {
  return inWorkerProject([join(REPO_ROOT, 'node_modules/vitest/vitest.mjs'), 'run', '--project', 'cold', ...(options.specs ?? [])], options);
}

async function inWorkerProject(argv: string[], options: RunOptions): Promise<ChildRun> {
  if (options.env?.ACCEPT_INCUS_PROJECT) return runChild(argv, options);
  const lease = await leaseLabWorker();
  try {
    return await runChild(argv, { ...options, env: { ...options.env, ACCEPT_INCUS_PROJECT: lease.project } });
  } finally {
    await lease.release();
  }
}

/** Runs `node <argv>` in the repo, in a process group of its own, and collects what it said. */
function runChild(argv: string[], options: RunOptions): Promise<ChildRun> {
  return reportsDirForTest(options.onTestFinished).then(
    (reportsDir) =>
      new Promise((resolvePromise, reject) => {
        // A process group of its own, so a signal reaches it as a terminal's Ctrl-C would.
        const child = spawn(process.execPath, argv, {
          cwd: REPO_ROOT,
          detached: true,
          stdio: ['ignore', 'pipe', 'pipe'],
          env: { ...process.env, ACCEPT_REPORTS_DIR: reportsDir, ...options.env },
          uid: options.user?.uid,
          gid: options.user?.gid,
        });
        let stdout = '';
        let stderr = '';
        let output = '';
        const onData = (sink: 'out' | 'err') => (chunk: Buffer) => {
          const text = chunk.toString('utf8');
          if (sink === 'out') stdout += text;
          else stderr += text;
          output += text;
          options.onOutput?.(output, { pid: child.pid! });
        };
        child.stdout.on('data', onData('out'));
        child.stderr.on('data', onData('err'));
        const timer = setTimeout(() => {
          process.kill(-child.pid!, 'SIGKILL');
          reject(
            new Error(
              `node ${argv.map((arg) => arg.replace(`${REPO_ROOT}/`, '')).join(' ')} did not finish in ${options.timeoutMs} ms; output so far:\n${output}`,
            ),
          );
        }, options.timeoutMs ?? 600_000);
        child.on('error', reject);
        child.on('close', (exitCode, signal) => {
          clearTimeout(timer);
          resolvePromise({ exitCode, signal, stdout, stderr, output, reportsDir });
        });
      }),
  );
}

/** The throwaways a child run said it created. */
export function throwawaysOf(run: Pick<ChildRun, 'output'>): string[] {
  return [...new Set([...run.output.matchAll(/Creating throwaway (accept-[a-z0-9-]+)/g)].map((match) => match[1]!))];
}

/** Which of a child run's throwaways still exist: other runs' instances are not this test's business. */
export async function leftoversOf(run: Pick<ChildRun, 'output'>): Promise<string[]> {
  const mine = new Set(throwawaysOf(run));
  return (await leftoverThrowaways()).filter((name) => mine.has(name));
}

/** Throwaways of this harness still present in any of the lab's worker projects. */
export async function leftoverThrowaways(): Promise<string[]> {
  const names: string[] = [];
  for (const project of workerProjects(loadConfig().selftest.workers + 1)) {
    const result = await exec('incus', ['list', '--project', project, '--format', 'json']);
    if (result.exitCode !== 0) throw new Error(`incus list --project ${project} failed: ${result.stderr}`);
    names.push(...(JSON.parse(result.stdout) as { name: string }[]).map((instance) => instance.name).filter((name) => name.startsWith('accept-')));
  }
  return names;
}

export async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name));
}

export async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

export async function readText(path: string): Promise<string> {
  return readFile(path, 'utf8');
}
