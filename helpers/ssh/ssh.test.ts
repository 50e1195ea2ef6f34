/**
 * Against a fake SSH server built from ssh2's own Server: commands run locally with sh, and a
 * small SFTP server maps requests onto this machine's filesystem. A front TCP listener hands
 * each connection to one of two servers, so the "same" host:port can change its host key.
 * The shared fake SOCKS5 proxy proves the proxy path.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as fs from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import type { Attributes, Connection, ParsedKey, SFTPWrapper } from 'ssh2';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DialError } from '../common/dial.ts';
import { HarnessError } from '../common/errors.ts';
import { CommandNotStartedError, HOST_PATH } from '../common/host.ts';
import { startFakeSocks, type FakeSocks } from '../common/testing/fake-socks.ts';
import { Ledger } from '../common/ledger.ts';
import { log } from '../common/log.ts';
import { connectSsh, sshFingerprint, SshError, type SshConnectOptions, type SshHost } from './index.ts';
import { rejectionOf } from '../common/testing/rejection.ts';

const { Server, utils } = ssh2;
const STATUS = utils.sftp.STATUS_CODE;

interface KeyPair {
  private: string;
  /** As ssh-keygen -lf prints it, or computed when ssh-keygen is missing. */
  fingerprint: string;
  parsed: ParsedKey;
}

const work = mkdtempSync(join(tmpdir(), 'accept-ssh-test-'));
const hasSshKeygen = spawnSync('ssh-keygen', ['-?'], { stdio: 'ignore' }).error === undefined;

function parse(privateKey: string): ParsedKey {
  const parsed = utils.parseKey(privateKey);
  if (parsed instanceof Error) throw parsed;
  return Array.isArray(parsed) ? parsed[0]! : parsed;
}

function makeKey(label: string): KeyPair {
  if (hasSshKeygen) {
    const file = join(work, label);
    spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', label, '-f', file], { stdio: 'ignore' });
    const listed = spawnSync('ssh-keygen', ['-lf', `${file}.pub`], { encoding: 'utf8' }).stdout.split(' ')[1]!;
    const privateKey = readFileSync(file, 'utf8');
    return { private: privateKey, fingerprint: listed, parsed: parse(privateKey) };
  }
  const pair = utils.generateKeyPairSync('ed25519', { comment: label });
  const parsed = parse(pair.private);
  return { private: pair.private, fingerprint: sshFingerprint(parsed.getPublicSSH()), parsed };
}

// ---------------------------------------------------------------------------------------
// Fake SSH server
// ---------------------------------------------------------------------------------------

function statusFor(error: unknown): number {
  const code = (error as { code?: string }).code;
  if (code === 'ENOENT') return STATUS.NO_SUCH_FILE;
  if (code === 'EACCES' || code === 'EPERM') return STATUS.PERMISSION_DENIED;
  return STATUS.FAILURE;
}

function attrsOf(stats: fs.Stats): Attributes {
  return {
    mode: stats.mode,
    uid: stats.uid,
    gid: stats.gid,
    size: stats.size,
    atime: Math.floor(stats.atimeMs / 1000),
    mtime: Math.floor(stats.mtimeMs / 1000),
  };
}

