/**
 * `npm run bench`: wall-clock figures measured side by side in one run, on the lab. Nothing here
 * asserts a time; it prints figures and ratios for people to compare.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildFor, commentTestme, finished, openCi } from '../acceptance/support/ci.ts';
import { loadConfig, type Config } from '../helpers/common/config.ts';
import { HarnessError, errorMessage } from '../helpers/common/errors.ts';
import { Ledger } from '../helpers/common/ledger.ts';
import { formatDuration } from '../helpers/common/log.ts';
import { exec, succeed } from '../helpers/common/exec.ts';
import { countOccurrences } from '../helpers/git/leak.ts';
import { secretForms } from '../helpers/common/secret-forms.ts';
import { closure } from '../helpers/nix/index.ts';
import { randomBytes } from 'node:crypto';
import { cloneRepo } from '../helpers/git/index.ts';
import { decryptSops, parseAgeIdentities, topLevelStrings } from '../helpers/sops/index.ts';
import { openHost, providerFor, resolveIncusBacked } from '../machines/index.ts';
import { newRunId } from '../machines/labels.ts';
import { openIncus } from '../machines/resolve.ts';
import { fetchServedChain } from '../helpers/tls/index.ts';
import { latestRunRecord } from '../reporting/run-record-io.ts';
import type { RunRecord } from '../reporting/run-record.ts';
import { PHASE_NAMES, RUN_DONE, RUN_PHASES, parsePhases, type RunPhases } from '../reporting/session-line.ts';
import type { RunContext } from '../machines/run-context.ts';

interface Figure {
  what: string;
  ms: number;
}

async function time<T>(figures: Figure[], what: string, work: () => Promise<T>): Promise<T> {
  const started = performance.now();
  const result = await work();
  figures.push({ what, ms: performance.now() - started });
  return result;
}

function child(args: string[], env: NodeJS.ProcessEnv, command = process.execPath): Promise<number> {
  return new Promise((resolve) => {
    const proc = spawn(command, args, { stdio: ['ignore', 'ignore', 'ignore'], env });
    proc.on('close', (code) => resolve(code ?? 1));
  });
}

/** A child whose output is kept (the warm breakdown reads Vitest's own summary line). */
function childWithOutput(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    let output = '';
    proc.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    proc.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    proc.on('close', (code) => resolve({ code: code ?? 1, output }));
  });
}

/** Vitest's own summary of a run's phases: `Duration 4.54s (transform 653ms, setup 161ms, import 1.63s, tests 1.01s, …)`. */
export function vitestPhases(output: string): Record<string, number> {
  const line = /Duration\s+\S+\s*\(([^)]*)\)/.exec(output.replace(/\x1b\[[0-9;]*m/g, ''))?.[1] ?? '';
  const phases: Record<string, number> = {};
  for (const [, name, value, unit] of line.matchAll(/(\w+) ([0-9.]+)(ms|s)\b/g)) phases[name!] = Number(value) * (unit === 's' ? 1000 : 1);
  return phases;
}

/**
 * A long-lived session (`accept watch`) in a child, for the bench: `rerun()` presses Enter and
 * answers the time the session itself measured, from the trigger until every reporter had written.
 */
interface SessionRun {
  ms: number;
  word: string;
  phases: Partial<RunPhases>;
}

