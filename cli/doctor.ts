/**
 * `accept doctor`: a preflight of everything a run needs, one line per check with its fix.
 * Checks run in order and stop at the first blocking problem, since later checks would only
 * repeat it (no proxy, no Incus API); the rest are printed as not run. Warnings do not block.
 */
import { statfs } from 'node:fs/promises';
import { connect } from 'node:net';
import { parseSocksUrl } from '../helpers/common/dial.ts';
import { loadConfig, type Config } from '../helpers/common/config.ts';
import { ConfigError, HarnessError, errorMessage } from '../helpers/common/errors.ts';
import { exec } from '../helpers/common/exec.ts';
import { formatDuration } from '../helpers/common/log.ts';
import { redact } from '../helpers/common/redact.ts';
import type { IncusClient } from '../helpers/incus/client.ts';
import { resolveIncusBacked } from '../machines/index.ts';
import { incusTargetFiles, openIncus, readSettingFile, resolveSshTarget, type ResolvedTarget, type SshTarget } from '../machines/resolve.ts';
import { openSshHost } from '../machines/ssh-host.ts';
import { labStatus } from './lab.ts';

export type Status = 'ok' | 'warn' | 'fail' | 'skip';

export interface Outcome {
  status: Status;
  detail: string;
  /** What to do about it; shown for warn and fail. */
  fix?: string;
}

export interface Check {
  name: string;
  run: () => Promise<Outcome>;
}

export interface Line extends Omit<Outcome, 'status'> {
  name: string;
  status: Status | 'not-run';
}

// ---------------------------------------------------------------------------------------
// Pure parts
// ---------------------------------------------------------------------------------------

const MARK: Record<Line['status'], string> = { ok: '✓', warn: '!', fail: '✗', skip: '-', 'not-run': '·' };
const NAME_WIDTH = 16;

export function formatLine(line: Line): string {
  const fix = line.fix && (line.status === 'fail' || line.status === 'warn') ? ` → fix: ${line.fix}` : '';
  return redact(`${MARK[line.status]} ${line.name.padEnd(NAME_WIDTH)} ${line.detail}${fix}`);
}

/** Runs checks in order; after the first failure the rest are reported, not run. */
export async function runChecks(checks: readonly Check[], onLine: (line: Line) => void = () => undefined): Promise<{ lines: Line[]; blockedBy?: string }> {
  const lines: Line[] = [];
  let blockedBy: string | undefined;
  for (const check of checks) {
    let line: Line;
    if (blockedBy) {
      line = { name: check.name, status: 'not-run', detail: `not run: blocked by ${blockedBy}` };
    } else {
      const outcome = await check.run().catch(
        (error: unknown): Outcome => ({
          status: 'fail',
          detail: errorMessage(error).split('\n')[0]!,
          fix: error instanceof HarnessError ? undefined : 'this is a harness bug; report it with the output above',
        }),
      );
      line = { name: check.name, ...outcome };
      if (outcome.status === 'fail') blockedBy = check.name;
    }
    lines.push(line);
    onLine(line);
  }
  return { lines, blockedBy };
}

export const DISK_WARN_BYTES = 5e9;

export function diskOutcome(path: string, freeBytes: number): Outcome {
  const free = `${(freeBytes / 1e9).toFixed(1)} GB free on ${path}`;
  return freeBytes < DISK_WARN_BYTES
    ? { status: 'warn', detail: `only ${free} (under 5 GB)`, fix: `free space on ${path}: the lab's images, Incus storage and throwaways live there` }
    : { status: 'ok', detail: free };
}

/** SOCKS5 server choice for "no authentication" (RFC 1928): version 5, method 0. */
export function socksGreetingAccepted(reply: Buffer): boolean {
  return reply.length >= 2 && reply[0] === 0x05 && reply[1] === 0x00;
}

export interface ToolProbe {
  tool: string;
  version?: string;
  package: string;
}