/** Just enough SFTP v3 for pushFile and readFile; every request is logged in `ops`. */
function serveSftp(sftp: SFTPWrapper, ops: string[]): void {
  const fds = new Map<number, number>();
  let next = 0;
  const fdOf = (handle: Buffer): number | undefined => fds.get(handle.readUInt32BE(0));
  const run = (reqId: number, op: string, work: () => void): void => {
    ops.push(op);
    try {
      work();
    } catch (error) {
      sftp.status(reqId, statusFor(error));
    }
  };
  const ok = (reqId: number): void => void sftp.status(reqId, STATUS.OK);
  const withFd = (reqId: number, handle: Buffer, work: (fd: number) => void): void => {
    const fd = fdOf(handle);
    if (fd === undefined) sftp.status(reqId, STATUS.FAILURE);
    else work(fd);
  };

  sftp.on('OPEN', (reqId, filename, flags, attrs) =>
    run(reqId, `OPEN ${filename} ${utils.sftp.flagsToString(flags)}`, () => {
      const fd = fs.openSync(filename, utils.sftp.flagsToString(flags) ?? 'r', attrs.mode ?? 0o644);
      const handle = Buffer.alloc(4);
      handle.writeUInt32BE(++next, 0);
      fds.set(next, fd);
      sftp.handle(reqId, handle);
    }),
  );
  sftp.on('WRITE', (reqId, handle, offset, data) =>
    run(reqId, 'WRITE', () =>
      withFd(reqId, handle, (fd) => {
        fs.writeSync(fd, data, 0, data.length, offset);
        return ok(reqId);
      }),
    ),
  );
  sftp.on('READ', (reqId, handle, offset, length) =>
    run(reqId, 'READ', () =>
      withFd(reqId, handle, (fd) => {
        const buffer = Buffer.alloc(length);
        const read = fs.readSync(fd, buffer, 0, length, offset);
        if (read === 0) sftp.status(reqId, STATUS.EOF);
        else sftp.data(reqId, buffer.subarray(0, read));
      }),
    ),
  );
  sftp.on('FSTAT', (reqId, handle) => run(reqId, 'FSTAT', () => withFd(reqId, handle, (fd) => sftp.attrs(reqId, attrsOf(fs.fstatSync(fd))))));
  sftp.on('FSETSTAT', (reqId, handle, attrs) =>
    run(reqId, `FSETSTAT ${attrs.mode?.toString(8)}`, () =>
      withFd(reqId, handle, (fd) => {
        if (attrs.mode !== undefined) fs.fchmodSync(fd, attrs.mode);
        ok(reqId);
      }),
    ),
  );
  sftp.on('CLOSE', (reqId, handle) =>
    run(reqId, 'CLOSE', () =>
      withFd(reqId, handle, (fd) => {
        fs.closeSync(fd);
        fds.delete(handle.readUInt32BE(0));
        ok(reqId);
      }),
    ),
  );
  const stat = (reqId: number, path: string): void => run(reqId, `STAT ${path}`, () => sftp.attrs(reqId, attrsOf(fs.statSync(path))));
  sftp.on('STAT', stat);
  sftp.on('LSTAT', stat);
  sftp.on('MKDIR', (reqId, path, attrs) =>
    run(reqId, `MKDIR ${path}`, () => {
      fs.mkdirSync(path, attrs.mode ?? 0o755);
      return ok(reqId);
    }),
  );
  sftp.on('REMOVE', (reqId, path) =>
    run(reqId, `REMOVE ${path}`, () => {
      fs.unlinkSync(path);
      return ok(reqId);
    }),
  );
  // Like OpenSSH's plain (v3) rename: it refuses to replace an existing file.
  sftp.on('RENAME', (reqId, from, to) =>
    run(reqId, `RENAME ${from} ${to}`, () => {
      if (fs.existsSync(to)) return void sftp.status(reqId, STATUS.FAILURE, 'target exists');
      fs.renameSync(from, to);
      ok(reqId);
    }),
  );
}

const LOGIN_PATH = '/nonexistent-login-path';

function serveExec(connection: Connection): void {
  connection.on('session', (acceptSession) => {
    const session = acceptSession();
    session.on('exec', (accept, _reject, info) => {
      const stream = accept();
      fake.commands.push(info.command);
      // Its own process group, so a timed-out command is killed with its children. The login
      // environment's PATH holds nothing, as a NixOS VM's would hold nothing useful: the command must set its own.
      const child = spawn('/bin/sh', ['-c', info.command], { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { ...process.env, PATH: LOGIN_PATH } });
      child.stdout.on('data', (chunk: Buffer) => stream.write(chunk));
      child.stderr.on('data', (chunk: Buffer) => stream.stderr.write(chunk));
      child.on('close', (code, signal) => {
        if (signal) stream.exit(signal, false, '');
        else stream.exit(code ?? 255);
        stream.end();
      });
      stream.on('close', () => {
        if (child.exitCode === null && child.signalCode === null) {
          try {
            process.kill(-child.pid!, 'SIGKILL');
          } catch {}
        }
      });
    });
    session.on('sftp', (accept) => serveSftp(accept(), fake.sftpOps));
  });
}

