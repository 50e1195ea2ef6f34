/**
 * The Incus client's transport: mutual TLS with a pinned server certificate, optionally through
 * a SOCKS5 proxy (Transport, undici's connector), and the REST layer every client call goes
 * through (IncusApi): project-scoped paths, requests and their answers, errors, and the wait on
 * background operations.
 */
import { X509Certificate } from 'node:crypto';
import type net from 'node:net';
import tls from 'node:tls';
import type { Pool, buildConnector } from 'undici';
import { DialError, dial, tlsPeer } from '../common/dial.ts';
import { HarnessError, errorMessage } from '../common/errors.ts';
import { redact } from '../common/redact.ts';
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

export interface RequestSpec {
  body?: unknown;
  raw?: Buffer;
  headers?: Record<string, string>;
  query?: Record<string, string>;
  /** How long a background operation may run; the default suits image unpacking. */
  operationTimeoutMs?: number;
  operationDescription?: string;
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
export const DEFAULT_OPERATION_TIMEOUT_MS = 600_000;
/** Longest single server-side wait; Incus holds the request open until then. */
const WAIT_SLICE_S = 30;

/** sha256, lowercase hex, no colons: the form Incus itself prints. */
export function certificateFingerprint(cert: X509Certificate | { fingerprint256: string }): string {
  return cert.fingerprint256.replaceAll(':', '').toLowerCase();
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

export interface TransportSettings {
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

type Handshake = { ok: true; socket: tls.TLSSocket; peer?: X509Certificate } | { ok: false; error: unknown; peer?: X509Certificate };

/**
 * Opens verified TLS connections for undici. Verification is never switched off: either the
 * pinned PEM is the only trust anchor, or (fingerprint pin) the certificate read in a probe and
 * found to match the pin becomes the only trust anchor.
 */
export class Transport {
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
      const timer = setTimeout(() => finish({ ok: false, error: new Error(`no TLS handshake within ${this.s.timeoutMs} ms`), peer }), this.s.timeoutMs);
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

/**
 * The REST layer of an IncusClient: the project every request is scoped to, the settings its
 * errors name, and the connection pool its requests go through.
 */
export class IncusApi {
  readonly url: string;
  readonly project: string;
  protected readonly names: Record<IncusSettingName, string>;
  protected readonly timeoutMs: number;

  protected constructor(
    options: IncusClientOptions,
    names: Record<IncusSettingName, string>,
    protected readonly pool: Pool,
  ) {
    this.url = new URL(options.url).origin;
    this.project = options.project;
    this.names = names;
    this.timeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  }

  /** Path with the project (and any extra query) appended. */
  protected path(path: string, query: Record<string, string> = {}): string {
    const url = new URL(path, 'https://incus.invalid');
    for (const [key, value] of Object.entries(query)) url.searchParams.set(key, value);
    url.searchParams.set('project', this.project);
    return `${url.pathname}${url.search}`;
  }

  protected async send(method: string, path: string, spec: RequestSpec = {}, extraTimeoutMs = 0): Promise<RawResponse> {
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

  protected throwFor(method: string, path: string, response: RawResponse, query?: Record<string, string>): never {
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
  protected async callRaw(method: string, path: string): Promise<Buffer> {
    const response = await this.send(method, path);
    if (response.status !== 200) this.throwFor(method, path, response);
    return response.body;
  }

  /**
   * One API call: sync answers give their metadata, async ones are waited on and give the
   * finished operation; errors and failed operations throw IncusError.
   */
  protected async call(method: string, path: string, spec: RequestSpec = {}, extraTimeoutMs = 0): Promise<unknown> {
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
  protected async waitOperation(id: string, description: string, timeoutMs = DEFAULT_OPERATION_TIMEOUT_MS): Promise<IncusOperation> {
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
            const ended = await this.call('GET', `/1.0/operations/${encodeURIComponent(id)}`).then(
              (found) => found as IncusOperation,
              () => undefined,
            );
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
