/**
 * The chain a server serves: dialled (directly or through SOCKS5) by the common dialer,
 * handshaken with verification on, and read from the wire (wire.ts) so that it shows what was
 * sent, not what Node rebuilt. A chain that does not verify is a TlsVerificationError (a FAIL);
 * not reaching the server is a HarnessError.
 */
import type net from 'node:net';
import { Duplex } from 'node:stream';
import tls from 'node:tls';
import { dial, hostPort, parseSocksUrl, tlsPeer } from '../common/dial.ts';
import { HarnessError, errorMessage } from '../common/errors.ts';
import { redact } from '../common/redact.ts';
import { fingerprint, formatName, parsePemChain, subjectOf, X509Certificate } from './pem.ts';
import { readServerCertificates } from './wire.ts';

/** The server's certificate did not verify: a verdict about the product, not the harness. */
export class TlsVerificationError extends Error {
  override readonly name = 'TlsVerificationError';
  constructor(
    /** OpenSSL / Node code, e.g. UNABLE_TO_VERIFY_LEAF_SIGNATURE, ERR_TLS_CERT_ALTNAME_INVALID. */
    readonly code: string,
    readonly host: string,
    readonly port: number,
    readonly servername: string,
    /** What the server presented, when it could be read from the handshake. */
    readonly presented: X509Certificate[] | undefined,
    detail: string,
  ) {
    const meaning = VERIFY_MEANINGS[code] ?? 'the certificate was rejected';
    const list = (presented ?? []).map(
      (cert, i) => `[${i}] ${subjectOf(cert)} issued by ${formatName(cert.issuer)}, valid until ${cert.validTo}, SHA-256 ${fingerprint(cert)}`,
    );
    const shown = list.length ? ` The server presented: ${list.join('; ')}.` : '';
    super(redact(`TLS verification of ${hostPort(host, port)} (servername ${servername}) failed with ${code}: ${meaning} (${detail}).${shown}`));
  }
}

/** Codes that mean "the certificate is wrong", as opposed to "we could not talk to the server". */
const VERIFY_MEANINGS: Record<string, string> = {
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "the served chain does not lead to the trusted root: the leaf's issuer was neither served nor trusted",
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'the served chain does not lead to the trusted root: an issuer was neither served nor trusted',
  UNABLE_TO_GET_ISSUER_CERT: 'the served chain does not lead to the trusted root: an issuer certificate is missing',
  SELF_SIGNED_CERT_IN_CHAIN: 'the served chain ends in a self-signed root that is not the trusted root',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'the server presented a self-signed certificate that is not trusted',
  CERT_SIGNATURE_FAILURE: 'a signature in the served chain does not verify',
  UNABLE_TO_DECRYPT_CERT_SIGNATURE: 'a signature in the served chain cannot be checked',
  UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY: "an issuer's public key cannot be decoded",
  CERT_HAS_EXPIRED: 'a certificate in the served chain has expired',
  CERT_NOT_YET_VALID: 'a certificate in the served chain is not valid yet',
  ERROR_IN_CERT_NOT_BEFORE_FIELD: 'a certificate has a malformed notBefore date',
  ERROR_IN_CERT_NOT_AFTER_FIELD: 'a certificate has a malformed notAfter date',
  INVALID_CA: 'an issuing certificate in the chain is not a CA',
  PATH_LENGTH_EXCEEDED: "the chain is longer than an issuer's pathlen constraint allows",
  INVALID_PURPOSE: 'a certificate is not valid for TLS server authentication',
  CERT_UNTRUSTED: 'the root is not trusted for this purpose',
  CERT_REJECTED: 'the root is marked to reject this purpose',
  CERT_REVOKED: 'a certificate in the chain is revoked',
  CERT_CHAIN_TOO_LONG: 'the served chain is too long',
  HOSTNAME_MISMATCH: 'the certificate does not cover the servername',
  IP_ADDRESS_MISMATCH: 'the certificate does not cover the IP address',
  ERR_TLS_CERT_ALTNAME_INVALID: 'the certificate does not cover the servername',
};

