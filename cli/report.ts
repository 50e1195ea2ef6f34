/**
 * `accept report [--check]`: the Allure HTML report of the last acceptance run, with history and
 * trend across runs, and (with --check) proof that it renders in a real browser.
 *
 * Allure 3 (npm allure, pure Node: no Java) generates it with its allure2 plugin, Allure 2's page:
 * its Awesome page shows a relative link (our plan links, dod.md#…) as plain text, not a link.
 * History is Allure 3's own, one JSON line per report in reports/allure-history/history.jsonl; the
 * report is generated into a staging directory and swapped in whole, so a failed generation leaves
 * the last report and its history as they were, and reports/allure-results/ is never written.
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
const ALLURE_CLI = join(REPO_ROOT, 'node_modules/allure/cli.js');
/** Runs in the trend, as Allure 2's trend showed; keeps history.jsonl near 1.5 MB (about 70 KB a run). */
export const HISTORY_LIMIT = 20;

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

/** The report's name, which Allure 3 also stores in each history line: the run it was generated for. */
export function reportName(runId: string): string {
  return `cc-ci Definition of Done, run ${runId}`;
}

export interface KeptHistory {
  text: string;
  /** Earlier runs kept (the trend shows at most HISTORY_LIMIT, this one included). */
  runs: number;
  /** Whether this run had been reported before: its line is dropped, so it counts once. */
  replaced: boolean;
  /** Lines that are not JSON: dropped, since Allure 3 stops on them. */
  unreadable: number;
}

/** Allure 3's history.jsonl without the lines of the report named `name`. */
export function historyWithout(jsonl: string, name: string): KeptHistory {
  const kept: string[] = [];
  let replaced = false;
  let unreadable = 0;
  for (const line of jsonl.split('\n').filter((text) => text.trim())) {
    let point: { name?: unknown };
    try {
      point = JSON.parse(line) as { name?: unknown };
    } catch {
      unreadable += 1;
      continue;
    }
    if (point.name === name) replaced = true;
    else kept.push(line);
  }
  return { text: kept.map((line) => `${line}\n`).join(''), runs: kept.length, replaced, unreadable };
}

/**
 * Allure 3's configuration for one report: Allure 2's page (the allure2 plugin alone), named after
 * the run, with Allure 3's history file.
 */
export function allureConfig(runId: string, historyPath: string): object {
  const name = reportName(runId);
  return { name, historyPath, historyLimit: HISTORY_LIMIT, plugins: { allure2: { options: { reportName: name } } } };
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
  return stat(path).then(
    () => true,
    () => false,
  );
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
  history: Omit<KeptHistory, 'text'>;
}