function sshServer(hostKey: KeyPair, clientKey: KeyPair): InstanceType<typeof Server> {
  const allowed = clientKey.parsed;
  return new Server({ hostKeys: [hostKey.private] }, (connection) => {
    connection.on('error', () => {});
    connection.on('authentication', (ctx) => {
      if (ctx.method === 'publickey' && ctx.username === 'root' && ctx.key.algo === allowed.type && ctx.key.data.equals(allowed.getPublicSSH())) {
        if (!ctx.signature || allowed.verify(ctx.blob!, ctx.signature, ctx.hashAlgo) === true) return ctx.accept();
      }
      ctx.reject(['publickey']);
    });
    connection.on('ready', () => serveExec(connection));
  });
}

interface Fake {
  port: number;
  connections: number;
  /** Which host key the front listener currently serves. */
  serve: 'a' | 'b';
  sftpOps: string[];
  /** Every exec request's command line, as the server received it. */
  commands: string[];
  close(): Promise<void>;
}

let fake: Fake;

async function startFake(hostA: KeyPair, hostB: KeyPair, client: KeyPair): Promise<Fake> {
  const servers = { a: sshServer(hostA, client), b: sshServer(hostB, client) };
  const sockets = new Set<net.Socket>();
  const front = net.createServer((socket) => {
    state.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    servers[state.serve].injectSocket(socket);
  });
  await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
  const state: Fake = {
    port: (front.address() as net.AddressInfo).port,
    connections: 0,
    serve: 'a',
    sftpOps: [],
    commands: [],
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => front.close(resolve));
    },
  };
  return state;
}

/** A port nothing listens on. */
async function deadPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

// ---------------------------------------------------------------------------------------

let hostA: KeyPair;
let hostB: KeyPair;
let clientKey: KeyPair;
let strangerKey: KeyPair;
let socks: FakeSocks;
let host: SshHost;
const ledger = new Ledger();

function options(extra: Partial<SshConnectOptions> = {}): SshConnectOptions {
  return {
    host: '127.0.0.1',
    port: fake.port,
    username: 'root',
    privateKey: clientKey.private,
    hostKey: { pinned: hostA.fingerprint },
    readyTimeoutMs: 3_000,
    ...extra,
  };
}

const rejection = (promise: Promise<unknown>): Promise<Error> => rejectionOf(promise, Error);

beforeAll(async () => {
  [hostA, hostB, clientKey, strangerKey] = ['host-a', 'host-b', 'client', 'stranger'].map(makeKey) as [KeyPair, KeyPair, KeyPair, KeyPair];
  [fake, socks] = await Promise.all([startFake(hostA, hostB, clientKey), startFakeSocks()]);
  host = await connectSsh(options({ ledger }));
});

afterAll(async () => {
  await host?.close();
  await Promise.all([fake?.close(), socks?.close()]);
  rmSync(work, { recursive: true, force: true });
});