export function toolsOutcome(probes: readonly ToolProbe[]): Outcome {
  const missing = probes.filter((probe) => !probe.version);
  const found = probes.filter((probe) => probe.version).map((probe) => `${probe.tool} ${probe.version}`);
  if (missing.length) {
    return {
      status: 'fail',
      detail: `missing: ${missing.map((probe) => probe.tool).join(', ')}${found.length ? ` (found ${found.join(', ')})` : ''}`,
      fix: `apt-get install -y ${missing.map((probe) => probe.package).join(' ')}`,
    };
  }
  return { status: 'ok', detail: found.join(', ') };
}

/** The first version-looking word of a `--version` output. */
export function versionOf(output: string): string | undefined {
  return /\b(v?\d+\.\d+(?:\.\d+)?(?:[-+~][\w.]+)?)\b/.exec(output)?.[1];
}

export function summaryLine(lines: readonly Line[], blockedBy: string | undefined, ms: number): string {
  const count = (status: Line['status']) => lines.filter((line) => line.status === status).length;
  const time = formatDuration(ms);
  if (blockedBy) return `doctor: blocked by ${blockedBy}; ${count('not-run')} check(s) not run (${time})`;
  const warnings = count('warn');
  return `doctor: ready to run, ${count('ok')} check(s) passed${warnings ? `, ${warnings} warning(s)` : ''}${count('skip') ? `, ${count('skip')} not applicable` : ''} (${time})`;
}

// ---------------------------------------------------------------------------------------
// The checks
// ---------------------------------------------------------------------------------------

const TIMEOUT_MS = 2000;
const LAB_UP = '`npm run lab -- up` (as root)';

export async function socksGreeting(url: string): Promise<Outcome> {
  // The dialer's own reading of the URL: the doctor asks the proxy the harness will use.
  const { host, port } = parseSocksUrl(url);
  return new Promise((resolvePromise) => {
    const socket = connect({ host, port });
    const done = (outcome: Outcome) => {
      socket.destroy();
      resolvePromise(outcome);
    };
    socket.setTimeout(TIMEOUT_MS, () => done({ status: 'fail', detail: `${url}: no answer within ${formatDuration(TIMEOUT_MS)}` }));
    socket.once('error', (error: NodeJS.ErrnoException) => done({ status: 'fail', detail: `${url}: ${error.code ?? error.message}` }));
    socket.once('connect', () => socket.write(Buffer.from([0x05, 0x01, 0x00])));
    socket.once('data', (reply) =>
      done(
        socksGreetingAccepted(reply)
          ? { status: 'ok', detail: `${url} answers SOCKS5 (no authentication)` }
          : { status: 'fail', detail: `${url} answered, but not as a SOCKS5 proxy without authentication` },
      ),
    );
  });
}

async function probeTool(tool: string, pkg: string): Promise<ToolProbe> {
  const result = await exec(tool, ['--version'], { timeoutMs: TIMEOUT_MS }).catch(() => undefined);
  return { tool, package: pkg, version: result?.exitCode === 0 ? (versionOf(`${result.stdout} ${result.stderr}`) ?? 'present') : undefined };
}

/** The fix for a setting that names a file the run cannot read: that setting's path. */
export function fileFix(setting: string, file: string): string {
  return `fix the path in ${setting}: ${file} cannot be read (docs/configuration.md)`;
}

/**
 * The fix for a failure a setting is blamed for (a ConfigError's variable, or the `setting` a
 * dial or Incus error names). A file that cannot be read: the path its setting gives, unless the
 * lab made that file itself (then the lab is not fully up). Otherwise a setting the operator chose
 * is the likely culprit; with the lab and no such setting, the lab is.
 */
export function fixFor(error: unknown, kind: Config['target'], env: NodeJS.ProcessEnv): string | undefined {
  const setting = error instanceof ConfigError ? error.variable : (error as { setting?: string } | undefined)?.setting;
  const chosen = setting !== undefined && Boolean(env[setting]?.trim());
  const orLab = kind === 'lab' ? ", or unset it to use the lab's" : '';
  if (error instanceof ConfigError && error.file !== undefined) {
    if (chosen || kind !== 'lab') return `${fileFix(error.variable, error.file)}${orLab}`;
    return `${LAB_UP}: the lab's own ${error.file} (${error.variable} unset) cannot be read`;
  }
  if (chosen) return `check ${setting} (docs/configuration.md)${orLab}`;
  if (kind === 'lab') return LAB_UP;
  return setting ? `check ${setting} (docs/configuration.md)` : undefined;
}

