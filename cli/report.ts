/**
 * `accept report [--check]`: the Allure HTML report of the last acceptance run, with history and
 * trend across runs, and (with --check) proof that it renders in a real browser.
 *
 * Allure 2 (npm allure-commandline, on the machine's Java) reads history from a `history/` folder
 * in any results directory it is given. We keep the last two history snapshots in
 * reports/allure-history/ and hand one to Allure through a staging directory, so that
 * reports/allure-results/ stays exactly what the run wrote.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ALLURE_CATEGORIES } from '../reporting/allure.ts';
import { itemLabel } from '../reporting/dod-items.ts';
import { currentRunId, readRunRecord } from '../reporting/run-record-io.ts';
import { itemsBySeverity, type RunRecord } from '../reporting/run-record.ts';
import type { Config } from '../helpers/common/config.ts';
import { HarnessError } from '../helpers/common/errors.ts';
import { exec } from '../helpers/common/exec.ts';
import { formatDuration } from '../helpers/common/log.ts';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const ALLURE_BIN = join(REPO_ROOT, 'node_modules/allure-commandline/dist/bin/allure');

export interface ReportPaths {
  reportsDir: string;
  results: string;
  report: string;
  history: string;
  staging: string;
}

export function reportPaths(reportsDir: string): ReportPaths {
  return {
    reportsDir,
    results: join(reportsDir, 'allure-results'),
    report: join(reportsDir, 'allure-report'),
    history: join(reportsDir, 'allure-history'),
    staging: join(reportsDir, '.allure-staging'),
  };
}

// ---------------------------------------------------------------------------------------
// Pure parts
// ---------------------------------------------------------------------------------------

export interface StoredHistory {
  /** The run the newest snapshot was generated for. */
  latestRunId?: string;
  hasLatest: boolean;
  hasPrevious: boolean;
  buildOrder: number;
}

export interface HistoryPlan {
  /** Which snapshot Allure reads: the newest, or (for the same run again) the one before it. */
  source: 'latest' | 'previous' | 'none';
  /** Whether the newest snapshot becomes the previous one after this generation. */
  roll: boolean;
  buildOrder: number;
}

/**
 * Generating twice for the same run must not count that run twice in the trend, so the history
 * fed to Allure is the one from before this run was first reported.
 */
export function planHistory(runId: string, stored: StoredHistory): HistoryPlan {
  if (stored.hasLatest && stored.latestRunId === runId) {
    return { source: stored.hasPrevious ? 'previous' : 'none', roll: false, buildOrder: Math.max(stored.buildOrder, 1) };
  }
  return { source: stored.hasLatest ? 'latest' : 'none', roll: stored.hasLatest, buildOrder: stored.buildOrder + 1 };
}

/** The DoD items the run record holds, by their label ("C2 cert in git"), as Allure's suites name them. */
export function recordItems(record: RunRecord): string[] {
  return record.items.map((item) => itemLabel(item.id));
}

/** Visible text of an HTML document, enough to look for names in it. */
export function htmlText(html: string): string {
  return html
    .replace(/<(script|style)\b[\s\S]*?<\/\1>/gi, ' ')
    .replace(/<[^>]+>/g, ' ')
    .replace(/&amp;/g, '&')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/\s+/g, ' ');
}

export function missingFrom(text: string, names: readonly string[]): string[] {
  return names.filter((name) => !text.includes(name));
}

/** Allure 2's executor.json: names the build in the trend and orders the history. */
export function executorInfo(runId: string, buildOrder: number): object {
  return { name: 'cc-ci-acceptance', type: 'accept', buildName: `run ${runId}`, buildOrder, reportName: 'cc-ci Definition of Done' };
}

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.css': 'text/css',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.csv': 'text/csv',
};

/** The file under root that a request path names, or undefined if it would leave root. */
export function staticFile(root: string, urlPath: string): string | undefined {
  let path: string;
  try {
    path = decodeURIComponent(urlPath.split('?')[0]!.split('#')[0]!);
  } catch {
    return undefined;
  }
  const file = normalize(join(root, path.endsWith('/') ? `${path}index.html` : path));
  return file === root || file.startsWith(root.endsWith(sep) ? root : `${root}${sep}`) ? file : undefined;
}

// ---------------------------------------------------------------------------------------
// Generation
// ---------------------------------------------------------------------------------------

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