async function openSession(specs: string[], env: NodeJS.ProcessEnv): Promise<{ first: number; rerun: () => Promise<SessionRun>; close: () => Promise<void> }> {
  const proc = spawn(process.execPath, ['bin/accept.mjs', 'watch', ...specs], { stdio: ['pipe', 'pipe', 'pipe'], env });
  let output = '';
  let waiting: (() => void) | undefined;
  const onData = (chunk: Buffer) => {
    output += chunk.toString('utf8');
    waiting?.();
  };
  proc.stdout.on('data', onData);
  proc.stderr.on('data', onData);
  let seen = 0;
  const nextRun = () =>
    new Promise<SessionRun>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new HarnessError(`bench: accept watch ${specs.join(' ')} did not finish run ${seen + 1} within 5 minutes:\n${output.slice(-2000)}`)),
        300_000,
      );
      const check = () => {
        const runs = [...output.matchAll(new RegExp(RUN_DONE.source, 'gm'))];
        if (runs.length > seen) {
          const done = runs[seen]!;
          seen += 1;
          clearTimeout(timer);
          waiting = undefined;
          const phases = [...output.matchAll(new RegExp(RUN_PHASES.source, 'gm'))].find((line) => line[1] === done[1]);
          resolve({ ms: Number(done[2]), word: done[3]!, phases: phases ? parsePhases(phases[2]!) : {} });
        } else if (proc.exitCode !== null) {
          clearTimeout(timer);
          reject(new HarnessError(`bench: accept watch exited ${proc.exitCode}:\n${output.slice(-2000)}`));
        }
      };
      waiting = check;
      check();
    });
  const first = await nextRun();
  return {
    first: first.ms,
    rerun: () => {
      const run = nextRun();
      proc.stdin.write('\n');
      return run;
    },
    close: () =>
      new Promise<void>((resolve) => {
        if (proc.exitCode !== null) return resolve();
        proc.once('close', () => resolve());
        proc.stdin.end('q\n');
      }),
  };
}

/** The median wall time of `times` runs of `run`, and whether every run exited 0. */
async function medianOf(times: number, run: () => Promise<number>): Promise<{ ms: number; codes: number[] }> {
  const walls: number[] = [];
  const codes: number[] = [];
  for (let i = 0; i < times; i++) {
    const started = performance.now();
    codes.push(await run());
    walls.push(performance.now() - started);
  }
  return { ms: median(walls), codes };
}

import { READ_ONLY_SPECS } from './watch.ts';
import { attestCommand, verifyCommand } from './attest.ts';
import { SIGNATURE_NAMESPACE } from '../helpers/evidence/attestation.ts';

export { READ_ONLY_SPECS };
export const WARM_CHECKS_SCRIPT = 'bench/warm-checks.sh';

/** The script's inputs: the same host, repos, key, CA and kept record the warm run reads. */
export function scriptEnv(context: RunContext, config: Config, keptFile: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    BENCH_INSTANCE: context.instance.name,
    BENCH_PROJECT: context.instance.project,
    BENCH_HTTPS_PORT: String(context.https.port),
    BENCH_DOMAIN: context.domain,
    BENCH_CA: context.tlsCaFile,
    BENCH_AGE_KEY: context.ageKeyFile,
    BENCH_BASE_REPO: context.baseRepo,
    BENCH_INSTANCE_REPO: context.instanceRepo,
    BENCH_KEPT: keptFile,
    BENCH_GUIDELINE_BYTES: String(config.ramGuidelineBytes),
    BENCH_ONESHOTS: context.profile.host.oneshots.join(' '),
    BENCH_D8_DOC: context.profile.docs.d8Document,
    BENCH_NIX_CONFIG: context.nixConfig ?? '',
    ...('name' in context.machines.production
      ? { BENCH_PRODUCTION: context.machines.production.name, BENCH_PRODUCTION_MEMORY: context.machines.production.memory }
      : {}),
    BENCH_DECISIONS: context.profile.docs.decisions,
  };
}

const ON_PAPER_REBUILD_MS = 600_000;

