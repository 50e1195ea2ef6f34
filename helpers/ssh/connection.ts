/**
 * SSH to a host under test, directly or through the SOCKS5 proxy: one connection per host,
 * shell lines run as the login user (the harness logs in as root), files moved over SFTP.
 * The host key is always checked, against a pin or against what was learned earlier in the run.
 *
 * Failures to connect, log in or finish a command are HarnessErrors (the harness could not
 * find out); a command's non-zero exit is not an error here, it is the caller's to judge.
 */
import { createHash, randomBytes } from 'node:crypto';
import { constants as osConstants } from 'node:os';
import { posix } from 'node:path';
import ssh2 from 'ssh2';
import type { ClientChannel, SFTPWrapper, Stats } from 'ssh2';
import { dial, hostPort, parseSocksUrl } from '../common/dial.ts';
import { ConfigError, HarnessError, errorMessage } from '../common/errors.ts';
import type { CommandResult } from '../common/exec.ts';
import { hostChannel, hostCommandLine, type HostChannel, type HostExecOptions } from '../common/host.ts';
import type { Ledger } from '../common/ledger.ts';
import { formatDuration, log } from '../common/log.ts';
import { redact, registerSecret } from '../common/redact.ts';

export type SshSettingName = 'key' | 'hostKey' | 'socks';

const DEFAULT_SETTINGS: Record<SshSettingName, string> = {
  key: 'ACCEPT_SSH_KEY',
  hostKey: 'ACCEPT_SSH_HOST_KEY',
  socks: 'ACCEPT_SOCKS',
};

export type HostKeyPolicy =
  | { pinned: string }
  /** `known` maps "host:port" to "SHA256:…"; without it, a map shared by the whole process is used. */
  | { trustOnFirstUse: true; known?: Map<string, string> };

export interface SshConnectOptions {
  host: string;
  /** Default 22. */
  port?: number;
  username: string;
  /** Unencrypted private key, PEM or OpenSSH format. Registered for redaction, never printed. */
  privateKey: string;
  /** socks5://host:port (socks5h:// alike: the proxy resolves names). */
  socks?: string;
  hostKey: HostKeyPolicy;
  /** Budget for proxy, TCP, key exchange and login together. Default 20 s. */
  readyTimeoutMs?: number;
  ledger?: Ledger;
  /** For messages; default "host:port". */
  name?: string;
  /** Environment variable names cited in error messages. */
  settingNames?: Partial<Record<SshSettingName, string>>;
}

export interface SshHost extends HostChannel {
  /** "host:port" as dialled. */
  readonly target: string;
  /** The host key presented, "SHA256:…". */
  readonly hostKeyFingerprint: string;
  /** Ends the connection; safe to call more than once. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

export class SshError extends HarnessError {
  override readonly name = 'SshError';
  constructor(
    message: string,
    /** "host:port" */
    readonly target: string,
    /** The setting most likely at fault, when there is one. */
    readonly setting?: string,
    options?: { cause?: unknown },
  ) {
    super(redact(message), options);
  }
}