async function readText(path: string): Promise<string | undefined> {
  return readFile(path, 'utf8').catch(() => undefined);
}

/** The run the results belong to (reports/evidence/current-run), else a hash of the result files. */
async function resultsRunId(paths: ReportPaths, resultFiles: string[]): Promise<string> {
  const recorded = await currentRunId(paths.reportsDir);
  if (recorded) return recorded;
  return `results-${createHash('sha256').update(resultFiles.sort().join('\n')).digest('hex').slice(0, 12)}`;
}

async function storedHistory(paths: ReportPaths): Promise<StoredHistory> {
  const latest = join(paths.history, 'latest');
  return {
    latestRunId: (await readText(join(latest, 'run-id')))?.trim(),
    hasLatest: await exists(join(latest, 'history.json')),
    hasPrevious: await exists(join(paths.history, 'previous', 'history.json')),
    buildOrder: Number((await readText(join(paths.history, 'build-order')))?.trim() ?? 0) || 0,
  };
}

function run(file: string, args: string[], options: { env?: NodeJS.ProcessEnv; passOutput?: boolean } = {}): Promise<{ code: number; output: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(file, args, { env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const collect = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      if (options.passOutput) process.stderr.write(chunk);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code: code ?? 1, output }));
  });
}

/** The plan the per-item links point at (dod.md#…), copied beside the report so that they resolve. */
async function copyPlan(reportDir: string): Promise<string | undefined> {
  const plan = join(REPO_ROOT, 'docs', 'dod.md');
  if (!(await exists(plan))) return undefined;
  await cp(plan, join(reportDir, 'dod.md'));
  return plan;
}

export interface GeneratedReport {
  runId: string;
  durationMs: number;
  statistic: Record<string, number>;
  historySource: HistoryPlan['source'];
  buildOrder: number;
}

export async function generateReport(paths: ReportPaths): Promise<GeneratedReport> {
  const entries = await readdir(paths.results).catch(() => [] as string[]);
  const resultFiles = entries.filter((name) => name.endsWith('-result.json'));
  if (resultFiles.length === 0) {
    throw new HarnessError(`no Allure results in ${paths.results}: run \`npm run accept\` (or a warm run) first`);
  }
  if (!(await exists(ALLURE_BIN))) throw new HarnessError(`allure-commandline is not installed (${ALLURE_BIN}): run \`npm ci\``);
  const java = await exec('java', ['-version']).catch(() => undefined);
  if (java?.exitCode !== 0) throw new HarnessError('Allure 2 needs Java, and `java -version` failed: install it with `apt-get install -y openjdk-17-jre-headless`');

  const runId = await resultsRunId(paths, resultFiles);
  const plan = planHistory(runId, await storedHistory(paths));
  // Results from before this harness wrote categories still get them.
  if (!entries.includes('categories.json')) await writeFile(join(paths.results, 'categories.json'), `${JSON.stringify(ALLURE_CATEGORIES, null, 2)}\n`);
  await rm(paths.staging, { recursive: true, force: true });
  await mkdir(paths.staging, { recursive: true });
  await writeFile(join(paths.staging, 'executor.json'), JSON.stringify(executorInfo(runId, plan.buildOrder)));
  if (plan.source !== 'none') await cp(join(paths.history, plan.source), join(paths.staging, 'history'), { recursive: true, filter: (source) => !source.endsWith('run-id') });

  const started = performance.now();
  const generated = await run(ALLURE_BIN, ['generate', paths.results, paths.staging, '-o', paths.report, '--clean']);
  const durationMs = performance.now() - started;
  await rm(paths.staging, { recursive: true, force: true });
  if (generated.code !== 0 || !(await exists(join(paths.report, 'index.html')))) {
    throw new HarnessError(`allure generate failed (exit ${generated.code}):\n${generated.output.trim().slice(-2000)}`);
  }

  // Keep the new history for the next run; the one before it, in case this run is reported again.
  if (plan.roll) {
    await rm(join(paths.history, 'previous'), { recursive: true, force: true });
    await rename(join(paths.history, 'latest'), join(paths.history, 'previous'));
  }
  await rm(join(paths.history, 'latest'), { recursive: true, force: true });
  await mkdir(paths.history, { recursive: true });
  await cp(join(paths.report, 'history'), join(paths.history, 'latest'), { recursive: true });
  await writeFile(join(paths.history, 'latest', 'run-id'), `${runId}\n`);
  await writeFile(join(paths.history, 'build-order'), `${plan.buildOrder}\n`);
  await copyPlan(paths.report);

  const summary = JSON.parse((await readText(join(paths.report, 'widgets', 'summary.json'))) ?? '{}') as { statistic?: Record<string, number> };
  return { runId, durationMs, statistic: summary.statistic ?? {}, historySource: plan.source, buildOrder: plan.buildOrder };
}

