/**
 * HTTPS requests to cc-ci's web faces (forge, Drone, dashboard, /hook), through the SOCKS5
 * proxy like every other connection of the harness, verified against the configured roots only.
 * Names under the instance's domain are dialled at the host under test (its published :443),
 * with the name as SNI and Host, exactly as the gateway would pass them through.
 */
import type { IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { dial, tlsPeer } from '../common/dial.ts';
import { HarnessError, errorMessage, isTransient } from '../common/errors.ts';
import { redact } from '../common/redact.ts';
import { WaitTimeoutError, waitFor } from '../common/wait.ts';

export type { Endpoint } from '../common/dial.ts';
import type { Endpoint } from '../common/dial.ts';

export interface HttpsTransport {
  /** socks5:// URL; unset dials directly (unit tests only: every target sets a proxy). */
  socks?: string;
  /** PEM of the only roots trusted. */
  ca: string;
  /** Where to dial for a host name, when not the name itself (the host under test for its domain). */
  dial?: (hostname: string) => Endpoint | undefined;
  timeoutMs?: number;
  /**
   * How long one request rides out a restarting service (refused, reset, 502/503/504) before
   * its caller sees the failure; unset: never. A rebuild restarts cc-ci's faces under the specs.
   */
  settleMs?: number;
}

export interface HttpsResponse {
  url: string;
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  text: string;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

/** Dials names equal to `domain` or under it at `endpoint`; anything else by its own name. */
export function dialDomainAt(domain: string, endpoint: Endpoint): (hostname: string) => Endpoint | undefined {
  const suffix = `.${domain.toLowerCase()}`;
  return (hostname) => {
    const name = hostname.toLowerCase();
    return name === domain.toLowerCase() || name.endsWith(suffix) ? endpoint : undefined;
  };
}

/** Gateway answers a retry may cure: the service behind the proxy is (re)starting. */
export function isRetryableStatus(status: number): boolean {
  return status === 502 || status === 503 || status === 504;
}

/** One request; never throws for an HTTP status, only when no answer could be had. */
export async function httpsRequest(transport: HttpsTransport, url: string, options: RequestOptions = {}): Promise<HttpsResponse> {
  if (!transport.settleMs) return requestOnce(transport, url, options);
  let gateway: HttpsResponse | undefined;
  const what = `${options.method ?? 'GET'} ${redact(url)}`;
  try {
    return await waitFor<HttpsResponse>(
      `${what} to get past a restarting service`,
      async () => {
        const response = await requestOnce(transport, url, options);
        gateway = isRetryableStatus(response.status) ? response : undefined;
        return gateway ? { done: false as const, saw: `${response.status} from the gateway` } : response;
      },
      { timeoutMs: transport.settleMs, intervalMs: 500 },
    );
  } catch (error) {
    // Still a gateway answer at the end: the caller names it as it would any status.
    if (error instanceof WaitTimeoutError && gateway) return gateway;
    throw error;
  }
}

const contexts = new Map<string, tls.SecureContext>();

/**
 * The TLS context that trusts exactly these roots, made once per PEM: a build's status is polled
 * twice a second, and parsing the roots anew for every connection cost more than the handshake.
 */
function trusting(ca: string): tls.SecureContext {
  let context = contexts.get(ca);
  if (!context) {
    context = tls.createSecureContext({ ca });
    contexts.set(ca, context);
  }
  return context;
}

async function requestOnce(transport: HttpsTransport, url: string, options: RequestOptions): Promise<HttpsResponse> {
  const parsed = new URL(url);
  if (parsed.protocol !== 'https:') throw new HarnessError(`${url}: only https:// URLs are fetched (TLS is always verified)`);
  const timeoutMs = transport.timeoutMs ?? 20_000;
  const port = parsed.port ? Number(parsed.port) : 443;
  const target = transport.dial?.(parsed.hostname) ?? { host: parsed.hostname, port };
  const raw = await dial({ ...target, socks: transport.socks, timeoutMs });
  const method = options.method ?? 'GET';
  const what = `${method} ${parsed.origin}${parsed.pathname}`;
  return new Promise((resolve, reject) => {
    // The URL's name is checked against the certificate; an address is sent without SNI (tlsPeer).
    const socket = tls.connect({ socket: raw, ...tlsPeer(parsed.hostname), secureContext: trusting(transport.ca), rejectUnauthorized: true });
    const body = options.body === undefined ? undefined : Buffer.from(options.body);
    const request = https.request(
      {
        method,
        host: parsed.hostname,
        port,
        path: `${parsed.pathname}${parsed.search}`,
        headers: { ...(body ? { 'Content-Length': String(body.length) } : {}), ...options.headers, Host: parsed.host, Connection: 'close' },
        createConnection: () => socket,
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          const bytes = Buffer.concat(chunks);
          resolve({ url, status: response.statusCode ?? 0, headers: response.headers, body: bytes, text: bytes.toString('utf8') });
        });
        response.on('error', (error) => reject(new HarnessError(redact(`${what}: the answer broke off: ${errorMessage(error)}`), { transient: true })));
      },
    );
    request.setTimeout(timeoutMs, () => request.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })));
    request.on('error', (error: Error & { code?: string }) => {
      socket.destroy();
      // A reset or a timeout may pass; a TLS verification failure never does.
      reject(
        new HarnessError(redact(`${what} via ${target.host}:${target.port} failed: ${error.code ? `${error.code}: ` : ''}${error.message}`), {
          cause: error,
          transient: isTransient(error),
        }),
      );
    });
    request.end(body);
  });
}

/** The body as JSON, or a HarnessError saying what came instead. */
export function jsonBody<T>(response: HttpsResponse): T {
  try {
    return JSON.parse(response.text) as T;
  } catch {
    throw new HarnessError(redact(`${response.url} answered ${response.status} with a body that is not JSON: ${response.text.slice(0, 200)}`));
  }
}