/**
 * The fix for an image alias missing from the project: the alias or the project the operator
 * chose, where they chose one; with the lab's own alias and project, the lab is not up.
 */
export function imageFix(kind: Config['target'], env: NodeJS.ProcessEnv): string {
  const lab = kind === 'lab' ? " (unset, the lab's is used)" : '';
  if (env.ACCEPT_INCUS_IMAGE?.trim()) return `import the blank image under that alias, or correct ACCEPT_INCUS_IMAGE${lab}`;
  if (kind === 'lab' && env.ACCEPT_INCUS_PROJECT?.trim()) return `import the blank image into that project, or correct ACCEPT_INCUS_PROJECT${lab}`;
  return kind === 'lab' ? LAB_UP : 'import the blank image under that alias, or set ACCEPT_INCUS_IMAGE';
}

function connectIncus(target: ResolvedTarget): Promise<IncusClient> {
  return openIncus(target, { requestTimeoutMs: TIMEOUT_MS });
}

/** Files the target names that the run reads: present and readable, contents never shown. */
async function readableFiles(files: readonly [string, string | undefined][]): Promise<void> {
  for (const [variable, file] of files) if (file) await readSettingFile(file, variable);
}

function targetFiles(target: ResolvedTarget | SshTarget): [string, string | undefined][] {
  const common: [string, string | undefined][] = [
    ['ACCEPT_AGE_KEY_FILE', target.ageKeyFile],
    ['ACCEPT_TLS_CA_FILE', target.tlsCaFile],
  ];
  if (target.kind === 'ssh') return [['ACCEPT_SSH_KEY', target.ssh.keyFile], ...common];
  // The same list the incus target checks when it resolves (a file from ACCEPT_INCUS_CERT_DIR is named by it).
  return incusTargetFiles(target).map((file) => [file.variable, file.path]);
}