/** The cold breakdown from a run record: rows of what and how long, the overhead share, and the line on paper. */
export function coldBreakdown(record: RunRecord): { rows: Figure[]; lines: string[] } {
  const phases = record.phases;
  const rows: Figure[] = [];
  const provision = phases.provision;
  if (provision) {
    if (provision.machinesMs !== undefined)
      rows.push({
        what: 'cold: the running cc-ci and the neighbours (the lab converges its stand-ins where needed; observed before the throwaway)',
        ms: provision.machinesMs,
      });
    rows.push({ what: 'cold: create the throwaway (Incus create + start)', ms: provision.createMs });
    rows.push({ what: 'cold: boot the throwaway (until systemd is running)', ms: provision.bootMs });
    rows.push({ what: 'cold: runbook on the throwaway', ms: provision.runbookMs });
    for (const step of provision.steps) rows.push({ what: `  step ${step.index}: ${step.text.slice(0, 72)}`, ms: step.durationMs });
  }
  for (const file of phases.specFiles ?? [])
    rows.push({ what: `cold: ${file.file.replace(/^acceptance\//, '')} (its tests ${formatDuration(file.testsMs)})`, ms: file.durationMs });
  if (phases.specsMs !== undefined) rows.push({ what: 'cold: all spec files', ms: phases.specsMs });
  if (phases.deleteMs !== undefined) rows.push({ what: 'cold: teardown: delete the throwaway', ms: phases.deleteMs });
  if (phases.teardownMs !== undefined) rows.push({ what: 'cold: teardown in all (delete, cleanup check, evidence)', ms: phases.teardownMs });
  const lines: string[] = [];
  if (phases.wallMs !== undefined && phases.overheadMs !== undefined && phases.waitingMs !== undefined) {
    rows.push({ what: 'cold: wall (Vitest start to last record)', ms: phases.wallMs });
    rows.push({ what: 'cold: waiting on the system', ms: phases.waitingMs });
    rows.push({ what: 'cold: harness overhead (wall − waiting)', ms: phases.overheadMs });
    lines.push(
      `cold run harness overhead: ${formatDuration(phases.overheadMs)} of ${formatDuration(phases.wallMs)} wall = ${share(phases.overheadMs, phases.wallMs)} (definition: docs/reports.md, "Phases")`,
    );
    const rebuild = provision?.steps.find((step) => /nixos-rebuild switch/.test(step.text))?.durationMs ?? 0;
    const paperWall = phases.wallMs - rebuild + ON_PAPER_REBUILD_MS;
    lines.push(
      `on paper, a real cold run with a 10-minute rebuild: the same ${formatDuration(phases.overheadMs)} overhead of ${formatDuration(paperWall)} = ${share(phases.overheadMs, paperWall)}`,
    );
  } else {
    lines.push(`cold run record ${record.runId} has no overhead figures (a run that did not finish, or an older harness)`);
  }
  return { rows, lines };
}

/** A session re-run's breakdown (reporting/session-line.ts, PHASE_NAMES), each phase the median over the re-runs. */
export function phaseRows(runs: readonly Partial<RunPhases>[]): Figure[] {
  const rows: Figure[] = [];
  for (const name of PHASE_NAMES) {
    const values = runs.map((run) => run[name]).filter((value): value is number => value !== undefined);
    if (values.length) rows.push({ what: `  ${name}: ${PHASE_WHAT[name]} (median)`, ms: median(values) });
  }
  return rows;
}

const PHASE_WHAT: Record<(typeof PHASE_NAMES)[number], string> = {
  attach: 'settings and kept.json read afresh, the lab machines checked',
  worker: 'a new worker started and scheduled',
  import: 'the specs and their imports evaluated in it',
  fixtures: 'channels, clones, decryption, builds',
  tests: 'the checks themselves',
  reports: 'summary, run record, evidence, JUnit, Allure',
};