// ---------------------------------------------------------------------------------------
// Rendering check
// ---------------------------------------------------------------------------------------

export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--hide-scrollbars',
];

async function chromiumPath(): Promise<string | undefined> {
  const found = await exec('sh', ['-c', 'command -v chromium']);
  return found.exitCode === 0 ? found.stdout.trim() : undefined;
}

/** Debian's chromium; installed here when missing and we are root, with apt's own progress. */
async function ensureChromium(): Promise<string> {
  const present = await chromiumPath();
  if (present) return present;
  if (process.getuid?.() !== 0) {
    throw new HarnessError('the rendering check needs Debian\'s chromium, and installing it needs root: run `apt-get install -y chromium` as root');
  }
  process.stderr.write('→ Installing chromium from Debian (apt-get install -y chromium); this takes a minute or two\n');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [['update'], ['install', '-y', '--no-install-recommends', 'chromium']]) {
    const result = await run('apt-get', args, { env, passOutput: true });
    if (result.code !== 0) throw new HarnessError(`apt-get ${args.join(' ')} failed (exit ${result.code}); install chromium by hand and run the check again`);
  }
  const installed = await chromiumPath();
  if (!installed) throw new HarnessError('apt-get installed chromium, but `chromium` is still not on PATH');
  process.stderr.write(`✓ chromium installed: ${installed}\n`);
  return installed;
}

/** A static server on loopback: Allure's page loads its data with fetch, which file:// forbids. */
async function serve(root: string): Promise<{ server: Server; url: string }> {
  const server = createServer((request, response) => {
    const file = staticFile(root, request.url ?? '/');
    if (!file) {
      response.writeHead(403).end();
      return;
    }
    stat(file).then(
      (info) => {
        if (!info.isFile()) return void response.writeHead(404).end();
        response.writeHead(200, { 'content-type': MIME[extname(file)] ?? 'application/octet-stream', 'content-length': info.size });
        createReadStream(file).pipe(response);
      },
      () => void response.writeHead(404).end(),
    );
  });
  await new Promise<void>((resolvePromise) => server.listen(0, '127.0.0.1', resolvePromise));
  const address = server.address();
  if (!address || typeof address === 'string') throw new HarnessError('the static server did not get a port');
  return { server, url: `http://127.0.0.1:${address.port}/` };
}

async function chromium(binary: string, args: string[]): Promise<string> {
  const profile = await mkdtemp(join(tmpdir(), 'accept-chromium-'));
  try {
    const result = await run(binary, [...CHROMIUM_FLAGS, `--user-data-dir=${profile}`, ...args]);
    if (result.code !== 0) throw new HarnessError(`chromium ${args.at(-1)} exited ${result.code}:\n${result.output.trim().slice(-1500)}`);
    return result.output;
  } finally {
    await rm(profile, { recursive: true, force: true });
  }
}

interface SuiteNode {
  uid: string;
  name: string;
  status?: string;
  children?: SuiteNode[];
}

/**
 * The test to show in the screenshot: the worst test of the worst item (ERROR, then FAIL, then
 * SKIPPED, then PASS; ties in DoD order). Returns its route in Allure's suites view.
 */
export function pickTestCase(suites: SuiteNode, record: RunRecord): { item: string; route: string } | undefined {
  const worst = ['broken', 'failed', 'skipped', 'passed'];
  for (const label of itemsBySeverity(record).map((item) => itemLabel(item.id))) {
    const group = suites.children?.find((child) => child.name === label);
    const tests = (group?.children ?? []).filter((child) => !child.children);
    const test = [...tests].sort((a, b) => worst.indexOf(a.status ?? 'passed') - worst.indexOf(b.status ?? 'passed'))[0];
    if (group && test) return { item: label, route: `suites/${group.uid}/${test.uid}/` };
  }
  return undefined;
}

