/** `accept`: the harness's command line. Every command prints what it does and how long it took. */
import { spawn } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, type Config } from '../helpers/common/config.ts';
import { HarnessError, errorMessage } from '../helpers/common/errors.ts';
import { formatDuration } from '../helpers/common/log.ts';
import { redact } from '../helpers/common/redact.ts';
import { labDown, labStatus, labUp } from '../lab/index.ts';
import { openIncus, resolveTarget } from '../target/resolve.ts';
import { sweep } from '../target/sweep.ts';
import { isOurs } from '../target/labels.ts';
import type { RunContext } from '../acceptance/support/context.ts';
import { bench } from './bench.ts';
import { cleanUpSabotage } from '../lab/sabotage.ts';
import { DOCTOR_HELP, doctor } from './doctor.ts';
import { REPORT_HELP, report } from './report.ts';
import { TOOLS_HELP, sops, tls } from './tools.ts';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

const HELP = `accept — cc-ci's Definition of Done as executable specs

usage: accept <command> [options]

commands:
  run [VITEST_ARGS…]       bring the lab up if the target is the lab, run every spec against a
                           brand-new throwaway (vitest --project cold), print the DoD summary;
                           exits non-zero if any item is not PASS            (npm run accept)
  lab up|down|status       manage the embedded lab                           (npm run lab -- …)
      up                   install Incus and tools (needs root once), start incusd, the SOCKS5
                           proxy on 127.0.0.1:1055, the mTLS API on 127.0.0.1:8443 and the git
                           server; build or reuse the blank image; generate the repos. Idempotent.
      down [--purge]       remove everything the lab created and nothing else; --purge also
                           drops the cached image tarballs
      status               one line per lab component
  down                     delete the throwaway kept by ACCEPT_KEEP=always, and forget it
  sweep [--dry-run]        delete expired throwaways carrying this harness's labels, nothing else
  selftest                 the harness's own tests: lab up, unit, end-to-end on the lab, then the sabotage
                           matrix (reports/sabotage-matrix.md)                (npm test)
  bench                    measure lab up, provisioning, runbook, specs, teardown and a whole cold
                           run, side by side, and print figures and ratios   (npm run bench)
${REPORT_HELP}${DOCTOR_HELP}${TOOLS_HELP}  help                     this text

Configuration is by ACCEPT_* environment variables; see docs/configuration.md. With none set,
the target is the embedded lab.

examples:
  npm ci && npm run accept
  npx vitest run --project warm acceptance/c2-cert-in-git.spec.ts   # one item, kept host
  ACCEPT_KEEP=always npm run accept                                 # keep the throwaway for warm runs
`;

function vitest(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, [join(REPO_ROOT, 'node_modules/vitest/vitest.mjs'), ...args], { cwd: REPO_ROOT, stdio: 'inherit', env });
    // The child gets terminal signals itself; we only wait for it.
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    process.on('SIGTERM', forward);
    process.on('SIGINT', () => undefined);
    child.on('exit', (code, signal) => {
      process.off('SIGTERM', forward);
      resolvePromise(code ?? (signal === 'SIGINT' ? 130 : 1));
    });
  });
}

async function bringUpLabIfNeeded(config: Config): Promise<void> {
  if (config.target !== 'lab') return;
  const started = performance.now();
  process.stderr.write(`→ Bringing the embedded lab up (${config.labDir})\n`);
  await labUp(config.labDir, config.labLayout);
  process.stderr.write(`✓ Lab up (${formatDuration(performance.now() - started)})\n`);
}

async function lab(config: Config, args: string[]): Promise<number> {
  const [action, ...rest] = args;
  switch (action) {
    case 'up':
      await bringUpLabIfNeeded(config);
      return 0;
    case 'down':
      await labDown(config.labDir, { purge: rest.includes('--purge') });
      return 0;
    case 'status': {
      const lines = await labStatus(config.labDir);
      for (const line of lines) process.stdout.write(`${line.ok ? '✓' : '✗'} ${line.what.padEnd(14)} ${line.detail}\n`);
      return lines.every((line) => line.ok) ? 0 : 1;
    }
    default:
      process.stderr.write(`accept lab: expected up, down or status; got ${action ? JSON.stringify(action) : 'nothing'}\n\n${HELP}`);
      return 2;
  }
}

async function downKept(config: Config): Promise<number> {
  const file = join(config.stateDir, 'kept.json');
  const text = await readFile(file, 'utf8').catch(() => undefined);
  if (!text) {
    process.stdout.write(`no kept throwaway recorded in ${file}\n`);
    return 0;
  }
  const kept = JSON.parse(text) as RunContext;
  if (kept.target.kind === 'ssh') throw new HarnessError(`${file} names an ssh target, which the harness never deletes`);
  const client = await openIncus(kept.target);
  try {
    const instance = await client.getInstance(kept.instance.name);
    if (instance && !isOurs(instance, kept.runId)) {
      throw new HarnessError(`${kept.instance.name} in ${kept.instance.project} does not carry this harness's labels for run ${kept.runId}; not touching it`);
    }
    if (instance) await client.deleteInstance(kept.instance.name);
    process.stdout.write(`${instance ? 'deleted' : 'already gone:'} ${kept.instance.name}\n`);
  } finally {
    await client.close();
  }
  await rm(file, { force: true });
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(HELP);
    return command ? 0 : 2;
  }
  try {
    // The doctor reports a bad configuration as one of its checks, so it loads it itself.
    if (command === 'doctor') return await doctor(args);
    const config = loadConfig();
    switch (command) {
      case 'run':
        await bringUpLabIfNeeded(config);
        return await vitest(['run', '--project', 'cold', ...args]);
      case 'lab':
        return await lab(config, args);
      case 'sweep': {
        const target = await resolveTarget(config, { bringUpLab: false });
        const client = await openIncus(target);
        try {
          const result = await sweep(client, { dryRun: args.includes('--dry-run') });
          const verb = args.includes('--dry-run') ? 'would delete' : 'deleted';
          process.stdout.write(`${verb}: ${result.deleted.join(', ') || 'nothing'}\n`);
          for (const kept of result.kept) process.stdout.write(`kept ${kept.name}: ${kept.why}\n`);
        } finally {
          await client.close();
        }
        return 0;
      }
      case 'down':
        return await downKept(config);
      case 'sops':
        return await sops(args);
      case 'tls':
        return await tls(args);
      case 'bench':
        return await bench();
      case 'report':
        return await report(config, args);
      case 'selftest': {
        // The lab comes first: it installs the tools the unit tests use for real (nix, age, openssl).
        await bringUpLabIfNeeded(config);
        // An interrupted sabotage run may have left its extra instance, which would fail every run's memory guard.
        if (config.target === 'lab') await cleanUpSabotage(config.labDir, 'c6-project-over-guideline');
        const unit = await vitest(['run', '--project', 'unit']);
        if (unit !== 0) return unit;
        const e2e = await vitest(['run', '--project', 'e2e', ...args]);
        if (e2e !== 0) return e2e;
        return await vitest(['run', '--project', 'selftest']);
      }
      default:
        process.stderr.write(`accept: unknown command ${JSON.stringify(command)}\n\n${HELP}`);
        return 2;
    }
  } catch (error) {
    const kind = error instanceof HarnessError ? '' : ' (unexpected; this is a harness bug)';
    process.stderr.write(`✗ accept ${command}: ${redact(errorMessage(error))}${kind}\n`);
    if (!(error instanceof HarnessError) && error instanceof Error && error.stack) process.stderr.write(`${redact(error.stack)}\n`);
    return 1;
  }
}
