/** `accept`: the harness's command line. Every command prints what it does and how long it took. */
import { spawn } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, type Config } from '../helpers/common/config.ts';
import { HarnessError, errorMessage } from '../helpers/common/errors.ts';
import { redact } from '../helpers/common/redact.ts';
import { ATTEST_HELP, DOCTOR_HELP, REPORT_HELP, TOOLS_HELP, WATCH_HELP } from './help.ts';
import { bringUpLabIfNeeded, bringUpWorkers, clearLabLeftovers, installLabTools, lab } from './lab.ts';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

const HELP = `accept — cc-ci's Definition of Done as executable specs

usage: accept <command> [options]

commands:
  run [VITEST_ARGS…]       bring the lab up if the target is the lab, run every spec against a
                           brand-new throwaway (vitest --project cold), print the DoD summary;
                           exits non-zero if any item is not PASS            (npm run accept)
${WATCH_HELP}  lab up|down|status       manage the embedded lab                           (npm run lab -- …)
      up                   install Incus and tools (needs root once), start incusd, the SOCKS5
                           proxy on 127.0.0.1:1055, the mTLS API on 127.0.0.1:8443 and the git
                           server; build or reuse the blank image; generate the repos. Idempotent.
      down [--purge]       remove everything the lab created and nothing else; --purge also
                           drops the cached image tarballs
      status               one line per lab component
  down                     delete the throwaway kept by ACCEPT_KEEP=always, and forget it
  sweep [--dry-run]        delete expired throwaways carrying this harness's labels, nothing else
  selftest                 the harness's own tests: lab up with the unit tests beside it, then the
                           end-to-end scenarios and the sabotage matrix
                           (reports/sabotage-matrix.md) side by side, at most
                           ACCEPT_SELFTEST_WORKERS (4) cold runs at once       (npm test)
  runbook FILE             print the steps a cold run would run from an install document
                           (marked blocks or <!-- runbook --> annotations), without running them
  bench                    measure lab up, provisioning, runbook, specs, teardown and a whole cold
                           run, side by side, and print figures and ratios   (npm run bench)
  bench leak               the leak probe alone on a generated history (git only, no lab): every
                           form beside verbatim only and git grep -F      (npm run bench -- leak)
${REPORT_HELP}${ATTEST_HELP}${DOCTOR_HELP}${TOOLS_HELP}  help                     this text

Configuration is by ACCEPT_* environment variables; see docs/configuration.md. With none set,
the target is the embedded lab.

examples:
  npm ci && npm run accept
  ACCEPT_KEEP=always npm run accept && npx accept watch acceptance/c2-cert-in-git.spec.ts
  npx vitest run --project warm acceptance/c2-cert-in-git.spec.ts   # one item, kept host
  ACCEPT_KEEP=always npm run accept                                 # keep the throwaway for warm runs
`;

async function printRunbook(args: string[]): Promise<number> {
  const [file, ...extra] = args;
  if (!file || extra.length) {
    process.stderr.write('accept runbook: expected one install document, such as docs/install.md\n');
    return 2;
  }
  const { readFile } = await import('node:fs/promises');
  const { describeStep, parseRunbook } = await import('../helpers/runbook/index.ts');
  const text = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
    throw new HarnessError(`accept runbook: cannot read ${file}: ${error.code ?? error.message}`);
  });
  const steps = parseRunbook(text, file);
  process.stdout.write(`${steps.length} steps a cold run would run from ${file}, in order (nothing is run):\n`);
  for (const step of steps) {
    const [first, ...rest] = describeStep(step).split('\n');
    process.stdout.write(
      `${step.index}. ${file}:${step.line} ${step.kind === 'sh' ? 'as root with sh -eu' : 'provision-key'}:\n     ${first}\n${rest.map((line) => `     ${line}\n`).join('')}`,
    );
  }
  return 0;
}

/**
 * Vitest in a child process, resolving with its exit code. With `hold`, its output (stdout and
 * stderr, in order) is kept and returned at its end instead of shown.
 */
function vitest(args: string[], hold = false): Promise<{ code: number; output: string }> {
  return new Promise((resolvePromise) => {
    const env = hold && process.stdout.isTTY ? { ...process.env, FORCE_COLOR: '1' } : process.env;
    const child = spawn(process.execPath, [join(REPO_ROOT, 'node_modules/vitest/vitest.mjs'), ...args], {
      cwd: REPO_ROOT,
      stdio: hold ? ['ignore', 'pipe', 'pipe'] : 'inherit',
      env,
    });
    const chunks: Buffer[] = [];
    child.stdout?.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => chunks.push(chunk));
    // The child gets terminal signals itself and we pass on a SIGTERM. A shown child is all this
    // process waits on, so a Ctrl-C is the child's to handle; a held one runs beside other work
    // (the lab bring-up), which a Ctrl-C must still stop.
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    const ignore = () => undefined;
    process.on('SIGTERM', forward);
    if (!hold) process.on('SIGINT', ignore);
    child.on('close', (code, signal) => {
      process.off('SIGTERM', forward);
      process.off('SIGINT', ignore);
      resolvePromise({ code: code ?? (signal === 'SIGINT' ? 130 : 1), output: Buffer.concat(chunks).toString('utf8') });
    });
  });
}