export interface CheckResult {
  items: string[];
  checks: { what: string; missing: string[] }[];
  screenshots: string[];
  durationMs: number;
}

/**
 * Renders the report in headless chromium: the suites view must list every item of the run
 * record, the overview must show this run's environment, and a test page its plan link.
 */
export async function checkReport(paths: ReportPaths, runId: string): Promise<CheckResult> {
  // The check compares the report with the run's record; a missing or foreign one names its file.
  const record = await readRunRecord(paths.reportsDir, runId);
  const items = recordItems(record);
  if (items.length === 0) throw new HarnessError(`the run record of run ${runId} holds no item, so there is nothing to look for in the report`);
  const suites = JSON.parse((await readText(join(paths.report, 'data', 'suites.json'))) ?? '{}') as SuiteNode;
  const test = pickTestCase(suites, record);
  const binary = await ensureChromium();
  const started = performance.now();
  const { server, url } = await serve(resolve(paths.report));
  try {
    // Allure renders on the client; virtual time lets its scripts and data loads finish first.
    const budget = '--virtual-time-budget=20000';
    const dom = (route: string) => chromium(binary, [budget, '--dump-dom', `${url}index.html#${route}`]);
    const checks: CheckResult['checks'] = [];
    checks.push({ what: `suites view lists the ${items.length} items of the run record`, missing: missingFrom(htmlText(await dom('suites')), items) });
    checks.push({ what: `overview shows the environment of run ${runId}`, missing: missingFrom(htmlText(await dom('')), ['Environment', runId]) });
    if (test) {
      const page = await dom(test.route);
      checks.push({ what: `a ${test.item} test page links to its plan item`, missing: page.includes('href="dod.md#') ? [] : ['a link to dod.md#…'] });
    }
    const screenshots: string[] = [];
    for (const [route, name] of [['', 'allure-overview.png'], [test?.route ?? 'suites', 'allure-test.png']] as const) {
      const file = resolve(paths.reportsDir, name);
      await rm(file, { force: true });
      await chromium(binary, [budget, '--window-size=1440,1000', `--screenshot=${file}`, `${url}index.html#${route}`]);
      if (!(await exists(file))) throw new HarnessError(`chromium did not write the screenshot ${file}`);
      screenshots.push(file);
    }
    return { items, checks, screenshots, durationMs: performance.now() - started };
  } finally {
    await new Promise((resolvePromise) => server.close(resolvePromise));
  }
}

// ---------------------------------------------------------------------------------------
// The command
// ---------------------------------------------------------------------------------------

export async function report(config: Config, args: string[]): Promise<number> {
  const unknown = args.filter((arg) => arg !== '--check');
  if (unknown.length) {
    process.stderr.write(`accept report: unknown option ${unknown.join(' ')}; the only option is --check\n`);
    return 2;
  }
  const paths = reportPaths(config.reportsDir);
  process.stderr.write(`→ Generating the Allure report from ${paths.results}…\n`);
  const generated = await generateReport(paths);
  const stats = ['passed', 'failed', 'broken', 'skipped'].map((key) => `${generated.statistic[key] ?? 0} ${key}`).join(', ');
  const history = generated.historySource === 'none' ? 'no earlier history' : `history from the ${generated.historySource} snapshot`;
  process.stdout.write(
    `✓ ${join(paths.report, 'index.html')}: run ${generated.runId}, ${generated.statistic.total ?? 0} results (${stats}); build ${generated.buildOrder}, ${history} (${formatDuration(generated.durationMs)})\n` +
      `  open it with \`npx allure open ${paths.report}\` (it loads its data over HTTP, not from file://)\n`,
  );
  if (!args.includes('--check')) return 0;

  process.stderr.write('→ Rendering the report in headless chromium…\n');
  const check = await checkReport(paths, generated.runId);
  let ok = true;
  for (const { what, missing } of check.checks) {
    ok &&= missing.length === 0;
    process.stdout.write(missing.length ? `✗ ${what}: missing ${missing.join(', ')}\n` : `✓ ${what}\n`);
  }
  process.stdout.write(`✓ screenshots: ${check.screenshots.join(', ')} (${formatDuration(check.durationMs)})\n`);
  return ok ? 0 : 1;
}
