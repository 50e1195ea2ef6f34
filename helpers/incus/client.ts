/**
 * A small Incus REST client for the harness: mutual TLS with a pinned server certificate,
 * optionally through a SOCKS5 proxy, every request scoped to one project.
 */
import { X509Certificate } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { Pool } from 'undici';
import type { buildConnector } from 'undici';
import { DialError, dial, parseSocksUrl, tlsPeer } from '../common/dial.ts';
import { ConfigError, HarnessError, errorMessage } from '../common/errors.ts';
import { log } from '../common/log.ts';
import { redact, registerSecret } from '../common/redact.ts';
import { waitFor } from '../common/wait.ts';

export type IncusSettingName = 'url' | 'clientCert' | 'serverCert' | 'socks' | 'project' | 'image';

export interface IncusClientOptions {
  /** https://host:port */
  url: string;
  /** PEM */
  clientCert: string;
  /** PEM */
  clientKey: string;
  /** PEM of the server certificate to pin. */
  serverCert?: string;
  /** SHA-256 of the server certificate, hex, lowercase, no colons; used when serverCert is not given. */
  serverFingerprint?: string;
  project: string;
  /** socks5://host:port */
  socks?: string;
  requestTimeoutMs?: number;
  /** Environment variable names cited in error messages. */
  settingNames?: Partial<Record<IncusSettingName, string>>;
}

export interface IncusErrorDetails {
  method: string;
  path: string;
  status?: number;
  /** The setting most likely at fault, when there is one. */
  setting?: string;
  /** A failed background operation, whose `err` is in the message. */
  operation?: IncusOperation;
  cause?: unknown;
}

export class IncusError extends HarnessError {
  override readonly name = 'IncusError';
  readonly status?: number;
  readonly method: string;
  readonly path: string;
  readonly setting?: string;
  readonly operation?: IncusOperation;
  constructor(message: string, details: IncusErrorDetails) {
    super(redact(`${message} [${details.method} ${details.path}]`), { cause: details.cause });
    this.status = details.status;
    this.method = details.method;
    this.path = details.path;
    this.setting = details.setting;
    this.operation = details.operation;
  }
}

