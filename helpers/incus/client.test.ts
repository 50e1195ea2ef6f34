import { X509Certificate, randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { succeed } from '../common/exec.ts';
import { DialError } from '../common/dial.ts';
import { startFakeSocks, type FakeSocks } from '../common/testing/fake-socks.ts';
import { rejectionOf } from '../common/testing/rejection.ts';
import { HOST_PATH } from '../common/host.ts';
import { incusChannel } from './channel.ts';
import { IncusClient, IncusError, certificateFingerprint, type IncusClientOptions } from './client.ts';

// --- certificates -----------------------------------------------------------------------

interface Pair {
  cert: string;
  key: string;
  fingerprint: string;
}

/** EC P-384, self-signed, like Incus' own; the server one names no IP, as is usual. */
async function makePair(dir: string, name: string, extensions: string[]): Promise<Pair> {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  await succeed('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:secp384r1',
    '-nodes',
    '-keyout',
    keyFile,
    '-out',
    certFile,
    '-days',
    '2',
    '-subj',
    `/O=Linux Containers/CN=${name}`,
    ...extensions.flatMap((extension) => ['-addext', extension]),
  ]);
  const cert = await readFile(certFile, 'utf8');
  return { cert, key: await readFile(keyFile, 'utf8'), fingerprint: certificateFingerprint(new X509Certificate(cert)) };
}

const SERVER_EXT = [
  'basicConstraints=critical,CA:FALSE',
  'keyUsage=critical,digitalSignature,keyEncipherment',
  'extendedKeyUsage=serverAuth',
  'subjectAltName=DNS:fake-incus',
];
const CLIENT_EXT = ['extendedKeyUsage=clientAuth'];

// --- a fake Incus -----------------------------------------------------------------------

interface FakeInstance {
  name: string;
  status: 'Running' | 'Stopped';
  type: string;
  config: Record<string, string>;
  devices: Record<string, Record<string, string>>;
  profiles: string[];
  created_at: string;
}

interface FakeOperation {
  id: string;
  description: string;
  status: string;
  status_code: number;
  err: string;
  metadata: Record<string, unknown> | null;
  /** How many waits still answer "Running", to exercise the polling loop. */
  runningWaits: number;
  /** How many waits first end as this Incus ends a wait slice on a running operation: an error, "context deadline exceeded". */
  deadlineWaits: number;
  /** Its wait answers an error envelope at HTTP 200, as some Incus does for an exec that exits 127. */
  errorEnvelope?: boolean;
}

interface FakeFile {
  type: string;
  content: Buffer;
  mode: string;
  uid?: string;
  gid?: string;
}

class FakeIncus {
  readonly server: https.Server;
  readonly trusted = new Set<string>();
  readonly projects = new Set(['ci']);
  readonly aliases = new Set(['debian/12']);
  readonly instances = new Map<string, FakeInstance>();
  readonly operations = new Map<string, FakeOperation>();
  readonly files = new Map<string, FakeFile>();
  readonly execOutputs = new Map<string, Buffer>();
  readonly requests: string[] = [];
  readonly withoutProject: string[] = [];
  readonly bodies: { path: string; body: unknown }[] = [];
  port = 0;