/** "SHA256:" + unpadded base64 of the key blob's SHA-256: what `ssh-keygen -lf` prints. */
export function sshFingerprint(publicKeyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(publicKeyBlob).digest('base64').replace(/=+$/, '')}`;
}

const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}=?$/;
const DEFAULT_READY_TIMEOUT_MS = 20_000;
const DEFAULT_EXEC_TIMEOUT_MS = 600_000;
/** OpenSSH refuses more than MaxSessions (default 10) channels per connection; stay under it. */
const MAX_CHANNELS = 8;

/** Keys learned by trust-on-first-use when the caller keeps no map: one process is one run. */
const learnedThisRun = new Map<string, string>();

/**
 * A command killed by a signal has no exit status; report it as a shell would (128 + n).
 * Signal numbers are this machine's, which match the target's on Linux. Unknown signal → -1.
 */
function signalExitCode(signal: string | undefined): number {
  if (!signal) return -1;
  const name = (signal.startsWith('SIG') ? signal : `SIG${signal}`) as keyof typeof osConstants.signals;
  const number = osConstants.signals[name];
  return typeof number === 'number' ? 128 + number : -1;
}

const remaining = (deadline: number): number => Math.max(1, deadline - Date.now());

function checkPrivateKey(privateKey: string, setting: string): void {
  const parsed = ssh2.utils.parseKey(privateKey);
  // Messages from parseKey are fixed texts, never key material; redact anyway.
  if (parsed instanceof Error) throw new ConfigError(setting, redact(`is not a usable private key: ${parsed.message}`));
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key?.isPrivateKey()) throw new ConfigError(setting, 'holds no private key (a public key?)');
}

/** Returns a verifier for ssh2 and what it saw, so a denial can be explained afterwards. */
function hostKeyVerifier(policy: HostKeyPolicy, target: string, setting: string) {
  const seen: { fingerprint?: string; denial?: string } = {};
  let expected: { fingerprint: string; source: string } | undefined;
  let known: Map<string, string> | undefined;
  if ('pinned' in policy) {
    const pin = policy.pinned.trim().replace(/=+$/, '');
    if (!FINGERPRINT.test(pin)) {
      throw new ConfigError(setting, 'must be a host key fingerprint as `ssh-keygen -lf` prints it: SHA256:<43 base64 characters>');
    }
    expected = { fingerprint: pin, source: setting };
  } else {
    known = policy.known ?? learnedThisRun;
    const learned = known.get(target);
    if (learned) expected = { fingerprint: learned, source: 'learned earlier in this run' };
  }
  const verify = (blob: Buffer): boolean => {
    const fingerprint = sshFingerprint(blob);
    seen.fingerprint = fingerprint;
    if (!expected) {
      known!.set(target, fingerprint);
      log.info(`learned host key ${fingerprint} for ${target} (trust on first use: later connections this run must present it)`);
      return true;
    }
    if (fingerprint === expected.fingerprint) return true;
    seen.denial = `host key of ${target} changed: expected ${expected.fingerprint} (${expected.source}), got ${fingerprint}`;
    return false;
  };
  return { verify, seen };
}

type Sftp = SFTPWrapper;

function sftpCall<T = void>(start: (callback: (error: Error | null | undefined, value?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    start((error, value) => (error ? reject(error) : resolve(value as T)));
  });
}

const NO_SUCH_FILE = 2;

function isNoSuchFile(error: unknown): boolean {
  return (error as { code?: unknown } | undefined)?.code === NO_SUCH_FILE;
}

async function statOrUndefined(sftp: Sftp, path: string): Promise<Stats | undefined> {
  try {
    return await sftpCall<Stats>((done) => sftp.stat(path, done));
  } catch (error) {
    if (isNoSuchFile(error)) return undefined;
    throw error;
  }
}

/** mkdir -p over SFTP: 0755, owned by the login user. */
async function ensureDirectory(sftp: Sftp, dir: string): Promise<void> {
  let current = '';
  for (const part of dir.split('/').filter(Boolean)) {
    current += `/${part}`;
    let stats = await statOrUndefined(sftp, current);
    if (!stats) {
      try {
        await sftpCall((done) => sftp.mkdir(current, { mode: 0o755 }, done));
        continue;
      } catch (error) {
        // Someone else may have made it meanwhile.
        stats = await statOrUndefined(sftp, current);
        if (!stats) throw error;
      }
    }
    if (!stats.isDirectory()) throw new Error(`${current} exists and is not a directory`);
  }
}

/**
 * Moves `from` over `to`. OpenSSH's posix-rename replaces atomically; plain SFTP v3 rename
 * refuses an existing target, so the fallback removes it first: for a moment there is no
 * file, but never a half-written one.
 */
async function replaceFile(sftp: Sftp, from: string, to: string): Promise<void> {
  let supported = true;
  await new Promise<void>((resolve, reject) => {
    try {
      sftp.ext_openssh_rename(from, to, (error) => (error ? reject(error) : resolve()));
    } catch {
      // ssh2 throws synchronously when the server did not offer the extension.
      supported = false;
      resolve();
    }
  });
  if (supported) return;
  try {
    await sftpCall((done) => sftp.rename(from, to, done));
  } catch (error) {
    if (!(await statOrUndefined(sftp, to))) throw error;
    await sftpCall((done) => sftp.unlink(to, done));
    await sftpCall((done) => sftp.rename(from, to, done));
  }
}

/** A tiny counting semaphore for channels. */
function limiter(max: number) {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async <T>(work: () => Promise<T>): Promise<T> => {
    if (active >= max) await new Promise<void>((resolve) => waiting.push(resolve));
    active++;
    try {
      return await work();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
}

/** Opens one SSH connection, checks the host key, logs in, and returns a HostChannel over it. */
export async function connectSsh(options: SshConnectOptions): Promise<SshHost> {
  const names: Record<SshSettingName, string> = {
    ...DEFAULT_SETTINGS,
    ...(Object.fromEntries(Object.entries(options.settingNames ?? {}).filter(([, name]) => name)) as Partial<Record<SshSettingName, string>>),
  };
  registerSecret(options.privateKey);
  const port = options.port ?? 22;
  const target = hostPort(options.host, port);
  const name = options.name ?? target;
  const login = `${options.username}@${target}`;
  checkPrivateKey(options.privateKey, names.key);
  const hostKey = hostKeyVerifier(options.hostKey, target, names.hostKey);

  const readyTimeoutMs = options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  const deadline = Date.now() + readyTimeoutMs;
  const sock = await dial({ host: options.host, port, socks: options.socks, socksSetting: names.socks, what: `SSH at ${target}`, timeoutMs: readyTimeoutMs });
  // Only after dialling: that is where a malformed proxy URL is reported, naming its setting.
  const via = options.socks ? ` through SOCKS5 proxy ${parseSocksUrl(options.socks, names.socks).label}` : '';

  const client = new ssh2.Client();
  let closed = false;
  let lastError: unknown;
  // Always listened to: ssh2 emits 'error' after a failed handshake too, and an unheard one would crash the run.
  client.on('error', (error) => {
    lastError = error;
  });
  client.on('close', () => {
    closed = true;
  });

  try {
    await new Promise<void>((resolve, reject) => {
      const settle = (outcome: () => void): void => {
        client.off('ready', onReady).off('error', onError).off('close', onClose);
        outcome();
      };
      const onReady = (): void => settle(resolve);
      const onError = (error: Error & { level?: string }): void =>
        settle(() => {
          if (hostKey.seen.denial) {
            reject(new SshError(hostKey.seen.denial, target, 'pinned' in options.hostKey ? names.hostKey : undefined, { cause: error }));
          } else if (error.level === 'client-authentication') {
            reject(new SshError(`authentication as ${login} was rejected: the key in ${names.key} was not accepted`, target, names.key, { cause: error }));
          } else if (error.level === 'client-timeout') {
            reject(
              new SshError(
                `timed out after ${formatDuration(readyTimeoutMs)} waiting for the SSH handshake and login with ${target}${via}; is it an SSH server?`,
                target,
                undefined,
                { cause: error },
              ),
            );
          } else {
            reject(new SshError(`SSH handshake with ${target}${via} failed: ${errorMessage(error)}`, target, undefined, { cause: error }));
          }
        });
      const onClose = (): void => settle(() => reject(new SshError(`${target}${via} closed the connection before login completed`, target)));
      client.on('ready', onReady).on('error', onError).on('close', onClose);
      client.connect({
        sock,
        username: options.username,
        privateKey: options.privateKey,
        readyTimeout: remaining(deadline),
        hostVerifier: (blob: Buffer) => hostKey.verify(blob),
        // One connection lives for the whole run; keepalives notice a dead path instead of hanging.
        keepaliveInterval: 15_000,
        keepaliveCountMax: 4,
      });
    });
  } catch (error) {
    client.end();
    sock.destroy();
    if (error instanceof HarnessError) throw error;
    throw new SshError(`could not start SSH to ${target}${via}: ${errorMessage(error)}`, target, undefined, { cause: error });
  }
  const hostKeyFingerprint = hostKey.seen.fingerprint!;

  const lostText = (): string => `the SSH connection to ${login} is closed${lastError ? ` (${errorMessage(lastError)})` : ''}`;
  const withChannel = limiter(MAX_CHANNELS);

  const openExec = (command: string): Promise<ClientChannel> =>
    new Promise((resolve, reject) => {
      if (closed) return reject(new SshError(lostText(), target));
      try {
        client.exec(command, (error, stream) => {
          if (error) return reject(error);
          // Listen at once: a quick command's exit status can arrive before the caller resumes.
          stream.on('exit', (code: number | null, signal?: string) => exits.set(stream, typeof code === 'number' ? code : signalExitCode(signal)));
          resolve(stream);
        });
      } catch (error) {
        reject(error);
      }
    });

  type Outcome = { kind: 'done' | 'timeout' | 'lost'; exitCode: number; stdout: string; stderr: string };
  const exits = new WeakMap<ClientChannel, number>();

  const collect = (stream: ClientChannel, timeoutMs: number): Promise<Outcome> =>
    new Promise((resolve) => {
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let exitCode: number | undefined;
      let settled = false;
      const finish = (kind: Outcome['kind']): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        client.off('close', onLost);
        resolve({ kind, exitCode: exitCode ?? -1, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
      };
      const onLost = (): void => finish('lost');
      stream.on('data', (chunk: Buffer) => out.push(chunk));
      stream.stderr.on('data', (chunk: Buffer) => err.push(chunk));
      stream.on('close', () => {
        exitCode = exits.get(stream);
        finish(exitCode === undefined && closed ? 'lost' : 'done');
      });
      stream.on('error', () => {});
      client.on('close', onLost);
      const timer = setTimeout(() => {
        // Ask for a kill (servers that know the signal request honour it), then drop the channel either way.
        try {
          stream.signal('KILL');
        } catch {}
        stream.close();
        finish('timeout');
      }, timeoutMs);
      // The command gets an empty stdin rather than one that never ends.
      stream.end();
    });

  /**
   * `/bin/sh -c` (or `-euc`) as the login user, with the harness's PATH set in the command line
   * (hostCommandLine), never the login shell's. Exit code: the command's status; 128 + n when
   * killed by signal n; -1 when the server sent neither. Timeout or a lost connection throws.
   */
  const exec = async (script: string, execOptions: HostExecOptions = {}): Promise<CommandResult> => {
    const timeoutMs = execOptions.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS;
    const purpose = execOptions.purpose ?? 'check';
    const command = hostCommandLine(script, execOptions.strict);
    const started = performance.now();
    const outcome = await withChannel(async () => {
      let stream: ClientChannel;
      try {
        stream = await openExec(command);
      } catch (error) {
        if (error instanceof HarnessError) throw error;
        throw new SshError(`could not start \`${script}\` on ${name}: ${closed ? lostText() : errorMessage(error)}`, target, undefined, { cause: error });
      }
      return collect(stream, timeoutMs);
    });
    const durationMs = performance.now() - started;
    const output = `${outcome.stdout}\n${outcome.stderr}`;
    if (outcome.kind === 'timeout') {
      options.ledger?.recordExec(script, -1, durationMs, `${purpose} (timed out)`, output);
      throw new SshError(`\`${script}\` on ${name} did not finish within ${formatDuration(timeoutMs)}; its SSH channel was closed`, target);
    }
    if (outcome.kind === 'lost') {
      options.ledger?.recordExec(script, -1, durationMs, `${purpose} (connection lost)`, output);
      throw new SshError(`\`${script}\` on ${name}: ${lostText()} before it finished`, target);
    }
    options.ledger?.recordExec(script, outcome.exitCode, durationMs, purpose, output);
    return { command: script, exitCode: outcome.exitCode, stdout: outcome.stdout, stderr: outcome.stderr };
  };

  let sftpSession: Promise<Sftp> | undefined;
  const sftp = (): Promise<Sftp> => {
    sftpSession ??= new Promise<Sftp>((resolve, reject) => {
      if (closed) return reject(new SshError(lostText(), target));
      client.sftp((error, session) => {
        if (error) {
          sftpSession = undefined;
          reject(
            new SshError(`could not start SFTP on ${name}: ${errorMessage(error)} (is the sftp subsystem enabled in sshd?)`, target, undefined, {
              cause: error,
            }),
          );
          return;
        }
        session.on('close', () => {
          sftpSession = undefined;
        });
        session.on('error', () => {});
        resolve(session);
      });
    });
    return sftpSession;
  };

  const pushFile: HostChannel['pushFile'] = async (path, content, pushOptions) => {
    if (!path.startsWith('/')) throw new SshError(`pushFile needs an absolute path; got ${path}`, target);
    await withChannel(async () => {
      const session = await sftp();
      const dir = posix.dirname(path);
      // A dot name in the same directory, so the final rename stays on one filesystem.
      const temp = posix.join(dir, `.${posix.basename(path)}.accept-${randomBytes(6).toString('hex')}`);
      let created = false;
      try {
        await ensureDirectory(session, dir);
        // Created 0600 whatever the final mode: nothing readable exists until it is whole.
        const handle = await sftpCall<Buffer>((done) => session.open(temp, 'wx', { mode: 0o600 }, done));
        created = true;
        try {
          await sftpCall((done) => session.write(handle, content, 0, content.length, 0, (error) => done(error)));
          // Explicit chmod: the mode given at open is subject to the server's umask.
          await sftpCall((done) => session.fchmod(handle, pushOptions.mode, done));
        } finally {
          await sftpCall((done) => session.close(handle, done)).catch(() => undefined);
        }
        await replaceFile(session, temp, path);
      } catch (error) {
        if (created) await sftpCall((done) => session.unlink(temp, done)).catch(() => undefined);
        throw new SshError(`could not place ${path} on ${name}: ${closed ? lostText() : errorMessage(error)}`, target, undefined, { cause: error });
      }
    });
    options.ledger?.recordPush(path, content, pushOptions.mode, pushOptions.purpose, pushOptions.secret);
  };

  const readFile: HostChannel['readFile'] = (path) =>
    withChannel(async () => {
      const session = await sftp();
      try {
        return await sftpCall<Buffer>((done) => session.readFile(path, done));
      } catch (error) {
        const why = isNoSuchFile(error) ? 'no such file' : closed ? lostText() : errorMessage(error);
        throw new SshError(`could not read ${path} on ${name}: ${why}`, target, undefined, { cause: error });
      }
    });

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      if (closed) return resolve();
      // A polite end first; a server that does not answer is cut off.
      const timer = setTimeout(() => sock.destroy(), 2_000);
      client.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      client.end();
    });
    return closing;
  };

  return {
    ...hostChannel({ name, transport: 'ssh', exec, pushFile, readFile }),
    target,
    hostKeyFingerprint,
    close,
    [Symbol.asyncDispose]: close,
  };
}