export interface IncusServer {
  auth: 'trusted' | 'untrusted' | string;
  api_version: string;
  api_extensions?: string[];
  auth_methods?: string[];
  config?: Record<string, unknown>;
  environment?: {
    server_version?: string;
    server_name?: string;
    certificate_fingerprint?: string;
    driver?: string;
    project?: string;
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

export interface IncusResources {
  cpu: { total: number; architecture?: string; [key: string]: unknown };
  memory: { total: number; used: number; [key: string]: unknown };
  [key: string]: unknown;
}

export type IncusInstanceType = 'container' | 'virtual-machine';

export interface IncusInstance {
  name: string;
  status: string;
  status_code?: number;
  type: IncusInstanceType;
  config: Record<string, string>;
  devices: Record<string, Record<string, string>>;
  expanded_config: Record<string, string>;
  expanded_devices?: Record<string, Record<string, string>>;
  profiles?: string[];
  created_at: string;
  [key: string]: unknown;
}

/** One guest interface in GET /1.0/instances/<name>/state (for a VM, as its agent reports it). */
export interface IncusNetworkState {
  addresses?: { family: string; address: string; netmask?: string; scope: string }[];
  type?: string;
  /** The host side of a NIC Incus attached; empty for interfaces made inside the guest. */
  host_name?: string;
  [key: string]: unknown;
}

export interface IncusInstanceState {
  status: string;
  network?: Record<string, IncusNetworkState> | null;
  [key: string]: unknown;
}

export interface IncusProfile {
  name: string;
  config: Record<string, string>;
  devices: Record<string, Record<string, string>>;
  [key: string]: unknown;
}

export interface IncusInstanceSpec {
  name: string;
  type: IncusInstanceType;
  source: { type: 'image'; alias: string };
  config: Record<string, string>;
  devices: Record<string, Record<string, string>>;
  profiles?: string[];
}

export interface IncusOperation {
  id: string;
  class?: string;
  description: string;
  status: string;
  status_code: number;
  err: string;
  metadata: Record<string, unknown> | null;
  may_cancel?: boolean;
  [key: string]: unknown;
}

export interface IncusExecOptions {
  env?: Record<string, string>;
  cwd?: string;
  timeoutMs?: number;
  /** uid to run as. */
  user?: number;
  /** gid to run as; defaults to `user`, since Incus would otherwise use gid 0. */
  group?: number;
}

export interface IncusExecResult {
  command: string;
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface IncusFileOptions {
  mode: number;
  uid?: number;
  gid?: number;
}

interface Envelope {
  type: 'sync' | 'async' | 'error';
  status_code?: number;
  error_code?: number;
  error?: string;
  operation?: string;
  metadata: unknown;
}

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

interface RequestSpec {
  body?: unknown;
  raw?: Buffer;
  headers?: Record<string, string>;
  query?: Record<string, string>;
  /** How long a background operation may run; the default suits image unpacking. */
  operationTimeoutMs?: number;
  operationDescription?: string;
}

const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
const DEFAULT_OPERATION_TIMEOUT_MS = 600_000;
/** Longest single server-side wait; Incus holds the request open until then. */
const WAIT_SLICE_S = 30;

const DEFAULT_SETTINGS: Record<IncusSettingName, string> = {
  url: 'ACCEPT_INCUS_URL',
  clientCert: 'ACCEPT_INCUS_CLIENT_CERT',
  serverCert: 'ACCEPT_INCUS_SERVER_CERT',
  socks: 'ACCEPT_SOCKS',
  project: 'ACCEPT_INCUS_PROJECT',
  image: 'ACCEPT_INCUS_IMAGE',
};

/** sha256, lowercase hex, no colons: the form Incus itself prints. */
export function certificateFingerprint(cert: X509Certificate | { fingerprint256: string }): string {
  return cert.fingerprint256.replaceAll(':', '').toLowerCase();
}

function parseCertificate(pem: string, setting: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (error) {
    throw new ConfigError(setting, `is not a PEM certificate: ${errorMessage(error)}`);
  }
}

function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : errorMessage(error);
}

/** Verification failures as Node reports them (OpenSSL codes and the hostname check). */
function isVerificationError(error: unknown): boolean {
  if (error instanceof IncusError) return true;
  return /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|ERR_TLS_CERT_ALTNAME/.test(errorCode(error));
}

interface TransportSettings {
  url: URL;
  host: string;
  port: number;
  clientCert: string;
  clientKey: string;
  serverCert?: string;
  pin: string;
  socks?: string;
  timeoutMs: number;
  names: Record<IncusSettingName, string>;
}

type Handshake =
  | { ok: true; socket: tls.TLSSocket; peer?: X509Certificate }
  | { ok: false; error: unknown; peer?: X509Certificate };

/**
 * Opens verified TLS connections for undici. Verification is never switched off: either the
 * pinned PEM is the only trust anchor, or (fingerprint pin) the certificate read in a probe and
 * found to match the pin becomes the only trust anchor.
 */
class Transport {
  /** Fingerprint-pin mode: the matching server certificate, read once. */
  private anchor?: Promise<string>;

  constructor(private readonly s: TransportSettings) {}

  readonly connector: buildConnector.connector = (_options, callback) => {
    this.open().then(
      (socket) => callback(null, socket),
      (error: Error) => callback(error, null),
    );
  };

  private get where(): string {
    return `Incus at ${this.s.url.origin} (${this.s.names.url})`;
  }

  private get pinSetting(): string {
    return this.s.names.serverCert;
  }

  private fail(message: string, cause?: unknown): IncusError {
    return new IncusError(message, { method: 'CONNECT', path: this.s.url.origin, setting: this.s.names.url, cause });
  }

  private mismatch(presented: string): IncusError {
    return new IncusError(
      `Incus at ${this.s.url.origin} presented a server certificate with sha256 ${presented}, ` +
        `which does not match the pin in ${this.pinSetting} (sha256 ${this.s.pin})`,
      { method: 'CONNECT', path: this.s.url.origin, setting: this.pinSetting },
    );
  }

  async open(): Promise<tls.TLSSocket> {
    const anchor = this.s.serverCert ?? (await this.probedAnchor());
    const raw = await this.tcp();
    const result = await this.handshake(raw, {
      cert: this.s.clientCert,
      key: this.s.clientKey,
      ca: [anchor],
      rejectUnauthorized: true,
      checkServerIdentity: (_host, cert) => this.checkIdentity(cert),
    });
    if (result.ok) return result.socket;
    const { error, peer } = result;
    if (error instanceof IncusError) throw error;
    if (peer && isVerificationError(error)) {
      const presented = certificateFingerprint(peer);
      if (presented !== this.s.pin) throw this.mismatch(presented);
      throw new IncusError(
        `Incus at ${this.s.url.origin} presented the pinned certificate (sha256 ${presented}) but it failed verification: ${errorCode(error)}`,
        { method: 'CONNECT', path: this.s.url.origin, setting: this.pinSetting, cause: error },
      );
    }
    throw this.fail(`${this.where} failed the TLS handshake: ${errorMessage(error)}`, error);
  }

  /**
   * Runs after the chain verified against our single trust anchor. Incus certificates rarely
   * name the address we dial, so the pin replaces the hostname check; a pinned PEM that is a CA
   * (Incus PKI mode) gets the ordinary hostname check for the leaves it signed.
   */
  private checkIdentity(cert: tls.PeerCertificate): Error | undefined {
    if (!cert.fingerprint256) return new Error('the server presented no certificate to check against the pin');
    const presented = certificateFingerprint(cert);
    if (presented === this.s.pin) return undefined;
    if (this.s.serverCert) return tls.checkServerIdentity(this.s.host, cert);
    return this.mismatch(presented);
  }

  /**
   * With only a fingerprint there is no certificate to verify a chain against. So we read the
   * certificate the server presents in a probe handshake that Node itself rejects (empty trust
   * store, rejectUnauthorized on) and that we abandon before any byte of application data; if
   * its sha256 equals the pin, that exact certificate becomes the only CA for the real
   * connection, which then verifies normally and checks the fingerprint again.
   */
  private probedAnchor(): Promise<string> {
    this.anchor ??= this.probe().catch((error: unknown) => {
      this.anchor = undefined; // A failed probe is retried on the next connection.
      throw error;
    });
    return this.anchor;
  }

  private async probe(): Promise<string> {
    const raw = await this.tcp();
    const result = await this.handshake(raw, { ca: [], rejectUnauthorized: true }, true);
    if (result.ok) {
      result.socket.destroy();
      raw.destroy();
    }
    if (!result.peer) {
      const why = result.ok ? 'no certificate' : errorMessage(result.error);
      throw this.fail(`${this.where} failed the TLS handshake while reading its certificate: ${why}`, result.ok ? undefined : result.error);
    }
    const presented = certificateFingerprint(result.peer);
    if (presented !== this.s.pin) throw this.mismatch(presented);
    return result.peer.toString();
  }

  /**
   * TLS over an established socket. The peer certificate is captured from the 'OCSPResponse'
   * event, which Node emits mid-handshake (requestOCSP) once the server's certificate is known
   * and before it decides on verification: that lets errors name the fingerprint presented.
   */
  private handshake(raw: net.Socket, options: tls.ConnectionOptions, stopAtCertificate = false): Promise<Handshake> {
    return new Promise((resolve) => {
      let peer: X509Certificate | undefined;
      let settled = false;
      // SNI only for a DNS name (tlsPeer); tls.connect hands requestOCSP to the TLSSocket, and
      // @types/node only lists it there.
      const socket = tls.connect({ ...options, socket: raw, ...tlsPeer(this.s.host), requestOCSP: true } as tls.ConnectionOptions);
      const finish = (outcome: Handshake): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.off('error', onError);
        if (!outcome.ok) {
          // Destroying the TLS layer alone can leave the TCP stream (or proxy tunnel) open.
          socket.destroy();
          raw.destroy();
        }
        resolve(outcome);
      };
      const onError = (error: Error): void => finish({ ok: false, error, peer });
      const timer = setTimeout(
        () => finish({ ok: false, error: new Error(`no TLS handshake within ${this.s.timeoutMs} ms`), peer }),
        this.s.timeoutMs,
      );
      socket.on('OCSPResponse', () => {
        peer = peerCertificate(socket);
        if (stopAtCertificate && peer) finish({ ok: false, error: new Error('probe done'), peer });
      });
      socket.once('secureConnect', () => finish({ ok: true, socket, peer: peer ?? peerCertificate(socket) }));
      socket.on('error', onError);
      // Later errors belong to undici; this keeps one from going unhandled in between.
      socket.on('error', () => {});
    });
  }

  /** A TCP stream to Incus, directly or through the SOCKS5 proxy; a DialError names which failed. */
  private tcp(): Promise<net.Socket> {
    return dial({
      host: this.s.host,
      port: this.s.port,
      socks: this.s.socks,
      socksSetting: this.s.names.socks,
      what: `Incus at ${this.s.url.origin}`,
      targetSetting: this.s.names.url,
      timeoutMs: this.s.timeoutMs,
    });
  }
}

/**
 * The leaf as an X509Certificate, built from the DER. Not getPeerX509Certificate(): called
 * mid-handshake on Node 20 it leaves the certificate later given to checkServerIdentity empty.
 */
function peerCertificate(socket: tls.TLSSocket): X509Certificate | undefined {
  const raw = socket.getPeerCertificate()?.raw;
  return raw ? new X509Certificate(raw) : undefined;
}

function octal(mode: number): string {
  // Incus parses the header with base prefix detection, so the leading 0 marks it octal.
  return `0${(mode & 0o7777).toString(8)}`;
}

function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}

