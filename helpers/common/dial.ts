/**
 * The harness's one way to open a TCP stream: directly, or through a SOCKS5 proxy (names are
 * always resolved by the proxy, as socks5h:// would). One timeout covers the whole dial, and
 * every failure is a DialError that names the target, the proxy, the setting that configured
 * it, and the cause; only causes a retry can cure are transient.
 */
import net from 'node:net';
import { SocksClient } from 'socks';
import { ConfigError, HarnessError, errorMessage } from './errors.ts';
import { formatDuration } from './log.ts';
import { redact } from './redact.ts';

export interface SocksProxy {
  host: string;
  port: number;
  userId?: string;
  password?: string;
  /** For messages: never includes credentials. */
  label: string;
}

/** Where something listens: a host name or address, and a port. */
export interface Endpoint {
  host: string;
  port: number;
}

/** "host:port", with brackets around an IPv6 address. */
export function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * How a TLS client names its peer: `host` is what Node's checkServerIdentity checks the
 * certificate against (a DNS name, or an IP address against the certificate's IP SANs), and
 * `servername` (SNI) is sent only for a DNS name. RFC 6066 has no SNI for an address, and Node
 * warns DEP0123 when given one. Verification is the same either way.
 */
export function tlsPeer(name: string): { host: string; servername?: string } {
  const host = name.replace(/^\[(.*)\]$/, '$1');
  return net.isIP(host) ? { host } : { host, servername: host };
}

/** Reads socks5://[user:password@]host[:port]; a ConfigError naming `setting` otherwise. */
export function parseSocksUrl(value: string, setting = 'ACCEPT_SOCKS'): SocksProxy {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(setting, `SOCKS proxy ${JSON.stringify(redact(value))} is not a URL; expected socks5://host:port`);
  }
  if (url.protocol !== 'socks5:' && url.protocol !== 'socks5h:') {
    throw new ConfigError(setting, `SOCKS proxy must be socks5://host:port; got protocol ${url.protocol}`);
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = url.port ? Number(url.port) : 1080;
  return {
    host,
    port,
    userId: url.username ? decodeURIComponent(url.username) : undefined,
    password: url.password ? decodeURIComponent(url.password) : undefined,
    label: `${url.protocol}//${hostPort(host, port)}`,
  };
}

export interface DialOptions {
  host: string;
  port: number;
  /** socks5:// URL; unset dials directly. */
  socks?: string;
  /** The setting the proxy URL came from, for messages. Default ACCEPT_SOCKS. */
  socksSetting?: string;
  /** The setting that names the target, when there is one (e.g. ACCEPT_INCUS_URL). */
  targetSetting?: string;
  /** How messages name the target, e.g. "SSH at host:22". Default "host:port". */
  what?: string;
  /** Budget for the whole dial: proxy, SOCKS handshake, target. */
  timeoutMs: number;
}

export type DialFault =
  | 'proxy-url'
  | 'proxy-refused'
  | 'proxy-unreachable'
  | 'proxy-auth'
  | 'proxy-protocol'
  | 'socks-reply'
  | 'target-refused'
  | 'target-unreachable'
  | 'reset'
  | 'timeout'
  | 'dns'
  | 'other';

export class DialError extends HarnessError {
  override readonly name: string = 'DialError';
  constructor(
    readonly fault: DialFault,
    /** "host:port" dialled. */
    readonly target: string,
    /** The proxy's label (no credentials), when one was used. */
    readonly proxy: string | undefined,
    /** The setting most likely at fault, when there is one. */
    readonly setting: string | undefined,
    message: string,
    options: { cause?: unknown; transient: boolean },
  ) {
    super(redact(message), options);
  }
}

/** SOCKS5 reply codes (RFC 1928 6), as the socks package names them; transient = worth retrying. */
const SOCKS_REPLIES: Record<string, { code: number; meaning: string; transient: boolean }> = {
  Failure: { code: 1, meaning: 'general failure', transient: true },
  NotAllowed: { code: 2, meaning: 'connection not allowed by the proxy rules', transient: false },
  NetworkUnreachable: { code: 3, meaning: 'network unreachable', transient: true },
  HostUnreachable: { code: 4, meaning: 'host unreachable', transient: true },
  ConnectionRefused: { code: 5, meaning: 'connection refused by the target', transient: true },
  TTLExpired: { code: 6, meaning: 'TTL expired', transient: true },
  CommandNotSupported: { code: 7, meaning: 'command not supported', transient: false },
  AddressNotSupported: { code: 8, meaning: 'address type not supported', transient: false },
};

const UNREACHABLE = new Set(['EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN']);
const DNS = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_NONAME']);

/** Opens a TCP stream to host:port, directly or through `socks`. Throws DialError only. */
export async function dial(options: DialOptions): Promise<net.Socket> {
  const { host, port } = options;
  const target = hostPort(host, port);
  const what = `${options.what ?? target}${options.targetSetting ? ` (${options.targetSetting})` : ''}`;
  const deadline = Date.now() + options.timeoutMs;
  const budget = formatDuration(options.timeoutMs);

  if (!options.socks) {
    const fail = (fault: DialFault, why: string, transient: boolean, cause?: unknown): DialError =>
      new DialError(fault, target, undefined, options.targetSetting, `could not reach ${what}: ${why}`, { cause, transient });
    try {
      return await connectTcp(host, port, deadline);
    } catch (error) {
      const code = errorCode(error);
      if (code === 'ETIMEDOUT') throw fail('timeout', `timed out after ${budget}`, false, error);
      if (code === 'ECONNREFUSED')
        throw fail('target-refused', 'it refused the connection (ECONNREFUSED); is the service running and the port right?', true, error);
      if (code === 'ECONNRESET') throw fail('reset', 'the connection was reset (ECONNRESET)', true, error);
      if (UNREACHABLE.has(code)) throw fail('target-unreachable', `it is unreachable (${code})`, true, error);
      if (DNS.has(code)) throw fail('dns', `cannot resolve ${host} (${code})`, code === 'EAI_AGAIN', error);
      throw fail('other', errorMessage(error), false, error);
    }
  }

  const socksSetting = options.socksSetting ?? 'ACCEPT_SOCKS';
  let proxy: SocksProxy;
  try {
    proxy = parseSocksUrl(options.socks, socksSetting);
  } catch (error) {
    throw new DialError('proxy-url', target, undefined, socksSetting, `could not reach ${what}: ${errorMessage(error)}`, { cause: error, transient: false });
  }
  const via = ` through SOCKS5 proxy ${proxy.label} (${socksSetting})`;
  const fail = (fault: DialFault, why: string, transient: boolean, cause: unknown, setting: string | undefined = socksSetting): DialError =>
    new DialError(fault, target, proxy.label, setting, `could not reach ${what}${via}: ${why}`, { cause, transient });

  // Reach the proxy on our own first, so "proxy down" and "target down" read differently.
  let socket: net.Socket;
  try {
    socket = await connectTcp(proxy.host, proxy.port, deadline);
  } catch (error) {
    const code = errorCode(error);
    if (code === 'ETIMEDOUT') throw fail('timeout', `timed out after ${budget} connecting to the proxy`, false, error);
    // The proxy is the harness's own way in: no wait brings a dead one back, so this is final.
    if (code === 'ECONNREFUSED') throw fail('proxy-refused', 'the proxy refused the connection (ECONNREFUSED); is it running?', false, error);
    if (code === 'ECONNRESET') throw fail('reset', 'the proxy reset the connection (ECONNRESET)', true, error);
    if (UNREACHABLE.has(code)) throw fail('proxy-unreachable', `the proxy is unreachable (${code})`, false, error);
    if (DNS.has(code)) throw fail('dns', `cannot resolve the proxy's host ${proxy.host} (${code})`, code === 'EAI_AGAIN', error);
    throw fail('other', `could not connect to the proxy: ${errorMessage(error)}`, false, error);
  }
  try {
    const established = await SocksClient.createConnection({
      existing_socket: socket,
      proxy: { host: proxy.host, port: proxy.port, type: 5, userId: proxy.userId, password: proxy.password },
      command: 'connect',
      destination: { host, port },
      timeout: remaining(deadline),
    });
    return established.socket;
  } catch (error) {
    socket.destroy();
    const message = errorMessage(error);
    const reply = /rejected connection - (\w+)/.exec(message)?.[1];
    if (reply !== undefined) {
      const known = SOCKS_REPLIES[reply];
      const meaning = known ? `SOCKS reply ${known.code}, ${known.meaning}` : `SOCKS reply ${reply}`;
      const fault: DialFault = known?.code === 5 ? 'target-refused' : known && known.code >= 3 && known.code <= 4 ? 'target-unreachable' : 'socks-reply';
      throw fail(
        fault,
        `the proxy could not connect to the target (${meaning})`,
        known?.transient ?? false,
        error,
        known?.transient ? options.targetSetting : socksSetting,
      );
    }
    if (/timed out/i.test(message)) throw fail('timeout', `timed out after ${budget} in the SOCKS5 handshake`, false, error);
    if (/Authentication failed|no accepted authentication/i.test(message)) {
      throw fail('proxy-auth', `the proxy refused our authentication (${message}); check the user and password in ${socksSetting}`, false, error);
    }
    if (/Socket closed|ECONNRESET|EPIPE/.test(message))
      throw fail('reset', `the proxy closed the connection during the SOCKS5 handshake (${message})`, true, error);
    throw fail('proxy-protocol', `the SOCKS5 handshake failed (${message}); is ${proxy.label} a SOCKS5 proxy?`, false, error);
  }
}

const remaining = (deadline: number): number => Math.max(1, deadline - Date.now());

function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : errorMessage(error);
}

function connectTcp(host: string, port: number, deadline: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' }));
    }, remaining(deadline));
    const onError = (error: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      resolve(socket);
    });
  });
}

/** A loopback port free at this instant, for a listener of our own (a proxy device, a stand-in). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}