function share(part: number, whole: number): string {
  return `${((part / whole) * 100).toFixed(1)} %`;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

const LEAK_COMMITS = 600;
const LEAK_FILES = 80;
const LEAK_RUNS = 3;

/** Text that looks like a repo's: config, code and docs lines, with the odd token and base64 blob in them. */
function realisticFile(i: number, revision: number): string {
  const lines: string[] = [`# file ${i}, revision ${revision}`];
  for (let n = 0; n < 60 + (i % 7) * 20; n++) {
    const kind = (n + i + revision) % 6;
    if (kind === 0) lines.push(`  ${['name', 'image', 'command', 'volume', 'env'][n % 5]}: value-${n}-${randomBytes(4).toString('hex')}`);
    else if (kind === 1) lines.push(`export function step${n}(input: string): string { return input.replace(/x/g, '${randomBytes(3).toString('hex')}'); }`);
    else if (kind === 2) lines.push(`Deploy the stack with the recipe's defaults; see section ${n} for the ${['backup', 'upgrade', 'restore'][n % 3]} steps.`);
    else if (kind === 3) lines.push(`checksum: sha256-${randomBytes(32).toString('base64')}`);
    else if (kind === 4) lines.push(`    "${randomBytes(5).toString('hex')}": "${randomBytes(24).toString('base64url')}",`);
    else lines.push('');
  }
  return `${lines.join('\n')}\n`;
}

/** Values shaped like cc-ci's sops values: tokens, a password, a PEM key, a JSON credential, a dotenv file. */
function realisticSecrets(): Record<string, string> {
  const pem = [
    '-----BEGIN PRIVATE KEY-----',
    ...(randomBytes(1200)
      .toString('base64')
      .match(/.{1,64}/g) ?? []),
    '-----END PRIVATE KEY-----',
    '',
  ].join('\n');
  return {
    drone_rpc_secret: randomBytes(32).toString('hex'),
    webhook_hmac: randomBytes(32).toString('hex'),
    gitea_token: randomBytes(20).toString('hex'),
    oauth_client_secret: randomBytes(24).toString('base64url'),
    admin_password: `Pw-${randomBytes(9).toString('base64')}`,
    wildcard_key: pem,
    registry_auth: JSON.stringify({ auths: { 'registry.example.test': { username: 'ci', password: randomBytes(18).toString('base64url') } } }),
    backup_env: `RESTIC_REPOSITORY=s3:https://s3.example.test/backups\nRESTIC_PASSWORD=${randomBytes(16).toString('hex')}\n`,
  };
}

/**
 * The leak probe over a whole generated history (600 commits, 80 files edited in turn), with
 * every form of eight realistic values beside the verbatim values only, and beside the reviewers'
 * `git grep -F` with the verbatim values alone (one grep for all, over every commit), in turn.
 * Needs git only: `npm run bench -- leak` runs this section alone, without the lab.
 */
export async function leakProbeFigures(scratch: string, figures: Figure[]): Promise<string[]> {
  const repo = join(scratch, 'history');
  await succeed('git', ['init', '-q', repo]);
  const stream: string[] = [];
  for (let i = 1; i <= LEAK_COMMITS; i++) {
    stream.push('commit refs/heads/main\n', `committer b <b@b.invalid> ${1_700_000_000 + i} +0000\n`, `data 10\nchange ${String(i).padStart(3, '0')}\n`);
    // The first commits add every file; then one or two files change in each.
    const files = i <= LEAK_FILES ? [i - 1] : [i % LEAK_FILES, (i * 7) % LEAK_FILES];
    for (const file of files) {
      const body = realisticFile(file, i);
      stream.push(
        `M 644 inline ${['docs', 'stacks', 'nix', 'ci'][file % 4]}/file-${file}.${['md', 'yml', 'nix', 'ts'][file % 4]}\n`,
        `data ${Buffer.byteLength(body)}\n${body}`,
      );
    }
  }
  await succeed('git', ['fast-import', '--quiet'], { cwd: repo, input: stream.join('') });
  await succeed('git', ['update-ref', 'HEAD', 'refs/heads/main'], { cwd: repo });
  await succeed('git', ['gc', '-q'], { cwd: repo });
  const secrets = realisticSecrets();
  const forms = Object.entries(secrets).reduce((sum, [label, value]) => sum + secretForms(label, value).length, 0);
  // git grep is line-based: a multi-line value can only be given as its lines.
  const verbatimLines = [
    ...new Set(Object.values(secrets).flatMap((value) => value.split('\n').filter((line) => line.length >= 6 && !line.startsWith('-----')))),
  ];
  const patterns = join(scratch, 'grep-patterns');
  await writeFile(patterns, `${verbatimLines.join('\n')}\n`, { mode: 0o600 });
  const revs = (await succeed('git', ['rev-list', '--all'], { cwd: repo })).stdout.trim().split('\n');
  const objects = (await succeed('git', ['rev-list', '--all', '--objects'], { cwd: repo })).stdout.trim().split('\n').length;

  const all: number[] = [];
  const verbatim: number[] = [];
  const grep: number[] = [];
  // In turn, so that all three see the same load.
  for (let run = 0; run < LEAK_RUNS; run++) {
    let started = performance.now();
    await countOccurrences(repo, secrets);
    all.push(performance.now() - started);
    started = performance.now();
    await countOccurrences(repo, secrets, { forms: 'verbatim' });
    verbatim.push(performance.now() - started);
    started = performance.now();
    const result = await exec('git', ['grep', '-F', '-c', '-f', patterns, ...revs], { cwd: repo, timeoutMs: 600_000 });
    if (result.exitCode > 1) throw new HarnessError(`bench: git grep failed (exit ${result.exitCode}): ${result.stderr.slice(0, 500)}`);
    grep.push(performance.now() - started);
  }
  const over = `${LEAK_COMMITS} commits, ${objects} objects, ${Object.keys(secrets).length} values`;
  figures.push({ what: `leak probe, every form: ${over}, ${forms} forms (median of ${LEAK_RUNS})`, ms: median(all) });
  figures.push({ what: `  leak probe, verbatim only: the values and their lines (median of ${LEAK_RUNS})`, ms: median(verbatim) });
  figures.push({
    what: `  git grep -F -f <${verbatimLines.length} verbatim values and lines> $(git rev-list --all) (median of ${LEAK_RUNS})`,
    ms: median(grep),
  });
  return [
    `leak probe: every form / verbatim only = ${(median(all) / median(verbatim)).toFixed(2)}× (goal: at most 2×)`,
    `leak probe: git grep -F verbatim / every form = ${(median(grep) / median(all)).toFixed(1)}× (goal: above 1, the probe is faster)`,
  ];
}

/** `npm run bench -- leak`: the leak probe's figures alone, on a generated repo, without the lab. */
async function leakBench(): Promise<number> {
  const scratch = await mkdtemp(join(tmpdir(), 'accept-bench-'));
  try {
    process.stderr.write('→ Measuring the leak probe on a generated history…\n');
    const figures: Figure[] = [];
    const lines = await leakProbeFigures(scratch, figures);
    const width = Math.max(...figures.map((figure) => figure.what.length));
    process.stdout.write(`\n${'phase'.padEnd(width)}  ${'time'.padStart(9)}\n`);
    for (const figure of figures) process.stdout.write(`${figure.what.padEnd(width)}  ${formatDuration(figure.ms).padStart(9)}\n`);
    for (const line of lines) process.stdout.write(`${line}\n`);
    return 0;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/**
 * `accept verify` on the bench's own cold run, signed with a key made for it: the adversary's
 * check of a run's evidence, offline (issue 34 asks for well under a second).
 */
export async function verifyFigures(reportsDir: string, scratch: string, figures: Figure[]): Promise<string[]> {
  const record = await latestRunRecord(reportsDir).catch(() => undefined);
  if (!record) return ['no verify figure: the cold run left no run record'];
  const dir = join(reportsDir, 'evidence', record.runId);
  const key = join(scratch, 'adversary');
  await succeed('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'adversary', '-f', key]);
  const [type, blob] = (await readFile(`${key}.pub`, 'utf8')).split(' ');
  const signers = join(scratch, 'allowed_signers');
  await writeFile(signers, `adversary@bench namespaces="${SIGNATURE_NAMESPACE}" ${type} ${blob}\n`);
  const attested = await attestCommand([dir, '--key', key]);
  if (attested.code !== 0) return [`no verify figure: accept attest exited ${attested.code}: ${attested.stderr.trim()}`];
  const times: number[] = [];
  const codes: number[] = [];
  for (let i = 0; i < 5; i++) {
    const started = performance.now();
    codes.push((await verifyCommand([dir, '--allowed-signers', signers, '--target', 'lab'])).code);
    times.push(performance.now() - started);
  }
  figures.push({ what: `verify: accept verify of the cold run's signed evidence, in this process (median of 5, exits ${codes.join(' ')})`, ms: median(times) });
  return [];
}

export async function bench(args: readonly string[] = []): Promise<number> {
  if (args[0] === 'leak') return leakBench();
  const config = loadConfig();
  const figures: Figure[] = [];
  const scratch = await mkdtemp(join(tmpdir(), 'accept-bench-'));
  process.stderr.write('→ Measuring (each phase once; micro-checks 5 times, median)…\n');
  try {
    const provider = providerFor(config, { bringUpLab: true });
    const resolved = await time(figures, 'lab up (already up: idempotent check)', () => resolveIncusBacked(config, { bringUpLab: true }));
    await time(figures, 'connect to Incus (mTLS through SOCKS)', async () => (await openIncus(resolved)).close());
    const ledger = new Ledger();
    // The cold run's own provisioning: sweep, throwaway, key, runbook.
    const provisioned = await time(figures, 'provision: create, boot, key, runbook (as a cold run does)', () =>
      provider.provision({ runId: newRunId(), mode: 'warm', ledger, logDir: join(scratch, 'reaper'), ttlMs: 3_600_000 }),
    );
    const context = provisioned.context;
    const throwaway = await openHost(context);
    try {
      const runbook = context.runbook!;
      for (const step of runbook.steps)
        if (step.kind === 'sh' && /nixos-rebuild switch/.test(step.text)) figures.push({ what: '  of which nixos-rebuild switch', ms: step.durationMs });
      const target = context;

      const ca = await readFile(target.tlsCaFile, 'utf8');
      const identities = parseAgeIdentities(await readFile(target.ageKeyFile, 'utf8'), target.ageKeyFile);
      await using instance = await cloneRepo(target.instanceRepo);
      const sopsText = await readFile(join(instance.dir, 'secrets.yaml'), 'utf8');
      const sopsTimes: number[] = [];
      const tlsTimes: number[] = [];
      let secrets: Record<string, string> = {};
      for (let i = 0; i < 5; i++) {
        let started = performance.now();
        const document = await decryptSops(sopsText, { identities });
        sopsTimes.push(performance.now() - started);
        secrets = topLevelStrings(document);
        started = performance.now();
        await fetchServedChain({ host: context.https.host, port: context.https.port, servername: `drone.${target.domain}`, socks: context.target.socks, ca });
        tlsTimes.push(performance.now() - started);
      }
      figures.push({ what: 'sops: decrypt + verify MAC of secrets.yaml (median of 5)', ms: median(sopsTimes) });
      figures.push({ what: 'tls: fetch + verify served chain via SOCKS (median of 5)', ms: median(tlsTimes) });
      const closureTimes: number[] = [];
      for (let i = 0; i < 5; i++) {
        const started = performance.now();
        await closure(throwaway);
        closureTimes.push(performance.now() - started);
      }
      figures.push({ what: 'nix: closure of /run/current-system with narHashes (median of 5)', ms: median(closureTimes) });
      figures.push({ what: '  sops + tls + closure against the warm host', ms: median(sopsTimes) + median(tlsTimes) + median(closureTimes) });

      const ci = await openCi(context, config, secrets);
      const startTimes: number[] = [];
      const finishTimes: number[] = [];
      for (let i = 0; i < 3; i++) {
        const trigger = await commentTestme(ci, 'custom-html');
        const started = await buildFor(ci, trigger, 60_000);
        if (!started) throw new HarnessError(`bench: no Drone build started within 60 s of !testme comment ${trigger.comment.id} on ${context.instance.name}`);
        await finished(ci, started.build.number);
        startTimes.push(started.seenAfterMs);
        finishTimes.push(Date.now() - trigger.postedAt);
      }
      figures.push({ what: '!testme comment → Drone build started (median of 3)', ms: median(startTimes) });
      figures.push({ what: '!testme comment → build finished, 3 stages (median of 3)', ms: median(finishTimes) });

      const keptFile = await provisioned.recordKept(scratch);
      const env = { ...process.env, ACCEPT_STATE_DIR: scratch, ACCEPT_REPORTS_DIR: join(scratch, 'reports') };
      const vitest = (specs: string[]) => ['node_modules/vitest/vitest.mjs', 'run', '--project', 'warm', ...specs];
      const single = ['acceptance/c2-cert-in-git.spec.ts'];
      await time(figures, 'connect: attach to the kept host (settings, kept.json, lab generation), in this process', () =>
        providerFor({ ...config, stateDir: scratch }).attach(),
      );
      // Warm runs keep Vitest's transforms on disk (vitest.config.ts): one unmeasured run fills that
      // cache, as the builder's loop has it after its first run.
      await child(vitest(single), env);
      const npx = await medianOf(3, () => child(['vitest', 'run', '--project', 'warm', ...single], env, 'npx'));
      figures.push({
        what: `warm: npx vitest run --project warm c2-cert-in-git.spec.ts (whole process, median of 3, exits ${npx.codes.join(' ')})`,
        ms: npx.ms,
      });
      const direct = await medianOf(3, () => child(vitest(single), env));
      figures.push({ what: `  the same without npx: node node_modules/vitest/vitest.mjs (median of 3)`, ms: direct.ms });
      // Where a whole-process warm run of one spec spends its time: the run record's marks (Vitest's
      // start, the DoD reporter's start) and Vitest's own summary line, from one more run.
      const breakdownReports = join(scratch, 'breakdown-reports');
      const spawnedAt = Date.now();
      const traced = await childWithOutput(vitest(single), { ...env, ACCEPT_REPORTS_DIR: breakdownReports });
      const exitedAt = Date.now();
      const record = await latestRunRecord(breakdownReports).catch(() => undefined);
      if (record?.finishedAt) {
        const phases = vitestPhases(traced.output);
        const vitestStarted = Date.parse(record.startedAt);
        const reportersStarted = Date.parse(record.finishedAt);
        figures.push({ what: `  breakdown of one such run (exit ${traced.code}), wall`, ms: exitedAt - spawnedAt });
        figures.push({ what: '    start and config: node, Vitest, the config and the reporters transformed and imported', ms: vitestStarted - spawnedAt });
        figures.push({
          what: '    connect, worker, transform and import, fixtures, tests: Vitest start to the reporters',
          ms: reportersStarted - vitestStarted,
        });
        for (const name of ['transform', 'setup', 'import', 'tests']) {
          if (phases[name] !== undefined)
            figures.push({
              what: `      Vitest's own count: ${name}${name === 'tests' ? ' (the worker-scoped fixtures are made in the first tests)' : ''}`,
              ms: phases[name]!,
            });
        }
        figures.push({ what: '    reporters and evidence: DoD summary, run.json, evidence dir, JUnit; then exit', ms: exitedAt - reportersStarted });
      }
      // What the transform cache saves: the same runs with it off.
      const uncached = (specs: string[]) => [...vitest(specs), '--experimental.fsModuleCache=false'];
      const direct2 = await medianOf(3, () => child(uncached(single), env));
      figures.push({ what: `  the same without the transform cache (--experimental.fsModuleCache=false, median of 3)`, ms: direct2.ms });

      // The long-lived sessions (accept watch), open beside the rest: the first run of each is
      // their start-up, and each re-run after it is what the builder waits for.
      const singleSession = await openSession(single, { ...env, ACCEPT_REPORTS_DIR: join(scratch, 'session-single') });
      const suiteSession = await openSession(READ_ONLY_SPECS, { ...env, ACCEPT_REPORTS_DIR: join(scratch, 'session-suite') });
      try {
        figures.push({ what: `session: accept watch c2-cert-in-git.spec.ts, its first run (start-up included)`, ms: singleSession.first });
        figures.push({ what: `session: accept watch, the ${READ_ONLY_SPECS.length} read-only specs, its first run`, ms: suiteSession.first });
        // Side by side, alternating, so that all see the same load.
        const walls = { suite: [] as number[], script: [] as number[], singleRerun: [] as number[], suiteRerun: [] as number[] };
        const exits = { suite: [] as number[], script: [] as number[] };
        const outcomes = { singleRerun: [] as string[], suiteRerun: [] as string[] };
        const phases = { singleRerun: [] as Partial<RunPhases>[], suiteRerun: [] as Partial<RunPhases>[] };
        const checks = scriptEnv(context, config, keptFile);
        for (let i = 0; i < 3; i++) {
          let started = performance.now();
          exits.suite.push(await child(vitest(READ_ONLY_SPECS), env));
          walls.suite.push(performance.now() - started);
          started = performance.now();
          exits.script.push(await child([WARM_CHECKS_SCRIPT], checks, 'bash'));
          walls.script.push(performance.now() - started);
          const single_ = await singleSession.rerun();
          walls.singleRerun.push(single_.ms);
          outcomes.singleRerun.push(single_.word);
          phases.singleRerun.push(single_.phases);
          const suite_ = await suiteSession.rerun();
          walls.suiteRerun.push(suite_.ms);
          outcomes.suiteRerun.push(suite_.word);
          phases.suiteRerun.push(suite_.phases);
        }
        figures.push({
          what: `warm: read-only suite, ${READ_ONLY_SPECS.length} specs (whole process, median of 3, exits ${exits.suite.join(' ')})`,
          ms: median(walls.suite),
        });
        figures.push({
          what: `  ${WARM_CHECKS_SCRIPT}: the same checks with incus exec, openssl, git grep (median of 3, exits ${exits.script.join(' ')})`,
          ms: median(walls.script),
        });
        figures.push({ what: `session: re-run of c2-cert-in-git.spec.ts (median of 3: ${outcomes.singleRerun.join(' ')})`, ms: median(walls.singleRerun) });
        figures.push(...phaseRows(phases.singleRerun));
        figures.push({ what: `session: re-run of the read-only suite (median of 3: ${outcomes.suiteRerun.join(' ')})`, ms: median(walls.suiteRerun) });
        figures.push(...phaseRows(phases.suiteRerun));
      } finally {
        await singleSession.close();
        await suiteSession.close();
      }
      const suite2 = await medianOf(3, () => child(uncached(READ_ONLY_SPECS), env));
      figures.push({ what: `  the suite without the transform cache (median of 3, exits ${suite2.codes.join(' ')})`, ms: suite2.ms });
    } finally {
      await throwaway.close();
      await time(figures, 'teardown: delete throwaway', () => provisioned.stop());
      await provisioned.close();
    }
    const leakLines = await leakProbeFigures(scratch, figures);
    // Its own state directory and never kept: the bench leaves no throwaway behind.
    const coldReports = join(scratch, 'cold-reports');
    const coldEnv = { ...process.env, ACCEPT_REPORTS_DIR: coldReports, ACCEPT_STATE_DIR: join(scratch, 'cold-state'), ACCEPT_KEEP: 'never' };
    const coldCode = await time(figures, 'cold: `accept run` end to end (image cached)', () => child(['bin/accept.mjs', 'run'], coldEnv));
    const cold = figures.at(-1)!.ms;
    const breakdown = await latestRunRecord(coldReports).then(coldBreakdown, (error: unknown) => ({
      rows: [],
      lines: [`no cold breakdown: ${errorMessage(error)}`],
    }));
    figures.push(...breakdown.rows);
    const verifyLines = await verifyFigures(coldReports, scratch, figures);

    const warm = figures.find((figure) => figure.what.startsWith('warm:'))!.ms;
    const suite = figures.find((figure) => figure.what.startsWith('warm: read-only suite'))!.ms;
    const script = figures.find((figure) => figure.what.includes(WARM_CHECKS_SCRIPT))!.ms;
    const width = Math.max(...figures.map((figure) => figure.what.length));
    process.stdout.write(`\n${'phase'.padEnd(width)}  ${'time'.padStart(9)}  share of cold run\n`);
    for (const figure of figures) {
      process.stdout.write(`${figure.what.padEnd(width)}  ${formatDuration(figure.ms).padStart(9)}  ${((figure.ms / cold) * 100).toFixed(1).padStart(5)} %\n`);
    }
    process.stdout.write(`\nratio cold run / warm run of one spec: ${(cold / warm).toFixed(1)}×\n`);
    process.stdout.write(`ratio script / harness on the warm read-only suite: ${(script / suite).toFixed(2)}× (above 1: the harness is faster)\n`);
    const singleRerun = figures.find((figure) => figure.what.startsWith('session: re-run of c2'))!.ms;
    const suiteRerun = figures.find((figure) => figure.what.startsWith('session: re-run of the read-only suite'))!.ms;
    process.stdout.write(
      `ratio script / session re-run of the read-only suite: ${(script / suiteRerun).toFixed(2)}× (goal: at least 3×; the re-run ${formatDuration(suiteRerun)}, goal 1 s)\n`,
    );
    process.stdout.write(
      `ratio script / session re-run of one spec: ${(script / singleRerun).toFixed(2)}× (the re-run ${formatDuration(singleRerun)}, goal 500 ms); whole-process one spec ${formatDuration(warm)} (goal 2 s)\n`,
    );
    process.stdout.write(`(all figures from this one run, side by side; on a shared machine they move with other people's load)\n`);
    for (const line of breakdown.lines) process.stdout.write(`${line}\n`);
    for (const line of leakLines) process.stdout.write(`${line}\n`);
    for (const line of verifyLines) process.stdout.write(`${line}\n`);
    process.stdout.write(`cold run exit code: ${coldCode} (${coldCode === 0 ? 'every item passed' : 'see `npm run accept`'})\n`);
    return 0;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