function isAlreadyInState(error: unknown, pattern: RegExp): boolean {
  return error instanceof IncusError && pattern.test(error.operation?.err ?? error.message);
}

export class IncusClient {
  readonly url: string;
  readonly project: string;
  private readonly names: Record<IncusSettingName, string>;
  private readonly timeoutMs: number;

  private constructor(
    options: IncusClientOptions,
    names: Record<IncusSettingName, string>,
    private readonly pool: Pool,
    private readonly clientFingerprint: string,
  ) {
    this.url = new URL(options.url).origin;
    this.project = options.project;
    this.names = names;
    this.timeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  }

  /** Connects, then checks that the server trusts us and that the project exists. */
  static async connect(options: IncusClientOptions): Promise<IncusClient> {
    const names: Record<IncusSettingName, string> = {
      ...DEFAULT_SETTINGS,
      ...(options.serverCert === undefined && options.settingNames?.serverCert === undefined
        ? { serverCert: 'ACCEPT_INCUS_SERVER_FINGERPRINT' }
        : {}),
      ...Object.fromEntries(Object.entries(options.settingNames ?? {}).filter(([, name]) => name)),
    };
    registerSecret(options.clientKey);

    let url: URL;
    try {
      url = new URL(options.url);
    } catch {
      throw new ConfigError(names.url, `is not a URL: ${JSON.stringify(options.url)}`);
    }
    if (url.protocol !== 'https:') throw new ConfigError(names.url, `must be an https:// URL; got ${options.url}`);
    // A malformed proxy URL is a ConfigError now, before any request is made.
    if (options.socks) parseSocksUrl(options.socks, names.socks);

    const clientFingerprint = certificateFingerprint(parseCertificate(options.clientCert, names.clientCert));
    let pin: string;
    if (options.serverCert) {
      pin = certificateFingerprint(parseCertificate(options.serverCert, names.serverCert));
    } else if (options.serverFingerprint) {
      pin = options.serverFingerprint.replaceAll(':', '').toLowerCase();
      if (!/^[0-9a-f]{64}$/.test(pin)) throw new ConfigError(names.serverCert, 'must be a SHA-256 fingerprint (64 hex digits)');
    } else {
      throw new ConfigError(names.serverCert, 'is required: the Incus server certificate must be pinned');
    }

    const timeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    const transport = new Transport({
      url,
      host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: Number(url.port || 443),
      clientCert: options.clientCert,
      clientKey: options.clientKey,
      serverCert: options.serverCert,
      pin,
      socks: options.socks,
      timeoutMs,
      names,
    });
    const pool = new Pool(url.origin, {
      connect: transport.connector,
      connections: 8,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    const client = new IncusClient(options, names, pool, clientFingerprint);
    try {
      await client.checkAccess();
    } catch (error) {
      await client.close();
      throw error;
    }
    return client;
  }

  private async checkAccess(): Promise<void> {
    const server = await this.server();
    if (server.auth !== 'trusted') {
      throw new IncusError(
        `Incus at ${this.url} does not trust the client certificate in ${this.names.clientCert} ` +
          `(sha256 ${this.clientFingerprint}); add it with \`incus config trust add-certificate\``,
        { method: 'GET', path: this.path('/1.0'), status: 200, setting: this.names.clientCert },
      );
    }
    // Incus answers most project-scoped reads for an unknown project with empty lists, so ask directly.
    const projectPath = `/1.0/projects/${encodeURIComponent(this.project)}`;
    try {
      await this.call('GET', projectPath);
    } catch (error) {
      if (error instanceof IncusError && (error.status === 404 || error.status === 403)) {
        throw new IncusError(
          `Incus at ${this.url} has no project ${JSON.stringify(this.project)} visible to this client ` +
            `(HTTP ${error.status}); create it or fix ${this.names.project}`,
          { method: 'GET', path: this.path(projectPath), status: error.status, setting: this.names.project, cause: error },
        );
      }
      throw error;
    }
  }

  server(): Promise<IncusServer> {
    return this.call('GET', '/1.0') as Promise<IncusServer>;
  }

  resources(): Promise<IncusResources> {
    return this.call('GET', '/1.0/resources') as Promise<IncusResources>;
  }

  async listInstances(): Promise<IncusInstance[]> {
    return (await this.call('GET', '/1.0/instances', { query: { recursion: '1' } })) as IncusInstance[];
  }

  async getInstance(name: string): Promise<IncusInstance | undefined> {
    try {
      return (await this.call('GET', instancePath(name))) as IncusInstance;
    } catch (error) {
      if (error instanceof IncusError && error.status === 404) return undefined;
      throw error;
    }
  }

  async instanceState(name: string): Promise<IncusInstanceState> {
    return (await this.call('GET', `${instancePath(name)}/state`)) as IncusInstanceState;
  }

  async getProfile(name: string): Promise<IncusProfile | undefined> {
    try {
      return (await this.call('GET', `/1.0/profiles/${encodeURIComponent(name)}`)) as IncusProfile;
    } catch (error) {
      if (error instanceof IncusError && error.status === 404) return undefined;
      throw error;
    }
  }

  async imageAliasExists(alias: string): Promise<boolean> {
    try {
      await this.call('GET', `/1.0/images/aliases/${encodeURIComponent(alias)}`);
      return true;
    } catch (error) {
      if (error instanceof IncusError && error.status === 404) return false;
      throw error;
    }
  }

  async createInstance(spec: IncusInstanceSpec, options: { timeoutMs?: number } = {}): Promise<void> {
    const missing = (cause?: unknown): IncusError =>
      new IncusError(
        `Incus at ${this.url} has no image alias ${JSON.stringify(spec.source.alias)} in project ` +
          `${JSON.stringify(this.project)}; import the image or fix ${this.names.image}`,
        { method: 'POST', path: this.path('/1.0/instances'), status: 404, setting: this.names.image, cause },
      );
    if (!(await this.imageAliasExists(spec.source.alias))) throw missing();
    try {
      await this.call('POST', '/1.0/instances', {
        body: spec,
        operationTimeoutMs: options.timeoutMs,
        operationDescription: `creating instance ${spec.name}`,
      });
    } catch (error) {
      // The alias can vanish between the check and the create.
      if (error instanceof IncusError && error.status === 404 && /alias|image/i.test(error.message)) throw missing(error);
      throw error;
    }
  }

  /** Starting a running instance counts as success. */
  async start(name: string, options: { timeoutMs?: number } = {}): Promise<void> {
    try {
      await this.call('PUT', `${instancePath(name)}/state`, {
        body: { action: 'start', timeout: -1, force: false, stateful: false },
        operationTimeoutMs: options.timeoutMs,
        operationDescription: `starting instance ${name}`,
      });
    } catch (error) {
      if (!isAlreadyInState(error, /already running/i)) throw error;
    }
  }

  /**
   * Stopping a stopped instance counts as success. Incus reads `timeout: 0` as "kill now", so a
   * clean shutdown gets 30 s unless told otherwise.
   */
  async stop(name: string, options: { force?: boolean; timeoutS?: number } = {}): Promise<void> {
    const timeoutS = options.timeoutS ?? 30;
    try {
      await this.call('PUT', `${instancePath(name)}/state`, {
        body: { action: 'stop', timeout: timeoutS, force: options.force ?? false, stateful: false },
        operationTimeoutMs: (timeoutS + 60) * 1000,
        operationDescription: `stopping instance ${name}`,
      });
    } catch (error) {
      if (!isAlreadyInState(error, /already stopped/i)) throw error;
    }
  }

  /** Deleting an instance that is gone counts as success; a running one is stopped first. */
  async deleteInstance(name: string): Promise<void> {
    const instance = await this.getInstance(name);
    if (!instance) return;
    if (instance.status !== 'Stopped') await this.stop(name, { force: true });
    try {
      await this.call('DELETE', instancePath(name), { operationDescription: `deleting instance ${name}` });
    } catch (error) {
      if (error instanceof IncusError && error.status === 404) return;
      throw error;
    }
  }

  async patchInstanceConfig(name: string, config: Record<string, string>): Promise<void> {
    await this.call('PATCH', instancePath(name), {
      body: { config },
      operationDescription: `updating the configuration of ${name}`,
    });
  }

  /**
   * Runs a command without websockets: Incus records stdout/stderr to log files that we fetch
   * and delete afterwards. A non-zero exit is returned, never thrown.
   */
  async exec(name: string, command: string[], options: IncusExecOptions = {}): Promise<IncusExecResult> {
    const text = `incus exec ${name} -- ${command.map(shellQuote).join(' ')}`;
    const body: Record<string, unknown> = {
      command,
      environment: options.env ?? {},
      'record-output': true,
      'wait-for-websocket': false,
      interactive: false,
    };
    if (options.cwd !== undefined) body.cwd = options.cwd;
    if (options.user !== undefined) body.user = options.user;
    const group = options.group ?? options.user;
    if (group !== undefined) body.group = group;

    let operation: IncusOperation;
    let failure = '';
    try {
      operation = (await this.call('POST', `${instancePath(name)}/exec`, {
        body,
        operationTimeoutMs: options.timeoutMs ?? DEFAULT_OPERATION_TIMEOUT_MS,
        operationDescription: `\`${text}\``,
      })) as IncusOperation;
    } catch (error) {
      // Incus fails the operation for exit codes 126/127 but still records the code and output.
      const failed = error instanceof IncusError ? error.operation : undefined;
      if (!failed || typeof failed.metadata?.return !== 'number') throw error;
      operation = failed;
      failure = failed.err;
    }
    const metadata = operation.metadata ?? {};
    const exitCode = typeof metadata.return === 'number' ? metadata.return : -1;
    const output = (metadata.output ?? {}) as Record<string, string>;
    const [stdout, stderr] = await Promise.all([this.readExecOutput(output['1']), this.readExecOutput(output['2'])]);
    await Promise.all([this.deleteExecOutput(output['1']), this.deleteExecOutput(output['2'])]);
    // When Incus itself could not run the program, its reason is the most useful stderr.
    return { command: text, exitCode, stdout, stderr: stderr || failure };
  }

  private async readExecOutput(path: string | undefined): Promise<string> {
    if (!path) return '';
    return (await this.callRaw('GET', path)).toString('utf8');
  }

  private async deleteExecOutput(path: string | undefined): Promise<void> {
    if (!path) return;
    try {
      await this.call('DELETE', path);
    } catch (error) {
      // The result is already in hand; a leftover log file is not worth failing the caller for.
      log.warn(`could not delete exec output ${path}: ${errorMessage(error)}`);
    }
  }

  /**
   * Writes a file. Incus applies mode and ownership only when it creates the file, so any old
   * copy is removed first to make the requested mode true.
   */
  async pushFile(name: string, path: string, content: string | Buffer, options: IncusFileOptions): Promise<void> {
    const filesPath = `${instancePath(name)}/files`;
    try {
      await this.call('DELETE', filesPath, { query: { path } });
    } catch (error) {
      // Whether SFTP's "no such file" reaches us as 404 depends on the server's libraries.
      const absent =
        error instanceof IncusError && (error.status === 404 || (error.status === 500 && /no such file|not exist/i.test(error.message)));
      if (!absent) throw error;
    }
    await this.call('POST', filesPath, {
      query: { path },
      raw: typeof content === 'string' ? Buffer.from(content, 'utf8') : content,
      headers: fileHeaders('file', options),
    });
  }

  /** Creates one directory (no parents); an existing directory is left as it is. */
  async mkdir(name: string, path: string, options: IncusFileOptions): Promise<void> {
    await this.call('POST', `${instancePath(name)}/files`, {
      query: { path },
      raw: Buffer.alloc(0),
      headers: fileHeaders('directory', options),
    });
  }

  async pullFile(name: string, path: string): Promise<Buffer> {
    const filesPath = `${instancePath(name)}/files`;
    const response = await this.send('GET', filesPath, { query: { path } });
    if (response.status !== 200) this.throwFor('GET', filesPath, response, { path });
    const type = response.headers['x-incus-type'];
    if (type !== undefined && type !== 'file') {
      throw new IncusError(`Incus at ${this.url}: ${path} in ${name} is a ${String(type)}, not a file`, {
        method: 'GET',
        path: this.path(filesPath, { path }),
        status: response.status,
      });
    }
    return response.body;
  }

  async close(): Promise<void> {
    await this.pool.close();
  }

  // --- plumbing -------------------------------------------------------------------------

  /** Path with the project (and any extra query) appended. */
  private path(path: string, query: Record<string, string> = {}): string {
    const url = new URL(path, 'https://incus.invalid');
    for (const [key, value] of Object.entries(query)) url.searchParams.set(key, value);
    url.searchParams.set('project', this.project);
    return `${url.pathname}${url.search}`;
  }

  private async send(method: string, path: string, spec: RequestSpec = {}, extraTimeoutMs = 0): Promise<RawResponse> {
    const fullPath = this.path(path, spec.query);
    const headers: Record<string, string> = { ...spec.headers };
    let body: Buffer | string | undefined;
    if (spec.raw !== undefined) {
      body = spec.raw;
      headers['content-type'] ??= 'application/octet-stream';
    } else if (spec.body !== undefined) {
      body = JSON.stringify(spec.body);
      headers['content-type'] = 'application/json';
    }
    try {
      const response = await this.pool.request({
        method: method as 'GET',
        path: fullPath,
        headers,
        body,
        headersTimeout: this.timeoutMs + extraTimeoutMs,
        bodyTimeout: this.timeoutMs + extraTimeoutMs,
      });
      return {
        status: response.statusCode,
        headers: response.headers,
        body: Buffer.from(await response.body.arrayBuffer()),
      };
    } catch (error) {
      if (error instanceof IncusError || error instanceof DialError) throw error;
      const code = errorCode(error);
      const what = /TIMEOUT/.test(code) ? `did not answer within ${this.timeoutMs + extraTimeoutMs} ms` : `failed: ${errorMessage(error)}`;
      throw new IncusError(`Incus at ${this.url} (${this.names.url}) ${what}`, {
        method,
        path: fullPath,
        setting: this.names.url,
        cause: error,
      });
    }
  }

  private throwFor(method: string, path: string, response: RawResponse, query?: Record<string, string>): never {
    let message = response.body.toString('utf8').slice(0, 500);
    try {
      const envelope = JSON.parse(message) as Envelope;
      if (envelope.error) message = envelope.error;
    } catch {
      // Not JSON: keep the text.
    }
    throw new IncusError(`Incus at ${this.url} answered HTTP ${response.status}: ${message || '(empty)'}`, {
      method,
      path: this.path(path, query),
      status: response.status,
    });
  }

  /** Raw bytes of a 200 answer (exec output logs). */
  private async callRaw(method: string, path: string): Promise<Buffer> {
    const response = await this.send(method, path);
    if (response.status !== 200) this.throwFor(method, path, response);
    return response.body;
  }

  /**
   * One API call: sync answers give their metadata, async ones are waited on and give the
   * finished operation; errors and failed operations throw IncusError.
   */
  private async call(method: string, path: string, spec: RequestSpec = {}, extraTimeoutMs = 0): Promise<unknown> {
    const response = await this.send(method, path, spec, extraTimeoutMs);
    let envelope: Envelope;
    try {
      envelope = JSON.parse(response.body.toString('utf8')) as Envelope;
    } catch {
      if (response.status >= 400) this.throwFor(method, path, response, spec.query);
      throw new IncusError(`Incus at ${this.url} answered HTTP ${response.status} with something that is not JSON`, {
        method,
        path: this.path(path, spec.query),
        status: response.status,
      });
    }
    if (response.status >= 400 || envelope.type === 'error') this.throwFor(method, path, response, spec.query);
    if (envelope.type !== 'async' && response.status !== 202) return envelope.metadata;

    const started = envelope.metadata as IncusOperation | null;
    const id = started?.id ?? envelope.operation?.split('/').pop();
    if (!id) {
      throw new IncusError(`Incus at ${this.url} started an operation without an id`, {
        method,
        path: this.path(path, spec.query),
        status: response.status,
      });
    }
    const operation = await this.waitOperation(id, spec.operationDescription ?? `${method} ${path}`, spec.operationTimeoutMs);
    if (operation.status_code !== 200) {
      throw new IncusError(
        `Incus at ${this.url}: ${spec.operationDescription ?? 'operation'} ${operation.status.toLowerCase()}: ${operation.err || '(no error text)'}`,
        {
          method,
          path: this.path(path, spec.query),
          status: response.status,
          operation,
        },
      );
    }
    return operation;
  }

  /** Long-polls /1.0/operations/{id}/wait in slices until the operation ends. */
  private async waitOperation(id: string, description: string, timeoutMs = DEFAULT_OPERATION_TIMEOUT_MS): Promise<IncusOperation> {
    const deadline = performance.now() + timeoutMs;
    const waitPath = `/1.0/operations/${encodeURIComponent(id)}/wait`;
    const outcome = await waitFor<{ operation: IncusOperation } | { fatal: unknown }>(
      `Incus operation ${id} (${description}) at ${this.url}`,
      async () => {
        const slice = Math.max(1, Math.min(WAIT_SLICE_S, Math.ceil((deadline - performance.now()) / 1000)));
        // Every error here is final, even a transient one that waitFor would retry (a
        // refused connection would spin at this interval), so it is handed out instead.
        let operation: IncusOperation;
        try {
          operation = (await this.call('GET', waitPath, { query: { timeout: String(slice) } }, slice * 1000)) as IncusOperation;
        } catch (error) {
          // The slice ran out while the operation still runs: this Incus says so as an error
          // ("context deadline exceeded") where others answer the running operation. Ask again.
          if (/context deadline exceeded/i.test(errorMessage(error))) return { done: false, saw: 'still running when the wait slice ended' };
          // Some waits answer a failed operation (an exec whose program exits 127: "Command not
          // found") as an error envelope: the operation itself still says how it ended.
          if (error instanceof IncusError && error.status === 200) {
            const ended = await this.call('GET', `/1.0/operations/${encodeURIComponent(id)}`).then((found) => found as IncusOperation, () => undefined);
            if (ended && ended.status_code >= 200) return { operation: ended };
          }
          return { fatal: error };
        }
        if (operation.status_code >= 200) return { operation };
        return { done: false, saw: `${operation.status} (${operation.status_code})` };
      },
      { timeoutMs, intervalMs: 50 },
    );
    if ('fatal' in outcome) throw outcome.fatal;
    return outcome.operation;
  }
}

function instancePath(name: string): string {
  return `/1.0/instances/${encodeURIComponent(name)}`;
}

function fileHeaders(type: 'file' | 'directory', options: IncusFileOptions): Record<string, string> {
  const headers: Record<string, string> = {
    'x-incus-type': type,
    'x-incus-mode': octal(options.mode),
    'x-incus-write': 'overwrite',
  };
  if (options.uid !== undefined) headers['x-incus-uid'] = String(options.uid);
  if (options.gid !== undefined) headers['x-incus-gid'] = String(options.gid);
  return headers;
}