export interface FetchServedChainOptions {
  host: string;
  port: number;
  /** SNI, and the name the certificate must cover. */
  servername: string;
  /** socks5://host:port (socks5h:// alike: names are always resolved by the proxy). */
  socks?: string;
  /** The setting `socks` came from, for messages. Default ACCEPT_SOCKS. */
  socksSetting?: string;
  /** PEM of the trusted root(s); the only trust used (the system store is not). */
  ca: string;
  /** Whole budget: proxy, TCP and TLS handshake. Default 15 s. */
  timeoutMs?: number;
}

export interface ServedChain {
  /** Leaf first, exactly as the server sent it (unless `source` is 'peer-chain'). */
  presented: X509Certificate[];
  /**
   * 'handshake': read from the server's Certificate message, so it is exactly what was sent.
   * 'peer-chain': fallback rebuilt from getPeerCertificate(true), with a trailing trusted root
   * removed; it cannot tell whether the server also sent that root.
   */
  source: 'handshake' | 'peer-chain';
  /** What Node verified, leaf → trusted root, from getPeerCertificate(true). */
  verifiedPath: X509Certificate[];
  protocol: string | null;
  cipher: string;
}

/**
 * Connects (directly or through SOCKS5), handshakes with SNI = servername (none when it is an IP
 * address) and verification on against servername, and returns the chain the server presented,
 * leaf first.
 *
 * Why not just getPeerCertificate(true)? Node builds that list by matching issuers among the
 * sent certificates and then appends issuers from the `ca` store, so the trusted root shows up
 * whether or not the server sent it, and unrelated extra certificates are dropped. To report
 * what was really served, the server's Certificate handshake message is read from the wire:
 * in clear for TLS 1.2, decrypted with the handshake secret from the socket's own 'keylog'
 * event for TLS 1.3 (kept in memory only, never logged).
 */
export async function inspectServedChain(options: FetchServedChainOptions): Promise<ServedChain> {
  const { host, port } = options;
  const timeoutMs = options.timeoutMs ?? 15_000;
  let roots: X509Certificate[];
  try {
    roots = parsePemChain(options.ca, 'trusted CA (ca)');
  } catch (error) {
    throw new HarnessError(errorMessage(error));
  }
  const deadline = Date.now() + timeoutMs;
  const raw = await dial({ host, port, socks: options.socks, socksSetting: options.socksSetting, timeoutMs });
  return handshake(raw, options, roots, Math.max(1, deadline - Date.now()));
}

/** The served chain, leaf first, as sent by the server. See inspectServedChain. */
export async function fetchServedChain(options: FetchServedChainOptions): Promise<X509Certificate[]> {
  return (await inspectServedChain(options)).presented;
}

/** Passes bytes through unchanged while recording what the server sent, for the handshake reader. */
function tapIncoming(raw: net.Socket, record: (chunk: Buffer) => void): Duplex {
  const tap = new Duplex({
    read() {
      raw.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      raw.write(chunk, (error) => callback(error ?? null));
    },
    final(callback) {
      raw.end();
      callback();
    },
    destroy(error, callback) {
      raw.destroy();
      callback(error);
    },
  });
  raw.on('data', (chunk: Buffer) => {
    record(chunk);
    if (!tap.push(chunk)) raw.pause();
  });
  raw.on('end', () => tap.push(null));
  raw.on('error', (error) => tap.destroy(error));
  raw.on('close', () => tap.destroy());
  return tap;
}

const CAPTURE_LIMIT = 1 << 20;