/** Deletes the kept throwaway, reached with the Incus settings in force now, and forgets it. */
async function downKept(config: Config): Promise<number> {
  const [{ resolveIncusBacked }, { forgetKept, keptFile, readKept }, { isOurs }, { openIncus }] = await Promise.all([
    import('../machines/index.ts'),
    import('../machines/kept.ts'),
    import('../machines/labels.ts'),
    import('../machines/resolve.ts'),
  ]);
  const file = keptFile(config.stateDir);
  const kept = await readKept(config.stateDir);
  if (!kept) {
    process.stdout.write(`no kept throwaway recorded in ${file}\n`);
    return 0;
  }
  const target = await resolveIncusBacked(config);
  if (target.incus.url !== kept.server) {
    throw new HarnessError(
      `${file} records ${kept.host.name} on ${kept.server}, but the Incus API in force is ${target.incus.url}: set ACCEPT_INCUS_URL (and its certs) to that server, or remove ${file} yourself`,
    );
  }
  const client = await openIncus({ ...target, incus: { ...target.incus, project: kept.host.project } });
  try {
    const instance = await client.getInstance(kept.host.name);
    if (instance && !isOurs(instance, kept.runId)) {
      throw new HarnessError(`${kept.host.name} in ${kept.host.project} does not carry this harness's labels for run ${kept.runId}; not touching it`);
    }
    if (instance) await client.deleteInstance(kept.host.name);
    process.stdout.write(`${instance ? 'deleted' : 'already gone:'} ${kept.host.name}\n`);
  } finally {
    await client.close();
  }
  await forgetKept(config.stateDir);
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  // `accept <command> --help` explains rather than runs (selftest, run and bench take minutes).
  if (!command || command === 'help' || command === '--help' || command === '-h' || (command !== 'run' && (args.includes('--help') || args.includes('-h')))) {
    process.stdout.write(HELP);
    return command ? 0 : 2;
  }
  try {
    // The doctor reports a bad configuration as one of its checks, so it loads it itself.
    if (command === 'doctor') return await (await import('./doctor.ts')).doctor(args);
    // A dry run of a document: no configuration, no host.
    if (command === 'runbook') return await printRunbook(args);
    // Offline, on any machine: the configuration only names the default evidence directory.
    if (command === 'attest' || command === 'verify') return await (await import('./attest.ts'))[command](args);
    const config = loadConfig();
    switch (command) {
      case 'run':
        // The cold run's global setup brings the lab up (where the target is the lab): once per run.
        return (await vitest(['run', '--project', 'cold', ...args])).code;
      case 'lab':
        return await lab(config, args, HELP);
      case 'sweep': {
        const [{ resolveIncusBacked }, { openIncus }, { sweep }] = await Promise.all([
          import('../machines/index.ts'),
          import('../machines/resolve.ts'),
          import('../machines/sweep.ts'),
        ]);
        const target = await resolveIncusBacked(config);
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
      case 'watch':
        return await (await import('./watch.ts')).watch(config, args);
      case 'sops':
        return await (await import('./tools.ts')).sops(args);
      case 'tls':
        return await (await import('./tools.ts')).tls(args);
      case 'bench':
        return await (await import('./bench.ts')).bench(args);
      case 'report':
        return await (await import('./report.ts')).report(config, args);
      case 'selftest': {
        // The lab's packages come first: the unit tests use nix, age and openssl for real. They need
        // nothing else of the lab, so they run while the rest comes up (on a new machine, minutes of
        // building the image), their output held back so that the two do not interleave.
        await installLabTools(config);
        process.stderr.write('→ Unit tests, beside the lab bring-up (their output follows it)\n');
        const unitRun = vitest(['run', '--project', 'unit'], true);
        let unit: { code: number; output: string };
        try {
          await bringUpLabIfNeeded(config);
          await bringUpWorkers(config);
          await clearLabLeftovers(config);
        } finally {
          unit = await unitRun;
          process.stdout.write(unit.output);
          if (unit.code !== 0) process.stderr.write(`✗ unit tests exited ${unit.code}\n`);
        }
        if (unit.code !== 0) return unit.code;
        // One invocation: the scenarios and the matrix rows share the lab's worker projects.
        return (await vitest(['run', '--project', 'e2e', '--project', 'selftest', ...args])).code;
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