describe('sshFingerprint', () => {
  it('matches ssh-keygen -lf', (ctx) => {
    ctx.skip(!hasSshKeygen, "no ssh-keygen on PATH (Debian's openssh-client) to compare against");
    expect(sshFingerprint(hostA.parsed.getPublicSSH())).toBe(hostA.fingerprint);
    expect(hostA.fingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });
});

describe('exec', () => {
  /** Prints its last line only if it runs to the end. */
  const SLOW = 'sleep 5; echo finished';

  it('returns output and exit codes, and never throws for a non-zero exit', async () => {
    const ok = await host.exec(`echo out; echo err >&2; printf 'it'"'"'s quoted'`);
    expect(ok).toEqual({ command: `echo out; echo err >&2; printf 'it'"'"'s quoted'`, exitCode: 0, stdout: "out\nit's quoted", stderr: 'err\n' });
    expect((await host.exec('exit 3')).exitCode).toBe(3);
    expect(host.hostKeyFingerprint).toBe(hostA.fingerprint);
  });

  it('sets the harness PATH in the command line itself, whatever the login PATH, with the script intact', async () => {
    const script = `printf '%s|' "$PATH" "$(command -v sha256sum)" 'a "quoted" '"'"'word'"'"'' "\\$HOME" '$(not run)'`;
    const result = await host.exec(script);
    expect(result).toMatchObject({ exitCode: 0, stdout: `${HOST_PATH}|${result.stdout.split('|')[1]}|a "quoted" 'word'|$HOME|$(not run)|` });
    expect(result.stdout.split('|')[1]).toMatch(/^\/(usr\/)?bin\/sha256sum$/);
    expect(fake.commands.at(-1)).toMatch(/^\/usr\/bin\/env PATH=\/run\/wrappers\/bin:\S+:\/bin \/bin\/sh -c '/);
    // The login shell's own PATH would find nothing.
    expect(LOGIN_PATH).not.toContain('/bin');
  });

  it('throws an ERROR naming the program and the host for exit 127', async () => {
    const error = await rejectionOf(host.exec('no-such-program-on-this-host --version'), CommandNotStartedError);
    expect(error).toBeInstanceOf(HarnessError);
    expect(error.message).toMatch(new RegExp(`^command not found on 127\\.0\\.0\\.1:${fake.port}: \`no-such-program-on-this-host\`, exit 127`));
  });

  it('reports a signal-terminated command as 128 + signal number', async () => {
    expect((await host.exec('kill -KILL $$')).exitCode).toBe(137);
  });

  it('runs strict lines with sh -eu', async () => {
    expect(await host.exec('false; echo after')).toMatchObject({ exitCode: 0, stdout: 'after\n' });
    expect(await host.exec('false; echo after', { strict: true })).toMatchObject({ exitCode: 1, stdout: '' });
    expect((await host.exec('echo "$NOT_SET_ANYWHERE"', { strict: true })).exitCode).not.toBe(0);
  });

  it('succeed and fail throw with the output', async () => {
    await expect(host.succeed('echo fine')).resolves.toMatchObject({ stdout: 'fine\n' });
    const error = await rejection(host.succeed('echo broken >&2; exit 4'));
    expect(error.message).toContain(`on 127.0.0.1:${fake.port}: \`echo broken >&2; exit 4\` was expected to succeed but exited 4`);
    expect(error.message).toContain('broken');
    await expect(host.fail('exit 1')).resolves.toMatchObject({ exitCode: 1 });
    await expect(host.fail('true')).rejects.toThrow(/was expected to fail/);
  });

  it('closes the channel and throws a HarnessError naming the command on timeout', async () => {
    const error = await rejection(host.exec(SLOW, { timeoutMs: 200, purpose: 'slow' }));
    expect(error).toBeInstanceOf(HarnessError);
    expect(error.message).toMatch(/`sleep 5; echo finished` on 127\.0\.0\.1:\d+ did not finish within 200 ms; its SSH channel was closed/);
    // Given up at the timeout, not when the command ended: its last line never came.
    const entry = ledger.entries.findLast((entry) => entry.kind === 'exec' && entry.command === SLOW);
    expect(entry).toMatchObject({ exitCode: -1, purpose: 'slow (timed out)' });
    expect(entry?.kind === 'exec' && entry.outputTail).not.toContain('finished');
    // The connection is still usable afterwards.
    expect((await host.exec('echo still')).stdout).toBe('still\n');
  });

  it('records commands in the ledger and runs everything over one connection', async () => {
    const before = fake.connections;
    await Promise.all(Array.from({ length: 12 }, (_, n) => host.exec(`echo ${n}`, { purpose: 'parallel' })));
    expect(fake.connections).toBe(before);
    const last = ledger.entries.filter((entry) => entry.kind === 'exec').at(-1);
    expect(last).toMatchObject({ kind: 'exec', exitCode: 0, purpose: 'parallel' });
    expect(ledger.entries.some((entry) => entry.kind === 'exec' && entry.command === SLOW && entry.exitCode === -1)).toBe(true);
  });
});

describe('files over SFTP', () => {
  it('pushes with the mode, creating parent directories, through a temp name and a rename', async () => {
    const path = join(work, 'pushed/deeper/secret.key');
    fake.sftpOps.length = 0;
    await host.pushFile(path, Buffer.from('key material\n'), { mode: 0o600, purpose: 'test key', secret: true });
    expect(readFileSync(path, 'utf8')).toBe('key material\n');
    expect(fs.statSync(path).mode & 0o777).toBe(0o600);
    expect(fs.statSync(join(work, 'pushed/deeper')).isDirectory()).toBe(true);
    const opened = fake.sftpOps.filter((op) => op.startsWith('OPEN'));
    expect(opened).toHaveLength(1);
    expect(opened[0]).toMatch(/^OPEN .*\/pushed\/deeper\/\.secret\.key\.accept-[0-9a-f]+ wx$/);
    expect(fake.sftpOps.some((op) => op.startsWith('RENAME') && op.endsWith(` ${path}`))).toBe(true);
    expect(fs.readdirSync(join(work, 'pushed/deeper'))).toEqual(['secret.key']);
    expect(ledger.entries.at(-1)).toMatchObject({ kind: 'push', path, mode: '0600', bytes: 13, secret: true, purpose: 'test key' });
  });

  it('replaces an existing file, never writing to it in place', async () => {
    const path = join(work, 'replace.conf');
    writeFileSync(path, 'old', { mode: 0o600 });
    fake.sftpOps.length = 0;
    await host.pushFile(path, Buffer.from('new contents'), { mode: 0o644, purpose: 'config', secret: false });
    expect(readFileSync(path, 'utf8')).toBe('new contents');
    expect(fs.statSync(path).mode & 0o777).toBe(0o644);
    expect(fake.sftpOps.filter((op) => op.startsWith(`OPEN ${path}`))).toEqual([]);
    // The fake offers no posix-rename, so this is the fallback: plain rename refused, remove, rename.
    expect(fake.sftpOps.filter((op) => /^(RENAME|REMOVE)/.test(op)).map((op) => op.split(' ')[0])).toEqual(['RENAME', 'REMOVE', 'RENAME']);
    expect(fs.readdirSync(work).filter((name) => name.includes('.accept-'))).toEqual([]);
  });

  it('reads a file back, and says which file is missing', async () => {
    const path = join(work, 'read-me');
    const bytes = Buffer.concat([Buffer.from('binary\0'), Buffer.alloc(70_000, 7)]);
    writeFileSync(path, bytes);
    expect((await host.readFile(path)).equals(bytes)).toBe(true);
    const error = await rejection(host.readFile(join(work, 'absent')));
    expect(error).toBeInstanceOf(HarnessError);
    expect(error.message).toContain(`could not read ${join(work, 'absent')} on 127.0.0.1:${fake.port}: no such file`);
  });
});

describe('host keys', () => {
  it('accepts the pinned key and rejects a different one, naming both and the setting', async () => {
    fake.serve = 'b';
    try {
      const error = await rejection(connectSsh(options()));
      expect(error).toBeInstanceOf(SshError);
      expect(error.message).toBe(`host key of 127.0.0.1:${fake.port} changed: expected ${hostA.fingerprint} (ACCEPT_SSH_HOST_KEY), got ${hostB.fingerprint}`);
      expect((error as SshError).setting).toBe('ACCEPT_SSH_HOST_KEY');
    } finally {
      fake.serve = 'a';
    }
  });

  it('rejects a pin that is not a fingerprint', async () => {
    await expect(connectSsh(options({ hostKey: { pinned: 'ab:cd' } }))).rejects.toThrow(/^ACCEPT_SSH_HOST_KEY: must be a host key fingerprint/);
  });

  it('learns a key on first use, logs it, and detects a change later', async () => {
    const known = new Map<string, string>();
    const info = vi.spyOn(log, 'info');
    try {
      const first = await connectSsh(options({ hostKey: { trustOnFirstUse: true, known } }));
      await first.close();
      expect(known.get(`127.0.0.1:${fake.port}`)).toBe(hostA.fingerprint);
      expect(info).toHaveBeenCalledWith(expect.stringContaining(`learned host key ${hostA.fingerprint} for 127.0.0.1:${fake.port}`));

      info.mockClear();
      const again = await connectSsh(options({ hostKey: { trustOnFirstUse: true, known } }));
      await again.close();
      expect(info).not.toHaveBeenCalled();

      fake.serve = 'b';
      const error = await rejection(connectSsh(options({ hostKey: { trustOnFirstUse: true, known } })));
      expect(error.message).toBe(
        `host key of 127.0.0.1:${fake.port} changed: expected ${hostA.fingerprint} (learned earlier in this run), got ${hostB.fingerprint}`,
      );
      expect(known.get(`127.0.0.1:${fake.port}`)).toBe(hostA.fingerprint);
    } finally {
      fake.serve = 'a';
      info.mockRestore();
    }
  });
});

describe('connection failures', () => {
  it('says the key was not accepted, never printing it', async () => {
    const error = await rejection(connectSsh(options({ privateKey: strangerKey.private })));
    expect(error).toBeInstanceOf(SshError);
    expect(error.message).toBe(`authentication as root@127.0.0.1:${fake.port} was rejected: the key in ACCEPT_SSH_KEY was not accepted`);
    expect((error as SshError).setting).toBe('ACCEPT_SSH_KEY');
  });

  it('rejects something that is not a private key before dialling', async () => {
    const error = await rejection(connectSsh(options({ privateKey: 'garbage where a key should be', settingNames: { key: 'MY_KEY' } })));
    expect(error.message).toMatch(/^MY_KEY: is not a usable private key/);
  });

  it('names host:port when the port refuses', async () => {
    const port = await deadPort();
    const error = await rejection(connectSsh(options({ port })));
    expect(error).toBeInstanceOf(HarnessError);
    expect(error.message).toBe(
      `could not reach SSH at 127.0.0.1:${port}: it refused the connection (ECONNREFUSED); is the service running and the port right?`,
    );
    expect(error).toBeInstanceOf(DialError);
    expect((error as DialError).transient).toBe(true);
  });

  it('times out on something that accepts but never speaks SSH', async () => {
    const silent = net.createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as net.AddressInfo;
    try {
      const error = await rejection(connectSsh(options({ port, readyTimeoutMs: 300 })));
      expect(error.message).toMatch(new RegExp(`^timed out after 300 ms waiting for the SSH handshake and login with 127\\.0\\.0\\.1:${port}`));
    } finally {
      silent.close();
    }
  });
});

describe('through SOCKS5', () => {
  it('connects through the proxy', async () => {
    const before = socks.destinations.length;
    const proxied = await connectSsh(options({ socks: `socks5://127.0.0.1:${socks.port}` }));
    try {
      expect((await proxied.exec('echo via proxy')).stdout).toBe('via proxy\n');
      expect(proxied.hostKeyFingerprint).toBe(hostA.fingerprint);
    } finally {
      await proxied.close();
      await proxied.close();
    }
    expect(socks.destinations.slice(before)).toEqual([`127.0.0.1:${fake.port}`]);
    await expect(proxied.exec('true')).rejects.toThrow(/the SSH connection to root@127\.0\.0\.1:\d+ is closed/);
  });

  it('names the proxy and ACCEPT_SOCKS when the proxy is down', async () => {
    const port = await deadPort();
    const error = await rejection(connectSsh(options({ socks: `socks5://127.0.0.1:${port}` })));
    expect(error.message).toBe(
      `could not reach SSH at 127.0.0.1:${fake.port} through SOCKS5 proxy socks5://127.0.0.1:${port} (ACCEPT_SOCKS): the proxy refused the connection (ECONNREFUSED); is it running?`,
    );
    expect((error as DialError).setting).toBe('ACCEPT_SOCKS');
  });

  it('names the target when the proxy cannot reach it', async () => {
    const port = await deadPort();
    const error = await rejection(connectSsh(options({ port, socks: `socks5://127.0.0.1:${socks.port}` })));
    expect(error.message).toBe(
      `could not reach SSH at 127.0.0.1:${port} through SOCKS5 proxy socks5://127.0.0.1:${socks.port} (ACCEPT_SOCKS): ` +
        'the proxy could not connect to the target (SOCKS reply 5, connection refused by the target)',
    );
  });

  it('closes through Symbol.asyncDispose', async () => {
    const proxied = await connectSsh(options({ socks: `socks5://127.0.0.1:${socks.port}` }));
    await proxied[Symbol.asyncDispose]();
    await expect(proxied.readFile('/etc/hostname')).rejects.toThrow(/is closed/);
  });
});
