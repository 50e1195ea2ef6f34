/**
 * `npm run bench`: wall-clock figures measured side by side in one run, on the lab. Nothing here
 * asserts a time; it prints figures and ratios for people to compare.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildFor, commentTestme, finished, openCi } from '../acceptance/support/ci.ts';
import { loadConfig } from '../helpers/common/config.ts';
import { HarnessError } from '../helpers/common/errors.ts';
import { Ledger } from '../helpers/common/ledger.ts';
import { formatDuration } from '../helpers/common/log.ts';
import { exec, succeed } from '../helpers/common/exec.ts';
import { countOccurrences } from '../helpers/git/leak.ts';
import { closure } from '../helpers/nix/index.ts';
import { randomBytes } from 'node:crypto';
import { cloneRepo } from '../helpers/git/index.ts';
import { decryptSops, parseAgeIdentities, topLevelStrings } from '../helpers/sops/index.ts';
import { openHost, providerFor, resolveIncusBacked } from '../target/index.ts';
import { newRunId } from '../target/labels.ts';
import { openIncus } from '../target/resolve.ts';
import { fetchServedChain } from '../helpers/tls/index.ts';

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

function child(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'ignore'], env });
    proc.on('close', (code) => resolve(code ?? 1));
  });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

const LEAK_COMMITS = 1200;
const LEAK_NEEDLES = 8;

/** The leak probe on a 1,200-commit history, beside the reviewers' `git grep -F v $(git rev-list --all)`. */
async function leakProbeFigures(scratch: string, figures: Figure[]): Promise<void> {
  const repo = join(scratch, 'history');
  await succeed('git', ['init', '-q', repo]);
  const stream: string[] = [];
  for (let i = 1; i <= LEAK_COMMITS; i++) {
    const body = `revision ${i} ${randomBytes(600).toString('base64')}\n`;
    stream.push('commit refs/heads/main\n', `committer b <b@b.invalid> ${1_700_000_000 + i} +0000\n`, `data 3\nc${i % 10}\n`);
    stream.push(`M 644 inline docs/file-${i % 40}.md\n`, `data ${Buffer.byteLength(body)}\n${body}`);
  }
  await succeed('git', ['fast-import', '--quiet'], { cwd: repo, input: stream.join('') });
  await succeed('git', ['update-ref', 'HEAD', 'refs/heads/main'], { cwd: repo });
  const needles = Array.from({ length: LEAK_NEEDLES }, () => randomBytes(16).toString('hex'));
  let started = performance.now();
  await countOccurrences(repo, needles);
  const probe = performance.now() - started;
  figures.push({ what: `leak probe: ${LEAK_COMMITS} commits × ${LEAK_NEEDLES} values (${Math.round((LEAK_COMMITS * LEAK_NEEDLES) / (probe / 1000)).toLocaleString('en')} commit·values/s)`, ms: probe });
  const revs = (await succeed('git', ['rev-list', '--all'], { cwd: repo })).stdout.trim().split('\n');
  started = performance.now();
  for (const needle of needles.slice(0, 2)) await exec('git', ['grep', '-F', '-c', needle, ...revs], { cwd: repo });
  const grep = ((performance.now() - started) / 2) * LEAK_NEEDLES;
  figures.push({ what: `  git grep -F per value over rev-list --all (2 timed, scaled to ${LEAK_NEEDLES})`, ms: grep });
}

export async function bench(): Promise<number> {
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
      for (const step of runbook.steps) if (step.kind === 'sh' && /nixos-rebuild switch/.test(step.text)) figures.push({ what: '  of which nixos-rebuild switch', ms: step.durationMs });
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

      await provisioned.recordKept(scratch);
      const env = { ...process.env, ACCEPT_STATE_DIR: scratch, ACCEPT_REPORTS_DIR: join(scratch, 'reports') };
      await time(figures, 'warm: vitest --project warm, C2 spec (whole process)', () => child(['node_modules/vitest/vitest.mjs', 'run', '--project', 'warm', 'acceptance/c2-cert-in-git.spec.ts'], env));
    } finally {
      await throwaway.close();
      await time(figures, 'teardown: delete throwaway', () => provisioned.stop());
      await provisioned.close();
    }
    await leakProbeFigures(scratch, figures);
    const coldEnv = { ...process.env, ACCEPT_REPORTS_DIR: join(scratch, 'cold-reports') };
    const coldCode = await time(figures, 'cold: `accept run` end to end (image cached)', () => child(['bin/accept.mjs', 'run'], coldEnv));

    const cold = figures.at(-1)!.ms;
    const warm = figures.find((figure) => figure.what.startsWith('warm:'))!.ms;
    const width = Math.max(...figures.map((figure) => figure.what.length));
    process.stdout.write(`\n${'phase'.padEnd(width)}  ${'time'.padStart(9)}  share of cold run\n`);
    for (const figure of figures) {
      process.stdout.write(`${figure.what.padEnd(width)}  ${formatDuration(figure.ms).padStart(9)}  ${((figure.ms / cold) * 100).toFixed(1).padStart(5)} %\n`);
    }
    process.stdout.write(`\nratio cold run / warm run of one spec: ${(cold / warm).toFixed(1)}×\n`);
    const probe = figures.find((figure) => figure.what.startsWith('leak probe'))!.ms;
    const grep = figures.find((figure) => figure.what.includes('git grep'))!.ms;
    process.stdout.write(`ratio git grep / leak probe on the same history: ${(grep / probe).toFixed(1)}×\n`);
    process.stdout.write(`cold run exit code: ${coldCode} (${coldCode === 0 ? 'every item passed' : 'see `npm run accept`'})\n`);
    return 0;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