export function doctorChecks(env: NodeJS.ProcessEnv = process.env): Check[] {
  let config: Config | undefined;
  let target: ResolvedTarget | SshTarget | undefined;
  let client: IncusClient | undefined;
  const needConfig = () => config!;
  const skip = (detail: string): Outcome => ({ status: 'skip', detail });

  const checks: Check[] = [
    {
      name: 'configuration',
      run: async () => {
        try {
          config = loadConfig(env);
          const set = Object.keys(env).filter((name) => name.startsWith('ACCEPT_') && env[name]?.trim()).length;
          if (config.target === 'ssh') {
            target = resolveSshTarget(config);
            await readableFiles(targetFiles(target));
          } else if (config.target === 'incus') {
            target = await resolveIncusBacked(config);
            await readableFiles(targetFiles(target));
          }
          return { status: 'ok', detail: `valid; target ${config.target}, ${set} ACCEPT_* variable(s) set` };
        } catch (error) {
          // A file a setting names that cannot be read wants its path fixed, not its value "corrected".
          const fix =
            error instanceof ConfigError
              ? error.file !== undefined
                ? fileFix(error.variable, error.file)
                : `correct ${error.variable} (docs/configuration.md lists every variable)`
              : undefined;
          return { status: 'fail', detail: errorMessage(error), fix };
        }
      },
    },
    {
      name: 'lab',
      run: async () => {
        if (needConfig().target !== 'lab') return skip(`not the lab target (ACCEPT_TARGET=${needConfig().target})`);
        const lines = await labStatus(needConfig().lab.dir);
        const bad = lines.filter((line) => !line.ok);
        if (bad.length)
          return { status: 'fail', detail: `${needConfig().lab.dir}: ${bad.map((line) => `${line.what}: ${line.detail}`).join('; ')}`, fix: LAB_UP };
        try {
          target = await resolveIncusBacked(needConfig());
          await readableFiles(targetFiles(target));
        } catch (error) {
          // The lab is up: a file or setting the operator chose in place of the lab's is at fault.
          return { status: 'fail', detail: errorMessage(error), fix: fixFor(error, 'lab', env) };
        }
        const instances = lines.find((line) => line.what === 'instances')?.detail ?? '';
        return {
          status: 'ok',
          detail: `up in ${needConfig().lab.dir}: ${lines
            .map((line) => line.what)
            .filter((what) => what !== 'instances' && what !== 'ready')
            .join(', ')} ready; instances: ${instances}`,
        };
      },
    },
    {
      name: 'proxy',
      run: async () => {
        const outcome = await socksGreeting(target!.socks!);
        if (outcome.status !== 'fail') return outcome;
        if (needConfig().socks)
          return {
            ...outcome,
            fix: `start the proxy ACCEPT_SOCKS names, or fix ACCEPT_SOCKS${needConfig().target === 'lab' ? " (unset, the lab's own is used)" : ''}`,
          };
        return {
          ...outcome,
          fix: needConfig().target === 'lab' ? LAB_UP : 'start the SOCKS5 proxy that reaches the host on 127.0.0.1:1055, or set ACCEPT_SOCKS',
        };
      },
    },
    {
      name: 'Incus API',
      run: async () => {
        if (target!.kind === 'ssh') return skip('the ssh target has no Incus API');
        try {
          client = await connectIncus(target!);
        } catch (error) {
          return { status: 'fail', detail: errorMessage(error).split('\n')[0]!, fix: fixFor(error, needConfig().target, env) };
        }
        const server = await client.server();
        return {
          status: 'ok',
          detail: `${client.url} trusts this client (Incus ${server.environment?.server_version ?? '?'}); project ${client.project} present`,
        };
      },
    },
    {
      name: 'image',
      run: async () => {
        if (target!.kind === 'ssh') return skip('the ssh target has no Incus API');
        const alias = target!.incus.image;
        try {
          if (await client!.imageAliasExists(alias)) return { status: 'ok', detail: `${alias} present in project ${target!.incus.project}` };
        } finally {
          await client!.close();
        }
        return {
          status: 'fail',
          detail: `no image alias ${alias} in project ${target!.incus.project}`,
          fix: imageFix(needConfig().target, env),
        };
      },
    },
    {
      name: 'SSH',
      run: async () => {
        if (target!.kind !== 'ssh') return skip('only for ACCEPT_TARGET=ssh');
        const ssh = target!;
        try {
          const host = await openSshHost(ssh, { readyTimeoutMs: TIMEOUT_MS });
          const key = host.hostKeyFingerprint;
          await host.close();
          return { status: 'ok', detail: `${ssh.ssh.user}@${ssh.ssh.host}:${ssh.ssh.port} logged in through ${ssh.socks}; host key ${key}` };
        } catch (error) {
          return {
            status: 'fail',
            detail: errorMessage(error).split('\n')[0]!,
            fix: fixFor(error, 'ssh', env) ?? 'check ACCEPT_SSH_HOST, ACCEPT_SSH_KEY and ACCEPT_SSH_HOST_KEY',
          };
        }
      },
    },
    {
      name: 'operator tools',
      run: async () => toolsOutcome(await Promise.all([probeTool('nix', 'nix-bin'), probeTool('git', 'git'), probeTool('age', 'age')])),
    },
    {
      name: 'disk',
      run: async () => {
        const path = '/var/lib';
        const stats = await statfs(path);
        return diskOutcome(path, stats.bavail * stats.bsize);
      },
    },
  ];
  return checks;
}

export async function doctor(args: string[]): Promise<number> {
  if (args.length) {
    process.stderr.write(`accept doctor: takes no arguments; got ${args.join(' ')}\n`);
    return 2;
  }
  const started = performance.now();
  const { lines, blockedBy } = await runChecks(doctorChecks(), (line) => process.stdout.write(`${formatLine(line)}\n`));
  process.stdout.write(`${summaryLine(lines, blockedBy, performance.now() - started)}\n`);
  return blockedBy ? 1 : 0;
}