export async function generateReport(paths: ReportPaths): Promise<GeneratedReport> {
  const entries = await readdir(paths.results).catch(() => [] as string[]);
  const resultFiles = entries.filter((name) => name.endsWith('-result.json'));
  if (resultFiles.length === 0) {
    throw new HarnessError(`no Allure results in ${paths.results}: run \`npm run accept\` (or a warm run) first`);
  }
  if (!(await exists(ALLURE_CLI))) throw new HarnessError(`Allure 3 (npm allure) is not installed (${ALLURE_CLI}): run \`npm ci\``);

  const runId = await resultsRunId(paths, resultFiles);
  const historyFile = join(paths.history, 'history.jsonl');
  const { text, ...history } = historyWithout((await readText(historyFile)) ?? '', reportName(runId));
  await rm(paths.staging, { recursive: true, force: true });
  const extra = join(paths.staging, 'results');
  await mkdir(extra, { recursive: true });
  const stagedHistory = join(paths.staging, 'history.jsonl');
  await writeFile(stagedHistory, text);
  const config = join(paths.staging, 'allurerc.json');
  await writeFile(config, JSON.stringify(allureConfig(runId, stagedHistory)));
  const inputs = [paths.results];
  // Results from before this harness wrote categories still get them, from beside the results.
  if (!entries.includes('categories.json')) {
    await writeFile(join(extra, 'categories.json'), `${JSON.stringify(ALLURE_CATEGORIES, null, 2)}\n`);
    inputs.push(extra);
  }

  // A fresh output directory: Allure 3 writes a plugin's page into a subdirectory, and moves it up
  // only when it is the one directory there.
  const output = join(paths.staging, 'report');
  const started = performance.now();
  // No analytics script in the page: the report is opened offline.
  const generated = await run(process.execPath, [ALLURE_CLI, 'generate', ...inputs, '--config', config, '--output', output], {
    env: { ...process.env, ALLURE_NO_ANALYTICS: 'true' },
  });
  const durationMs = performance.now() - started;
  if (generated.code !== 0 || !(await exists(join(output, 'index.html'))) || !(await exists(join(output, 'data', 'suites.json')))) {
    await rm(paths.staging, { recursive: true, force: true });
    throw new HarnessError(
      `allure generate (Allure 3) failed (exit ${generated.code}), or wrote no index.html and data/suites.json in ${output}:\n${generated.output.trim().slice(-2000)}`,
    );
  }

  await rm(paths.report, { recursive: true, force: true });
  await rename(output, paths.report);
  await mkdir(paths.history, { recursive: true });
  await rename(stagedHistory, historyFile);
  // Allure 2's history snapshots: Allure 3 does not read them.
  for (const stale of ['latest', 'previous', 'build-order']) await rm(join(paths.history, stale), { recursive: true, force: true });
  await rm(paths.staging, { recursive: true, force: true });
  await copyPlan(paths.report);

  const summary = JSON.parse((await readText(join(paths.report, 'widgets', 'summary.json'))) ?? '{}') as { statistic?: Record<string, number> };
  return { runId, durationMs, statistic: summary.statistic ?? {}, history };
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
    throw new HarnessError("the rendering check needs Debian's chromium, and installing it needs root: run `apt-get install -y chromium` as root");
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
export function pickTestCase(suites: SuiteNode, record: RunRecord): { item: string; uid: string; route: string } | undefined {
  const worst = ['broken', 'failed', 'skipped', 'passed'];
  for (const label of itemsBySeverity(record).map((item) => itemLabel(item.id))) {
    const group = suites.children?.find((child) => child.name === label);
    const tests = (group?.children ?? []).filter((child) => !child.children);
    const test = [...tests].sort((a, b) => worst.indexOf(a.status ?? 'passed') - worst.indexOf(b.status ?? 'passed'))[0];
    if (group && test) return { item: label, uid: test.uid, route: `suites/${group.uid}/${test.uid}/` };
  }
  return undefined;
}

export interface CheckResult {
  items: string[];
  checks: { what: string; missing: string[] }[];
  screenshots: string[];
  durationMs: number;
}

async function reportJson<T>(reportDir: string, file: string): Promise<T> {
  const path = join(reportDir, file);
  const text = await readText(path);
  try {
    return JSON.parse(text ?? '') as T;
  } catch {
    throw new HarnessError(`${path} is ${text === undefined ? 'missing' : 'not JSON'}: generate the report again with \`npm run report\``);
  }
}

/**
 * What the generated data says, before a browser renders it (Allure 2's page, as Allure 3's allure2
 * plugin writes it): data/suites.json has a suite per item of the run record,
 * widgets/environment.json this run's id, and the test the screenshot shows a link to the plan.
 */
export async function reportDataChecks(
  reportDir: string,
  record: RunRecord,
  runId: string,
): Promise<{ checks: CheckResult['checks']; test?: ReturnType<typeof pickTestCase> }> {
  const items = recordItems(record);
  const suites = await reportJson<SuiteNode>(reportDir, 'data/suites.json');
  const suiteNames = (suites.children ?? []).map((suite) => suite.name);
  const environment = await reportJson<{ name?: string; values?: string[] }[]>(reportDir, 'widgets/environment.json');
  const hasRunId = Array.isArray(environment) && environment.some((entry) => entry.name === 'run.id' && entry.values?.includes(runId));
  const checks: CheckResult['checks'] = [
    {
      what: `data/suites.json has a suite for each of the ${items.length} items of the run record`,
      missing: items.filter((item) => !suiteNames.includes(item)),
    },
    { what: `widgets/environment.json holds run.id ${runId}`, missing: hasRunId ? [] : [`run.id=${runId}`] },
  ];
  const test = pickTestCase(suites, record);
  if (test) {
    const testCase = await reportJson<{ links?: { url?: string }[] }>(reportDir, `data/test-cases/${test.uid}.json`);
    const linked = (testCase.links ?? []).some((link) => link.url?.startsWith('dod.md#'));
    checks.push({ what: `data/test-cases: a ${test.item} test links to its plan item`, missing: linked ? [] : ['a link to dod.md#…'] });
  }
  return { checks, test };
}

/**
 * Checks the generated data, then renders the report in headless chromium: the suites view must
 * list every item of the run record, the overview must show this run's environment, and a test
 * page its plan link.
 */
export async function checkReport(paths: ReportPaths, runId: string): Promise<CheckResult> {
  // The check compares the report with the run's record; a missing or foreign one names its file.
  const record = await readRunRecord(paths.reportsDir, runId);
  const items = recordItems(record);
  if (items.length === 0) throw new HarnessError(`the run record of run ${runId} holds no item, so there is nothing to look for in the report`);
  const { checks, test } = await reportDataChecks(paths.report, record, runId);
  const binary = await ensureChromium();
  const started = performance.now();
  const { server, url } = await serve(resolve(paths.report));
  try {
    // Allure renders on the client; virtual time lets its scripts and data loads finish first.
    const budget = '--virtual-time-budget=20000';
    const dom = (route: string) => chromium(binary, [budget, '--dump-dom', `${url}index.html#${route}`]);
    checks.push({ what: `suites view lists the ${items.length} items of the run record`, missing: missingFrom(htmlText(await dom('suites')), items) });
    checks.push({ what: `overview shows the environment of run ${runId}`, missing: missingFrom(htmlText(await dom('')), ['Environment', runId]) });
    if (test) {
      const page = await dom(test.route);
      checks.push({ what: `a ${test.item} test page links to its plan item`, missing: page.includes('href="dod.md#') ? [] : ['a link to dod.md#…'] });
    }
    const screenshots: string[] = [];
    for (const [route, name] of [
      ['', 'allure-overview.png'],
      [test?.route ?? 'suites', 'allure-test.png'],
    ] as const) {
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
  const { runs, replaced, unreadable } = generated.history;
  const history = [
    `trend: ${Math.min(runs, HISTORY_LIMIT - 1)} earlier run(s)`,
    replaced ? "this run's earlier report replaced" : '',
    unreadable ? `${unreadable} unreadable line(s) of history.jsonl dropped` : '',
  ]
    .filter(Boolean)
    .join('; ');
  process.stdout.write(
    `✓ ${join(paths.report, 'index.html')}: run ${generated.runId}, ${generated.statistic.total ?? 0} results (${stats}); ${history} (Allure 3, ${formatDuration(generated.durationMs)})\n` +
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