  constructor(pair: Pair, clientCas: string[]) {
    // Both client certs are accepted at the TLS layer; trust is decided per fingerprint, as Incus does.
    this.server = https.createServer({ cert: pair.cert, key: pair.key, requestCert: true, ca: clientCas }, (req, res) => {
      this.handle(req, res).catch((error: unknown) => this.error(res, 500, String(error)));
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  get url(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  private send(res: ServerResponse, status: number, envelope: Record<string, unknown>): void {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(envelope));
  }

  private sync(res: ServerResponse, metadata: unknown): void {
    this.send(res, 200, { type: 'sync', status: 'Success', status_code: 200, error_code: 0, error: '', metadata });
  }

  private error(res: ServerResponse, code: number, error: string): void {
    this.send(res, code, { type: 'error', status: '', status_code: 0, error_code: code, error, metadata: null });
  }

  private operation(
    res: ServerResponse,
    description: string,
    outcome: { err?: string; metadata?: Record<string, unknown>; runningWaits?: number; deadlineWaits?: number; errorEnvelope?: boolean } = {},
  ): void {
    const id = randomUUID();
    const op: FakeOperation = {
      id,
      description,
      status: outcome.err ? 'Failure' : 'Success',
      status_code: outcome.err ? 400 : 200,
      err: outcome.err ?? '',
      metadata: outcome.metadata ?? null,
      runningWaits: outcome.runningWaits ?? 0,
      deadlineWaits: outcome.deadlineWaits ?? 0,
      errorEnvelope: outcome.errorEnvelope,
    };
    this.operations.set(id, op);
    this.send(res, 202, {
      type: 'async',
      status: 'Operation created',
      status_code: 100,
      operation: `/1.0/operations/${id}`,
      error_code: 0,
      error: '',
      metadata: { id, description, status: 'Running', status_code: 103, err: '', metadata: null },
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://fake');
    const method = req.method ?? 'GET';
    const project = url.searchParams.get('project');
    this.requests.push(`${method} ${url.pathname}${url.search}`);
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks);
    if (project === null) {
      this.withoutProject.push(`${method} ${url.pathname}`);
      return this.error(res, 400, 'test fake: request without ?project=');
    }
    const peer = (req.socket as TLSSocket).getPeerCertificate();
    const trusted = this.trusted.has(certificateFingerprint(peer));
    const path = url.pathname;
    const json = (): Record<string, unknown> => JSON.parse(raw.toString('utf8')) as Record<string, unknown>;

    if (method === 'GET' && path === '/1.0') {
      return this.sync(res, { auth: trusted ? 'trusted' : 'untrusted', api_version: '1.0', environment: { server_version: '6.0.4', project } });
    }
    if (!trusted) return this.error(res, 403, 'not authorized');
    if (!this.projects.has(project)) return this.error(res, 404, 'Project not found');

    let m: RegExpExecArray | null;
    if ((m = /^\/1\.0\/projects\/([^/]+)$/.exec(path))) {
      return this.projects.has(decodeURIComponent(m[1]!)) ? this.sync(res, { name: m[1] }) : this.error(res, 404, 'Project not found');
    }
    if (path === '/1.0/resources') return this.sync(res, { cpu: { total: 4 }, memory: { total: 8 * 2 ** 30, used: 2 ** 30 } });
    if ((m = /^\/1\.0\/images\/aliases\/(.+)$/.exec(path))) {
      return this.aliases.has(decodeURIComponent(m[1]!)) ? this.sync(res, { name: m[1], target: 'abc' }) : this.error(res, 404, 'Image alias not found');
    }
    if ((m = /^\/1\.0\/operations\/([^/]+)\/wait$/.exec(path))) {
      const op = this.operations.get(m[1]!);
      if (!op) return this.error(res, 404, 'Operation not found');
      if (!url.searchParams.get('timeout')) return this.error(res, 400, 'test fake: wait without timeout');
      if (op.deadlineWaits > 0) {
        op.deadlineWaits -= 1;
        return this.error(res, 504, 'context deadline exceeded');
      }
      if (op.runningWaits > 0) {
        op.runningWaits -= 1;
        return this.sync(res, { ...op, status: 'Running', status_code: 103 });
      }
      if (op.errorEnvelope) return this.send(res, 200, { type: 'error', status: '', status_code: 0, error_code: 400, error: op.err, metadata: null });
      return this.sync(res, op);
    }
    if ((m = /^\/1\.0\/operations\/([^/]+)$/.exec(path))) {
      const op = this.operations.get(m[1]!);
      return op ? this.sync(res, op) : this.error(res, 404, 'Operation not found');
    }
    if (path === '/1.0/instances') {
      if (method === 'GET') {
        if (url.searchParams.get('recursion') !== '1') return this.error(res, 400, 'test fake: want recursion=1');
        return this.sync(
          res,
          [...this.instances.values()].map((i) => this.render(i)),
        );
      }
      const body = json() as {
        name: string;
        type: string;
        source: { alias: string };
        config?: Record<string, string>;
        devices?: Record<string, Record<string, string>>;
        profiles?: string[];
      };
      this.bodies.push({ path, body });
      if (!this.aliases.has(body.source.alias)) return this.error(res, 404, 'Image alias not found');
      this.instances.set(body.name, {
        name: body.name,
        status: 'Stopped',
        type: body.type,
        config: body.config ?? {},
        devices: body.devices ?? {},
        profiles: body.profiles ?? ['default'],
        created_at: new Date().toISOString(),
      });
      return this.operation(res, 'Creating instance', { runningWaits: 1 });
    }
    if (!(m = /^\/1\.0\/instances\/([^/]+)(\/.*)?$/.exec(path))) return this.error(res, 404, 'not found');
    const instance = this.instances.get(decodeURIComponent(m[1]!));
    const rest = m[2] ?? '';
    if (!instance) return this.error(res, 404, `Failed to fetch instance "${m[1]}" in project "${project}": Instance not found`);

    if (rest === '') {
      if (method === 'GET') return this.sync(res, this.render(instance));
      if (method === 'PATCH') {
        Object.assign(instance.config, (json() as { config: Record<string, string> }).config);
        return this.sync(res, {}); // Incus 6.0 answers PATCH synchronously.
      }
      if (method === 'DELETE') {
        if (instance.status === 'Running') return this.error(res, 400, 'Instance is running');
        this.instances.delete(instance.name);
        return this.operation(res, 'Deleting instance');
      }
    }
    if (rest === '/state' && method === 'PUT') {
      const body = json() as { action: string; force?: boolean; timeout?: number };
      this.bodies.push({ path, body });
      if (body.action === 'start') {
        if (instance.status === 'Running') return this.operation(res, 'Starting instance', { err: 'The instance is already running' });
        if (instance.config['user.fail-start']) return this.operation(res, 'Starting instance', { err: 'Failed to start device "eth0": boom' });
        instance.status = 'Running';
        // A long start: one wait slice ends on the running operation, as a slow rebuild's exec would.
        return this.operation(res, 'Starting instance', { runningWaits: 2, deadlineWaits: 1 });
      }
      if (instance.status === 'Stopped') return this.operation(res, 'Stopping instance', { err: 'The instance is already stopped' });
      // incusd, just started, bringing back what ran before: the instance is up again after the stop.
      const restarts = Number(instance.config['user.restarts-after-stop'] ?? 0);
      if (restarts > 0) {
        instance.config['user.restarts-after-stop'] = String(restarts - 1);
        return this.operation(res, 'Stopping instance');
      }
      instance.status = 'Stopped';
      return this.operation(res, 'Stopping instance');
    }
    if (rest === '/exec' && method === 'POST') {
      const body = json() as {
        command: string[];
        environment: Record<string, string>;
        cwd?: string;
        user?: number;
        group?: number;
        'record-output': boolean;
        'wait-for-websocket': boolean;
        interactive: boolean;
      };
      this.bodies.push({ path, body });
      if (!body['record-output'] || body['wait-for-websocket'] || body.interactive) return this.error(res, 400, 'test fake: unexpected exec mode');
      if (instance.status !== 'Running') return this.error(res, 400, 'Instance is not running');
      const [program, ...args] = body.command;
      let stdout = '';
      let stderr = '';
      let code = 0;
      let err: string | undefined;
      if (program === 'echo') stdout = `${args.join(' ')}\n`;
      else if (program === 'both') [stdout, stderr, code] = [args[0]!, args[1]!, Number(args[2])];
      else if (program === 'whoami') stdout = JSON.stringify({ env: body.environment, cwd: body.cwd, user: body.user, group: body.group });
      else if (program === '/bin/sh') stdout = `ran ${args.at(-1)}\n`;
      else [stderr, code, err] = [`${program}: not found\n`, 127, 'Command not found'];
      if (program === 'gone') return this.operation(res, 'Executing command', { err, metadata: { return: code, output: {} }, errorEnvelope: true });
      const id = randomUUID();
      const output: Record<string, string> = {};
      for (const [fd, text] of [
        ['1', stdout],
        ['2', stderr],
      ] as const) {
        const file = `exec_${id}.${fd === '1' ? 'stdout' : 'stderr'}`;
        this.execOutputs.set(`${instance.name}/${file}`, Buffer.from(text));
        output[fd] = `/1.0/instances/${instance.name}/logs/exec-output/${file}`; // No project here, as in Incus.
      }
      return this.operation(res, 'Executing command', { err, metadata: { return: code, output } });
    }
    if ((m = /^\/logs\/exec-output\/(.+)$/.exec(rest))) {
      const key = `${instance.name}/${m[1]}`;
      const content = this.execOutputs.get(key);
      if (!content) return this.error(res, 404, 'not found');
      if (method === 'DELETE') {
        this.execOutputs.delete(key);
        return this.sync(res, {});
      }
      return void res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(content);
    }
    if (rest === '/files') {
      const filePath = url.searchParams.get('path') ?? '';
      const key = `${instance.name}:${filePath}`;
      const existing = this.files.get(key);
      if (method === 'GET') {
        if (!existing) return this.error(res, 404, 'file does not exist');
        return void res.writeHead(200, { 'x-incus-type': existing.type, 'x-incus-mode': existing.mode }).end(existing.content);
      }
      if (method === 'DELETE') {
        if (!existing) return this.error(res, 404, 'Not Found');
        this.files.delete(key);
        return this.sync(res, {});
      }
      const header = (name: string): string | undefined => req.headers[`x-incus-${name}`] as string | undefined;
      const type = header('type') ?? 'file';
      if (existing) {
        // Like Incus: an existing entry keeps its mode and owner.
        if (type === 'file') existing.content = raw;
        return this.sync(res, {});
      }
      this.files.set(key, { type, content: raw, mode: header('mode') ?? '', uid: header('uid'), gid: header('gid') });
      return this.sync(res, {});
    }
    return this.error(res, 404, 'not found');
  }

  private render(instance: FakeInstance): Record<string, unknown> {
    return { ...instance, expanded_config: { ...instance.config }, expanded_devices: instance.devices };
  }
}

/** A port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const dialRejection = (promise: Promise<unknown>): Promise<DialError> => rejectionOf(promise, DialError);

async function rejection(promise: Promise<unknown>): Promise<IncusError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(IncusError);
    return error as IncusError;
  }
  throw new Error('expected the promise to reject');
}

// --- tests ------------------------------------------------------------------------------

let dir: string;
let serverPair: Pair;
let otherServerPair: Pair;
let clientPair: Pair;
let strangerPair: Pair;
let fake: FakeIncus;
let socks: FakeSocks;
const clients: IncusClient[] = [];

function options(extra: Partial<IncusClientOptions> = {}): IncusClientOptions {
  return {
    url: fake.url,
    clientCert: clientPair.cert,
    clientKey: clientPair.key,
    serverCert: serverPair.cert,
    project: 'ci',
    requestTimeoutMs: 2000,
    ...extra,
  };
}

async function connect(extra: Partial<IncusClientOptions> = {}): Promise<IncusClient> {
  const client = await IncusClient.connect(options(extra));
  clients.push(client);
  return client;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'incus-client-test-'));
  [serverPair, otherServerPair, clientPair, strangerPair] = await Promise.all([
    makePair(dir, 'fake-incus', SERVER_EXT),
    makePair(dir, 'impostor', SERVER_EXT),
    makePair(dir, 'harness', CLIENT_EXT),
    makePair(dir, 'stranger', CLIENT_EXT),
  ]);
  fake = new FakeIncus(serverPair, [clientPair.cert, strangerPair.cert]);
  fake.trusted.add(clientPair.fingerprint);
  [socks] = await Promise.all([startFakeSocks(), fake.listen()]);
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()));
  expect(fake.withoutProject).toEqual([]);
});

afterAll(async () => {
  fake?.server.closeAllConnections();
  await Promise.all([fake && new Promise((resolve) => fake.server.close(resolve)), socks?.close()]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('IncusClient against a fake Incus', () => {
  it('pins a server certificate that names no IP, and reads server, resources and instances', async () => {
    const client = await connect();
    expect((await client.server()).auth).toBe('trusted');
    expect((await client.resources()).memory.total).toBe(8 * 2 ** 30);
    expect(await client.listInstances()).toEqual([]);
    expect(await client.getInstance('ghost')).toBeUndefined();
    expect(await client.imageAliasExists('debian/12')).toBe(true);
    expect(await client.imageAliasExists('nope')).toBe(false);
    expect(fake.requests.every((line) => /[?&]project=ci(&|$)/.test(line))).toBe(true);
  });

  it('manages an instance: create, start, patch, exec, files, stop, delete', async () => {
    const client = await connect();
    await client.createInstance({
      name: 'ci-1',
      type: 'virtual-machine',
      source: { type: 'image', alias: 'debian/12' },
      config: { 'limits.memory': '4GiB' },
      devices: { root: { type: 'disk', path: '/', pool: 'default' } },
      profiles: ['default'],
    });
    expect((await client.listInstances()).map((i) => [i.name, i.status, i.type])).toEqual([['ci-1', 'Stopped', 'virtual-machine']]);
    await client.start('ci-1');
    await client.start('ci-1'); // Already running: still fine.
    await client.patchInstanceConfig('ci-1', { 'user.note': 'x' });
    expect((await client.getInstance('ci-1'))?.expanded_config).toMatchObject({ 'limits.memory': '4GiB', 'user.note': 'x' });

    expect(await client.exec('ci-1', ['both', 'out\n', 'err\n', '3'])).toEqual({
      command: "incus exec ci-1 -- both 'out\n' 'err\n' 3",
      exitCode: 3,
      stdout: 'out\n',
      stderr: 'err\n',
    });
    const who = await client.exec('ci-1', ['whoami'], { env: { A: 'b' }, cwd: '/srv', user: 1000 });
    expect(JSON.parse(who.stdout)).toEqual({ env: { A: 'b' }, cwd: '/srv', user: 1000, group: 1000 });
    const missing = await client.exec('ci-1', ['nope']);
    expect([missing.exitCode, missing.stderr]).toEqual([127, 'nope: not found\n']);
    // Answered as an error envelope by the wait, the operation itself still gives the exit code.
    expect((await client.exec('ci-1', ['gone'])).exitCode).toBe(127);
    await client.execOutputCleaned();
    expect(fake.execOutputs.size).toBe(0); // Recorded output is cleaned up.

    await client.pushFile('ci-1', '/etc/x.conf', 'one', { mode: 0o600 });
    await client.pushFile('ci-1', '/etc/x.conf', Buffer.from('two'), { mode: 0o640, uid: 1000, gid: 100 });
    expect(fake.files.get('ci-1:/etc/x.conf')).toMatchObject({ type: 'file', mode: '0640', uid: '1000', gid: '100' });
    expect((await client.pullFile('ci-1', '/etc/x.conf')).toString()).toBe('two');
    await client.mkdir('ci-1', '/srv/data', { mode: 0o750 });
    expect(fake.files.get('ci-1:/srv/data')).toMatchObject({ type: 'directory', mode: '0750' });
    expect((await rejection(client.pullFile('ci-1', '/srv/data'))).message).toMatch(/is a directory, not a file/);
    expect((await rejection(client.pullFile('ci-1', '/nope'))).status).toBe(404);

    await client.stop('ci-1', { timeoutS: 5 });
    await client.stop('ci-1'); // Already stopped: still fine.
    await client.start('ci-1');
    await client.deleteInstance('ci-1'); // Running: stopped first.
    expect(fake.bodies.at(-1)).toMatchObject({ path: '/1.0/instances/ci-1/state', body: { action: 'stop', force: true } });
    expect(await client.getInstance('ci-1')).toBeUndefined();
    await client.deleteInstance('ci-1'); // Gone: still fine.
    expect(fake.requests.every((line) => /[?&]project=ci(&|$)/.test(line))).toBe(true);
    expect(fake.requests.some((line) => line.startsWith('GET /1.0/operations/') && /timeout=\d+/.test(line))).toBe(true);
  });

  it('runs a host line through /bin/sh by absolute path, with the harness PATH in the exec request', async () => {
    const client = await connect();
    await client.createInstance({ name: 'ci-sh', type: 'virtual-machine', source: { type: 'image', alias: 'debian/12' }, config: {}, devices: {} });
    await client.start('ci-sh');
    const script = `grep -q "it's" '$HOME' && echo \\$x`;
    expect(await incusChannel(client, 'ci-sh').exec(script, { strict: true })).toMatchObject({ command: script, exitCode: 0, stdout: `ran ${script}\n` });
    expect(fake.bodies.at(-1)).toEqual({
      path: '/1.0/instances/ci-sh/exec',
      body: { command: ['/bin/sh', '-euc', script], environment: { PATH: HOST_PATH }, 'record-output': true, 'wait-for-websocket': false, interactive: false },
    });
    await client.deleteInstance('ci-sh');
  });

  it('raises the err of a failed operation', async () => {
    const client = await connect();
    await client.createInstance({
      name: 'ci-bad',
      type: 'container',
      source: { type: 'image', alias: 'debian/12' },
      config: { 'user.fail-start': 'true' },
      devices: {},
    });
    const error = await rejection(client.start('ci-bad'));
    expect(error.operation?.err).toBe('Failed to start device "eth0": boom');
    expect(error.message).toMatch(/starting instance ci-bad failure: Failed to start device "eth0": boom/);
    expect(error.message).toContain(fake.url);
    await client.deleteInstance('ci-bad');
  });

  it('stops again an instance that is running again by its DELETE, as after incusd starts', async () => {
    const client = await connect();
    await client.createInstance({
      name: 'ci-back',
      type: 'container',
      source: { type: 'image', alias: 'debian/12' },
      config: { 'user.restarts-after-stop': '2' },
      devices: {},
    });
    await client.start('ci-back');
    await client.deleteInstance('ci-back');
    expect(await client.getInstance('ci-back')).toBeUndefined();
    expect(fake.bodies.filter((entry) => entry.path === '/1.0/instances/ci-back/state' && (entry.body as { action: string }).action === 'stop')).toHaveLength(
      3,
    );
  });

  it('counts deleting a missing instance as success', async () => {
    const client = await connect();
    await expect(client.deleteInstance('never-was')).resolves.toBeUndefined();
  });

  it('names ACCEPT_INCUS_IMAGE when the image alias is missing', async () => {
    const client = await connect();
    const error = await rejection(
      client.createInstance({ name: 'ci-2', type: 'container', source: { type: 'image', alias: 'debian/99' }, config: {}, devices: {} }),
    );
    expect(error.message).toMatch(/no image alias "debian\/99" in project "ci"; import the image or fix ACCEPT_INCUS_IMAGE/);
    expect(error.setting).toBe('ACCEPT_INCUS_IMAGE');
  });

  it('pins by fingerprint alone: reads the certificate, checks it, then verifies against it', async () => {
    const client = await connect({ serverCert: undefined, serverFingerprint: serverPair.fingerprint });
    expect((await client.server()).auth).toBe('trusted');
  });

  it('takes the SOCKS5 path when ACCEPT_SOCKS is set', async () => {
    const before = socks.destinations.length;
    const client = await connect({ socks: `socks5://127.0.0.1:${socks.port}`, serverCert: undefined, serverFingerprint: serverPair.fingerprint });
    expect(await client.listInstances()).toEqual([]);
    const seen = socks.destinations.slice(before);
    expect(seen.length).toBeGreaterThanOrEqual(2); // The fingerprint probe, then the real connection.
    expect(new Set(seen)).toEqual(new Set([`127.0.0.1:${fake.port}`]));
  });
});

describe('IncusClient errors', () => {
  it('says the SOCKS5 proxy is unreachable', async () => {
    const port = await closedPort();
    const error = await dialRejection(connect({ socks: `socks5://127.0.0.1:${port}` }));
    expect(error.message).toBe(
      `could not reach Incus at https://127.0.0.1:${fake.port} (ACCEPT_INCUS_URL) through SOCKS5 proxy socks5://127.0.0.1:${port} (ACCEPT_SOCKS): ` +
        'the proxy refused the connection (ECONNREFUSED); is it running?',
    );
    expect(error.setting).toBe('ACCEPT_SOCKS');
  });

  it('says the SOCKS5 proxy could not reach Incus', async () => {
    const port = await closedPort();
    const error = await dialRejection(connect({ socks: `socks5://127.0.0.1:${socks.port}`, url: `https://127.0.0.1:${port}` }));
    expect(error.message).toBe(
      `could not reach Incus at https://127.0.0.1:${port} (ACCEPT_INCUS_URL) through SOCKS5 proxy socks5://127.0.0.1:${socks.port} (ACCEPT_SOCKS): ` +
        'the proxy could not connect to the target (SOCKS reply 5, connection refused by the target)',
    );
    expect(error.setting).toBe('ACCEPT_INCUS_URL');
  });

  it('says Incus refused when the connection is refused', async () => {
    const port = await closedPort();
    const error = await dialRejection(connect({ url: `https://127.0.0.1:${port}` }));
    expect(error.message).toBe(
      `could not reach Incus at https://127.0.0.1:${port} (ACCEPT_INCUS_URL): it refused the connection (ECONNREFUSED); is the service running and the port right?`,
    );
    expect(error.transient).toBe(true);
  });

  it('names ACCEPT_SOCKS for a proxy URL that is not socks5://, before dialling', async () => {
    await expect(connect({ socks: 'http://127.0.0.1:3128' })).rejects.toThrow(/^ACCEPT_SOCKS: SOCKS proxy must be socks5:\/\/host:port; got protocol http:$/);
  });

  it('says Incus is not answering when the handshake never comes', async () => {
    // Reads (so it notices our close) but never answers.
    const silent = net.createServer((socket) => socket.resume());
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as net.AddressInfo;
    try {
      const error = await rejection(connect({ url: `https://127.0.0.1:${port}`, requestTimeoutMs: 300 }));
      expect(error.message).toMatch(/ACCEPT_INCUS_URL\) failed the TLS handshake: no TLS handshake within 300 ms/);
    } finally {
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it('names both fingerprints when the pinned certificate does not match', async () => {
    const error = await rejection(connect({ serverCert: otherServerPair.cert }));
    expect(error.message).toContain(
      `presented a server certificate with sha256 ${serverPair.fingerprint}, which does not match the pin in ACCEPT_INCUS_SERVER_CERT (sha256 ${otherServerPair.fingerprint})`,
    );
    const byFingerprint = await rejection(connect({ serverCert: undefined, serverFingerprint: otherServerPair.fingerprint }));
    expect(byFingerprint.message).toContain(`sha256 ${serverPair.fingerprint}, which does not match the pin in ACCEPT_INCUS_SERVER_FINGERPRINT`);
  });

  it('says the client certificate is not trusted, with its fingerprint', async () => {
    const error = await rejection(connect({ clientCert: strangerPair.cert, clientKey: strangerPair.key }));
    expect(error.message).toContain(
      `Incus at ${fake.url} does not trust the client certificate in ACCEPT_INCUS_CLIENT_CERT (sha256 ${strangerPair.fingerprint})`,
    );
    expect(error.message).not.toContain('PRIVATE KEY');
  });

  it('names the project setting (or its override) for an unknown project', async () => {
    const error = await rejection(connect({ project: 'nope', settingNames: { project: 'MY_PROJECT' } }));
    expect(error.message).toMatch(
      /has no project "nope" visible to this client \(HTTP 404\); create it or fix MY_PROJECT \[GET \/1\.0\/projects\/nope\?project=nope\]/,
    );
    expect(error.status).toBe(404);
  });
});