function handshake(raw: net.Socket, options: FetchServedChainOptions, roots: X509Certificate[], timeoutMs: number): Promise<ServedChain> {
  const { host, port, servername } = options;
  const via = options.socks ? ` through SOCKS5 proxy ${parseSocksUrl(options.socks, options.socksSetting).label}` : '';
  const target = `${hostPort(host, port)} (servername ${servername})${via}`;
  return new Promise((resolve, reject) => {
    const incoming: Buffer[] = [];
    let captured = 0;
    let recording = true;
    const keylog: Buffer[] = [];
    const tap = tapIncoming(raw, (chunk) => {
      if (!recording || captured + chunk.length > CAPTURE_LIMIT) return;
      incoming.push(chunk);
      captured += chunk.length;
    });
    // The TLS socket reports transport errors itself; this only keeps a late one from crashing.
    tap.on('error', () => {});
    let settled = false;
    const finish = (outcome: () => void): void => {
      if (settled) return;
      settled = true;
      recording = false;
      clearTimeout(timer);
      socket.destroy();
      outcome();
    };
    const presentedSoFar = (): X509Certificate[] | undefined => readServerCertificates(Buffer.concat(incoming), keylog);

    const socket = tls.connect({
      socket: tap,
      // The certificate is checked against `servername`, sent as SNI unless it is an address.
      ...tlsPeer(servername),
      ca: options.ca,
      // Verification is the point of this helper: never off, whatever NODE_TLS_REJECT_UNAUTHORIZED says.
      rejectUnauthorized: true,
    });
    socket.on('keylog', (line: Buffer) => keylog.push(line));
    const timer = setTimeout(() => {
      finish(() => reject(new HarnessError(`timed out after ${timeoutMs} ms during the TLS handshake with ${target}`)));
    }, timeoutMs);

    socket.once('secureConnect', () => {
      if (!socket.authorized) {
        const code = (socket.authorizationError as { code?: string } | undefined)?.code ?? 'UNAUTHORIZED';
        finish(() => reject(new TlsVerificationError(code, host, port, servername, presentedSoFar(), code)));
        return;
      }
      const verifiedPath = walkPeerChain(socket.getPeerCertificate(true));
      const peerLeaf = socket.getPeerX509Certificate();
      let presented = presentedSoFar();
      let source: ServedChain['source'] = 'handshake';
      if (!presented?.length || !peerLeaf || !presented[0]!.raw.equals(peerLeaf.raw)) {
        presented = withoutTrustedRoot(verifiedPath, roots);
        source = 'peer-chain';
      }
      const result: ServedChain = {
        presented,
        source,
        verifiedPath,
        protocol: socket.getProtocol(),
        cipher: socket.getCipher()?.standardName ?? 'unknown',
      };
      finish(() => resolve(result));
    });

    // `on`, not `once`: a late reset after settling must not become an unhandled 'error'.
    socket.on('error', (error: Error & { code?: string; reason?: string }) => {
      const code = error.code ?? '';
      if (Object.hasOwn(VERIFY_MEANINGS, code)) {
        const detail = error.reason ?? error.message;
        finish(() => reject(new TlsVerificationError(code, host, port, servername, presentedSoFar(), detail)));
      } else {
        const message = `TLS handshake with ${target} failed: ${code ? `${code}: ` : ''}${error.message}`;
        finish(() => reject(new HarnessError(redact(message), { cause: error })));
      }
    });
    socket.once('close', () => {
      finish(() => reject(new HarnessError(`${target} closed the connection during the TLS handshake`)));
    });
  });
}

function walkPeerChain(peer: tls.DetailedPeerCertificate): X509Certificate[] {
  const chain: X509Certificate[] = [];
  const seen = new Set<string>();
  let node: tls.DetailedPeerCertificate | undefined = peer;
  while (node?.raw && !seen.has(node.fingerprint256)) {
    seen.add(node.fingerprint256);
    const cert = new X509Certificate(node.raw);
    chain.push(cert);
    if (cert.subject === cert.issuer) break; // self-issued: the top
    node = node.issuerCertificate;
  }
  return chain;
}

function withoutTrustedRoot(chain: X509Certificate[], roots: X509Certificate[]): X509Certificate[] {
  const last = chain[chain.length - 1];
  if (chain.length > 1 && last && roots.some((root) => root.raw.equals(last.raw))) return chain.slice(0, -1);
  return chain;
}
