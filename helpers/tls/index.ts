/**
 * TLS evidence for acceptance specs: what a server actually serves, whether it verifies
 * against the CA we trust, and offline checks on PEM material (chains, keys, SANs).
 *
 * Failure kinds follow helpers/common/errors.ts: a certificate that does not verify is a
 * product failure (TlsVerificationError, a plain Error), while not being able to reach the
 * server at all is a HarnessError.
 *
 * @peculiar/x509 is not used: its 2.2.0 build needs a Reflect metadata polyfill
 * (reflect-metadata / @abraham/reflection) that is not installed, and the few extensions we
 * need are read by the small DER reader below.
 */
import { X509Certificate, createDecipheriv, createHash, createHmac, createPrivateKey, createPublicKey } from 'node:crypto';
import type { DecipherGCM, KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type net from 'node:net';
import { Duplex } from 'node:stream';
import tls from 'node:tls';
import { dial, hostPort, parseSocksUrl } from '../common/dial.ts';
import { HarnessError, errorMessage } from '../common/errors.ts';
import { redact } from '../common/redact.ts';

export { X509Certificate };

// ---------------------------------------------------------------------------------------
// PEM and descriptions
// ---------------------------------------------------------------------------------------

/** Input that should hold certificates does not. Plain Error: the caller knows whose input it was. */
export class PemError extends Error {
  override readonly name = 'PemError';
  constructor(readonly source: string, message: string) {
    super(message);
  }
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** Every certificate in a PEM bundle, in file order. Never echoes the input (it may hold a key). */
export function parsePemChain(pem: string, source: string): X509Certificate[] {
  const blocks = pem.match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) {
    const hint = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(pem)
      ? ' (it holds a private key, not a certificate)'
      : pem.trim() === ''
        ? ' (it is empty)'
        : '';
    throw new PemError(source, `${source}: no PEM certificate found${hint}`);
  }
  return blocks.map((block, index) => {
    try {
      return new X509Certificate(block);
    } catch (error) {
      throw new PemError(
        source,
        `${source}: certificate ${index + 1} of ${blocks.length} is not a valid X.509 certificate: ${errorMessage(error)}`,
      );
    }
  });
}

/** SHA-256 over the DER, "AB:CD:…" (the form openssl and browsers show). */
export function fingerprint(cert: X509Certificate): string {
  return cert.fingerprint256.toUpperCase();
}

/** Node prints names one RDN per line; evidence wants them on one line. */
export function formatName(name: string): string {
  return name.split('\n').filter(Boolean).join(', ');
}

export function subjectOf(cert: X509Certificate): string {
  return formatName(cert.subject);
}

export interface CertDescription {
  subject: string;
  issuer: string;
  /** DNS names as-is; other kinds prefixed ("IP:10.0.0.1", "email:…", "URI:…"). */
  sans: string[];
  notBefore: string;
  notAfter: string;
  fingerprint: string;
  serial: string;
}

/** Public facts only, safe to attach to a report. */
export function describeCert(cert: X509Certificate): CertDescription {
  const facts = certFacts(cert);
  return {
    subject: subjectOf(cert),
    issuer: formatName(cert.issuer),
    sans: facts.sans.map((san) => (san.kind === 'DNS' ? san.value : `${san.kind}:${san.value}`)),
    notBefore: facts.notBefore.toISOString(),
    notAfter: facts.notAfter.toISOString(),
    fingerprint: fingerprint(cert),
    serial: cert.serialNumber.toUpperCase(),
  };
}

// ---------------------------------------------------------------------------------------
// Offline checks
// ---------------------------------------------------------------------------------------

export function validityAt(cert: X509Certificate, at: Date = new Date()): { ok: boolean; reason?: string } {
  const { notBefore, notAfter } = certFacts(cert);
  if (at.getTime() < notBefore.getTime()) {
    return { ok: false, reason: `is not valid before ${notBefore.toISOString()} (checked at ${at.toISOString()})` };
  }
  if (at.getTime() > notAfter.getTime()) {
    return { ok: false, reason: `expired at ${notAfter.toISOString()} (checked at ${at.toISOString()})` };
  }
  return { ok: true };
}

/**
 * Does a DNS SAN cover `name`? RFC 6125 wildcards only: "*" as the whole left-most label,
 * matching exactly one label, with at least two labels after it. Case-insensitive; a
 * trailing dot is ignored. A SAN equal to `name` (even "*.x.y") always matches.
 */
export function sanCovers(cert: X509Certificate, name: string): boolean {
  const wanted = normaliseDnsName(name);
  if (!wanted) return false;
  return certFacts(cert).sans.some((san) => san.kind === 'DNS' && dnsPatternCovers(san.value, wanted));
}

function normaliseDnsName(name: string): string {
  return name.trim().toLowerCase().replace(/\.$/, '');
}

function dnsPatternCovers(pattern: string, name: string): boolean {
  const san = normaliseDnsName(pattern);
  if (!san) return false;
  if (san === name) return true;
  const sanLabels = san.split('.');
  const nameLabels = name.split('.');
  if (sanLabels[0] !== '*' || sanLabels.length < 3) return false;
  if (sanLabels.slice(1).some((label) => label === '' || label.includes('*'))) return false;
  if (nameLabels.length !== sanLabels.length || nameLabels.some((label) => label === '')) return false;
  return nameLabels.slice(1).join('.') === sanLabels.slice(1).join('.');
}

/**
 * Does the private key belong to the certificate? Compares the SPKI DER derived from the key
 * with the certificate's. Throws a HarnessError, naming no key material, if the key cannot
 * be read at all (encrypted, garbage).
 */
export function keyMatchesCert(keyPem: string, cert: X509Certificate): boolean {
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (error) {
    const code = (error as { code?: string }).code ?? 'unknown error';
    throw new HarnessError(`could not read the private key (${code}); expected an unencrypted PEM private key`);
  }
  const fromKey = createPublicKey(key).export({ type: 'spki', format: 'der' });
  const fromCert = cert.publicKey.export({ type: 'spki', format: 'der' });
  if (fromKey.equals(fromCert)) return true;
  // An EC point may be encoded compressed in the certificate: let OpenSSL compare the keys themselves.
  if (key.asymmetricKeyType !== cert.publicKey.asymmetricKeyType) return false;
  try {
    return cert.checkPrivateKey(key);
  } catch {
    return false;
  }
}

export type ChainVerdict = { ok: true; path: X509Certificate[] } | { ok: false; reason: string };

const MAX_PATH_LENGTH = 10;

/**
 * Builds a path leaf → intermediates (taken from `chain`, in any order) → one of `roots`,
 * checking names, signatures, CA constraints and validity at `at`. On failure, reports the
 * problem found furthest along any candidate path, since that is the most specific one.
 */
export function verifyChain(chain: X509Certificate[], roots: X509Certificate[], at: Date = new Date()): ChainVerdict {
  const leaf = chain[0];
  if (!leaf) return { ok: false, reason: 'the chain is empty' };
  if (roots.length === 0) return { ok: false, reason: 'no trusted roots were given' };
  const leafName = subjectOf(leaf);
  const leafValidity = validityAt(leaf, at);
  if (!leafValidity.ok) return { ok: false, reason: `leaf ${leafName} ${leafValidity.reason}` };
  if (roots.some((root) => root.raw.equals(leaf.raw))) return { ok: true, path: [leaf] };

  const pool = chain.slice(1);
  let best = { depth: -1, reason: '' };
  const note = (depth: number, reason: string): void => {
    if (depth > best.depth) best = { depth, reason };
  };

  const extend = (path: X509Certificate[]): X509Certificate[] | undefined => {
    const current = path[path.length - 1]!;
    const role = path.length === 1 ? 'leaf' : 'intermediate';
    if (path.length > MAX_PATH_LENGTH) {
      note(path.length, `no path from ${leafName} to a trusted root within ${MAX_PATH_LENGTH} certificates`);
      return undefined;
    }
    const anchors = roots.filter((root) => root.subject === current.issuer);
    for (const root of anchors) {
      const problem = issuerProblem(current, role, root, 'trusted root', path, at);
      if (!problem) return [...path, root];
      note(path.length, problem);
    }
    const candidates = pool.filter((cert) => cert.subject === current.issuer && !path.includes(cert));
    for (const candidate of candidates) {
      const problem = issuerProblem(current, role, candidate, 'intermediate', path, at);
      if (problem) {
        note(path.length, problem);
        continue;
      }
      const found = extend([...path, candidate]);
      if (found) return found;
    }
    if (anchors.length === 0 && candidates.length === 0) {
      const detail =
        current.subject === current.issuer
          ? `${role} ${subjectOf(current)} is self-signed but is not a trusted root`
          : `issuer ${formatName(current.issuer)} of ${role} ${subjectOf(current)} not found ` +
            '(neither in the chain nor among the trusted roots)';
      note(path.length, `no path from ${leafName} to a trusted root; ${detail}`);
    }
    return undefined;
  };

  const path = extend([leaf]);
  return path ? { ok: true, path } : { ok: false, reason: best.reason };
}

/** Why `issuer` cannot be the next certificate above `child` in `path`, or undefined if it can. */
function issuerProblem(
  child: X509Certificate,
  childRole: string,
  issuer: X509Certificate,
  issuerRole: 'intermediate' | 'trusted root',
  path: X509Certificate[],
  at: Date,
): string | undefined {
  const childName = `${childRole} ${subjectOf(child)}`;
  const issuerName = `${issuerRole} ${subjectOf(issuer)}`;
  let signed = false;
  try {
    signed = child.verify(issuer.publicKey);
  } catch {
    signed = false;
  }
  if (!signed) return `the signature on ${childName} does not verify with the key of ${issuerName} (same name, different key)`;
  const facts = certFacts(issuer);
  // A v1 trust anchor carries no basicConstraints; only an explicit CA:FALSE disqualifies a root.
  const isCa = issuerRole === 'trusted root' ? facts.basicConstraints?.ca !== false : facts.basicConstraints?.ca === true;
  if (!isCa) return `${issuerName} is not a CA (basicConstraints CA:TRUE missing) but issued ${childName}`;
  if (facts.keyUsage !== undefined && !facts.keyUsage.keyCertSign) {
    return `${issuerName} may not sign certificates (keyUsage lacks keyCertSign) but issued ${childName}`;
  }
  const pathLength = facts.basicConstraints?.pathLength;
  const intermediatesBelow = path.length - 1;
  if (pathLength !== undefined && intermediatesBelow > pathLength) {
    return `${issuerName} allows ${pathLength} intermediate(s) below it (pathlen) but has ${intermediatesBelow}`;
  }
  const validity = validityAt(issuer, at);
  if (!validity.ok) return `${issuerName} ${validity.reason}`;
  return undefined;
}

// ---------------------------------------------------------------------------------------
// Certificate facts from DER (SANs, basic constraints, key usage, validity)
// ---------------------------------------------------------------------------------------

interface San {
  kind: 'DNS' | 'IP' | 'email' | 'URI' | 'other';
  value: string;
}

interface CertFacts {
  sans: San[];
  basicConstraints?: { ca: boolean; pathLength?: number };
  keyUsage?: { keyCertSign: boolean };
  notBefore: Date;
  notAfter: Date;
}

interface Tlv {
  tag: number;
  content: Buffer;
  next: number;
}

function readTlv(buffer: Buffer, offset: number): Tlv {
  const tag = buffer[offset];
  let length = buffer[offset + 1];
  if (tag === undefined || length === undefined) throw new Error('truncated DER');
  let cursor = offset + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 4) throw new Error('unsupported DER length');
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + buffer[cursor++]!;
  }
  if (cursor + length > buffer.length) throw new Error('truncated DER');
  return { tag, content: buffer.subarray(cursor, cursor + length), next: cursor + length };
}

function readChildren(content: Buffer): Tlv[] {
  const children: Tlv[] = [];
  for (let offset = 0; offset < content.length; ) {
    const child = readTlv(content, offset);
    children.push(child);
    offset = child.next;
  }
  return children;
}

const OID_SUBJECT_ALT_NAME = '551d11';
const OID_BASIC_CONSTRAINTS = '551d13';
const OID_KEY_USAGE = '551d0f';

const factsCache = new WeakMap<X509Certificate, CertFacts>();

function certFacts(cert: X509Certificate): CertFacts {
  const cached = factsCache.get(cert);
  if (cached) return cached;
  const certificate = readTlv(cert.raw, 0);
  const tbs = readChildren(readChildren(certificate.content)[0]!.content);
  // tbsCertificate: [0] version?, serial, signature, issuer, validity, subject, spki, [1]?, [2]?, [3] extensions?
  const fields = tbs[0]?.tag === 0xa0 ? tbs.slice(1) : tbs;
  const validity = readChildren(fields[3]!.content);
  const facts: CertFacts = {
    sans: [],
    notBefore: derTime(validity[0]!),
    notAfter: derTime(validity[1]!),
  };
  const extensions = fields.find((field) => field.tag === 0xa3);
  if (extensions) {
    for (const extension of readChildren(readChildren(extensions.content)[0]!.content)) {
      const parts = readChildren(extension.content);
      const oid = parts[0]!.content.toString('hex');
      const value = parts[parts.length - 1]!.content;
      if (oid === OID_SUBJECT_ALT_NAME) facts.sans = readSans(value);
      else if (oid === OID_BASIC_CONSTRAINTS) facts.basicConstraints = readBasicConstraints(value);
      else if (oid === OID_KEY_USAGE) facts.keyUsage = readKeyUsage(value);
    }
  }
  factsCache.set(cert, facts);
  return facts;
}

function derTime(tlv: Tlv): Date {
  const text = tlv.content.toString('latin1');
  // UTCTime YYMMDDHHMMSSZ (years 50–99 are 19xx) or GeneralizedTime YYYYMMDDHHMMSSZ.
  const shape = tlv.tag === 0x17 ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/ : /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/;
  const match = shape.exec(text);
  if (!match) throw new Error(`unsupported certificate time ${JSON.stringify(text)}`);
  const [, y, mo, d, h, mi, s] = match.map(Number) as [number, number, number, number, number, number, number];
  const year = tlv.tag === 0x17 ? (y >= 50 ? 1900 + y : 2000 + y) : y;
  return new Date(Date.UTC(year, mo - 1, d, h, mi, s));
}

function readSans(value: Buffer): San[] {
  return readChildren(readTlv(value, 0).content).map((name): San => {
    switch (name.tag) {
      case 0x82:
        return { kind: 'DNS', value: name.content.toString('latin1') };
      case 0x87:
        return { kind: 'IP', value: formatIp(name.content) };
      case 0x81:
        return { kind: 'email', value: name.content.toString('latin1') };
      case 0x86:
        return { kind: 'URI', value: name.content.toString('latin1') };
      default:
        return { kind: 'other', value: `[${name.tag & 0x1f}]` };
    }
  });
}

function formatIp(bytes: Buffer): string {
  if (bytes.length === 4) return [...bytes].join('.');
  if (bytes.length === 16) {
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
    return groups.join(':');
  }
  return bytes.toString('hex');
}

function readBasicConstraints(value: Buffer): { ca: boolean; pathLength?: number } {
  const result: { ca: boolean; pathLength?: number } = { ca: false };
  for (const part of readChildren(readTlv(value, 0).content)) {
    if (part.tag === 0x01) result.ca = part.content[0] !== 0;
    if (part.tag === 0x02) result.pathLength = part.content.reduce((n, byte) => n * 256 + byte, 0);
  }
  return result;
}

function readKeyUsage(value: Buffer): { keyCertSign: boolean } {
  const bits = readTlv(value, 0).content; // first byte counts unused bits
  return { keyCertSign: ((bits[1] ?? 0) & 0x04) !== 0 };
}

// ---------------------------------------------------------------------------------------
// Fetching the served chain
// ---------------------------------------------------------------------------------------

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
      (cert, i) =>
        `[${i}] ${subjectOf(cert)} issued by ${formatName(cert.issuer)}, valid until ${cert.validTo}, SHA-256 ${fingerprint(cert)}`,
    );
    const shown = list.length ? ` The server presented: ${list.join('; ')}.` : '';
    super(
      redact(
        `TLS verification of ${hostPort(host, port)} (servername ${servername}) failed with ${code}: ${meaning} (${detail}).${shown}`,
      ),
    );
  }
}

/** Codes that mean "the certificate is wrong", as opposed to "we could not talk to the server". */
const VERIFY_MEANINGS: Record<string, string> = {
  UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    "the served chain does not lead to the trusted root: the leaf's issuer was neither served nor trusted",
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
 * Connects (directly or through SOCKS5), handshakes with SNI = servername and verification on,
 * and returns the chain the server presented, leaf first.
 *
 * Why not just getPeerCertificate(true)? Node builds that list by matching issuers among the
 * sent certificates and then appends issuers from the `ca` store, so the trusted root shows up
 * whether or not the server sent it, and unrelated extra certificates are dropped. To report
 * what was really served, the server's Certificate handshake message is read from the wire:
 * in clear for TLS 1.2, decrypted with the handshake secret from the socket's own 'keylog'
 * event for TLS 1.3 (kept in memory only, never logged).
 */
export async function inspectServedChain(options: FetchServedChainOptions): Promise<ServedChain> {
  const { host, port, servername } = options;
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

function handshake(
  raw: net.Socket,
  options: FetchServedChainOptions,
  roots: X509Certificate[],
  timeoutMs: number,
): Promise<ServedChain> {
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
      host,
      servername,
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

// ---------------------------------------------------------------------------------------
// Reading the server's Certificate message from the captured bytes
// ---------------------------------------------------------------------------------------

const HANDSHAKE_SERVER_HELLO = 2;
const HANDSHAKE_CERTIFICATE = 11;
const RECORD_CHANGE_CIPHER_SPEC = 20;
const RECORD_ALERT = 21;
const RECORD_HANDSHAKE = 22;
const RECORD_APPLICATION_DATA = 23;
/** RFC 8446 4.1.3: a ServerHello whose random is SHA-256("HelloRetryRequest") is a HelloRetryRequest. */
const HELLO_RETRY_RANDOM = createHash('sha256').update('HelloRetryRequest').digest();

const TLS13_SUITES: Record<number, { cipher: string; keyLength: number; hash: string }> = {
  0x1301: { cipher: 'aes-128-gcm', keyLength: 16, hash: 'sha256' },
  0x1302: { cipher: 'aes-256-gcm', keyLength: 32, hash: 'sha384' },
  0x1303: { cipher: 'chacha20-poly1305', keyLength: 32, hash: 'sha256' },
};

/** Accumulates handshake bytes across records and yields whole messages. */
class HandshakeStream {
  private pending = Buffer.alloc(0);
  push(bytes: Buffer): Array<{ type: number; body: Buffer }> {
    this.pending = Buffer.concat([this.pending, bytes]);
    const messages: Array<{ type: number; body: Buffer }> = [];
    while (this.pending.length >= 4) {
      const length = this.pending.readUIntBE(1, 3);
      if (this.pending.length < 4 + length) break;
      messages.push({ type: this.pending[0]!, body: this.pending.subarray(4, 4 + length) });
      this.pending = this.pending.subarray(4 + length);
    }
    return messages;
  }
}

/**
 * The certificate list of the server's Certificate message, or undefined if it cannot be read
 * (unknown suite, compressed certificates, truncated capture): the caller then falls back.
 */
function readServerCertificates(bytes: Buffer, keylog: Buffer[]): X509Certificate[] | undefined {
  try {
    const plain = new HandshakeStream();
    let tls13 = false;
    let encrypted: { stream: HandshakeStream; key: Buffer; iv: Buffer; cipher: string; sequence: bigint } | undefined;
    for (let offset = 0; offset + 5 <= bytes.length; ) {
      const type = bytes[offset]!;
      const length = bytes.readUInt16BE(offset + 3);
      if (offset + 5 + length > bytes.length) return undefined;
      const header = bytes.subarray(offset, offset + 5);
      const body = bytes.subarray(offset + 5, offset + 5 + length);
      offset += 5 + length;
      if (type === RECORD_CHANGE_CIPHER_SPEC) {
        // TLS 1.3: a compatibility no-op. TLS 1.2: what follows is encrypted, and the
        // Certificate message should have come before it.
        if (tls13) continue;
        return undefined;
      }
      if (type === RECORD_ALERT) return undefined;
      if (type === RECORD_HANDSHAKE && !encrypted) {
        for (const message of plain.push(body)) {
          if (message.type === HANDSHAKE_SERVER_HELLO) {
            const hello = readServerHello(message.body);
            tls13 = hello.tls13;
            if (hello.tls13 && !hello.retry) {
              encrypted = { stream: new HandshakeStream(), sequence: 0n, ...handshakeKeys(hello.suite, keylog) };
            }
          } else if (message.type === HANDSHAKE_CERTIFICATE) {
            return readCertificateList(message.body, false);
          }
        }
        continue;
      }
      if (type === RECORD_APPLICATION_DATA && encrypted) {
        const inner = decryptRecord(encrypted, header, body);
        encrypted.sequence += 1n;
        if (inner.type !== RECORD_HANDSHAKE) continue;
        for (const message of encrypted.stream.push(inner.content)) {
          if (message.type === HANDSHAKE_CERTIFICATE) return readCertificateList(message.body, true);
        }
      }
    }
    return undefined;
  } catch {
    return undefined;
  }
}

function readServerHello(body: Buffer): { suite: number; tls13: boolean; retry: boolean } {
  let offset = 2; // legacy_version
  const random = body.subarray(offset, offset + 32);
  offset += 32;
  offset += 1 + body[offset]!; // legacy_session_id
  const suite = body.readUInt16BE(offset);
  offset += 3; // cipher_suite, legacy_compression_method
  let tls13 = false;
  if (offset + 2 <= body.length) {
    const end = offset + 2 + body.readUInt16BE(offset);
    offset += 2;
    while (offset + 4 <= end) {
      const extension = body.readUInt16BE(offset);
      const length = body.readUInt16BE(offset + 2);
      offset += 4;
      // supported_versions carrying TLS 1.3
      if (extension === 0x002b && length === 2 && body.readUInt16BE(offset) === 0x0304) tls13 = true;
      offset += length;
    }
  }
  return { suite, tls13, retry: random.equals(HELLO_RETRY_RANDOM) };
}

function handshakeKeys(suite: number, keylog: Buffer[]): { key: Buffer; iv: Buffer; cipher: string } {
  const params = TLS13_SUITES[suite];
  if (!params) throw new Error(`unsupported TLS 1.3 suite 0x${suite.toString(16)}`);
  const line = keylog
    .map((entry) => entry.toString('latin1').trim())
    .find((entry) => entry.startsWith('SERVER_HANDSHAKE_TRAFFIC_SECRET '));
  if (!line) throw new Error('no server handshake secret in the key log');
  const secret = Buffer.from(line.split(' ')[2] ?? '', 'hex');
  return {
    key: expandLabel(params.hash, secret, 'key', params.keyLength),
    iv: expandLabel(params.hash, secret, 'iv', 12),
    cipher: params.cipher,
  };
}

/** RFC 8446 7.1 HKDF-Expand-Label with an empty context. */
function expandLabel(hash: string, secret: Buffer, label: string, length: number): Buffer {
  const fullLabel = Buffer.from(`tls13 ${label}`, 'latin1');
  const info = Buffer.concat([Buffer.from([length >> 8, length & 0xff, fullLabel.length]), fullLabel, Buffer.from([0])]);
  const blocks: Buffer[] = [];
  let previous = Buffer.alloc(0);
  for (let counter = 1, total = 0; total < length; counter++) {
    previous = createHmac(hash, secret).update(previous).update(info).update(Buffer.from([counter])).digest();
    blocks.push(previous);
    total += previous.length;
  }
  return Buffer.concat(blocks).subarray(0, length);
}

function decryptRecord(
  keys: { key: Buffer; iv: Buffer; cipher: string; sequence: bigint },
  header: Buffer,
  body: Buffer,
): { type: number; content: Buffer } {
  const nonce = Buffer.from(keys.iv);
  const sequence = Buffer.alloc(8);
  sequence.writeBigUInt64BE(keys.sequence);
  for (let i = 0; i < 8; i++) nonce[4 + i]! ^= sequence[i]!;
  // GCM and ChaCha20-Poly1305 share the AEAD calls used here.
  const decipher = createDecipheriv(keys.cipher as 'aes-128-gcm', keys.key, nonce, { authTagLength: 16 }) as DecipherGCM;
  decipher.setAAD(header);
  decipher.setAuthTag(body.subarray(body.length - 16));
  const inner = Buffer.concat([decipher.update(body.subarray(0, body.length - 16)), decipher.final()]);
  let end = inner.length;
  while (end > 0 && inner[end - 1] === 0) end--; // padding
  if (end === 0) throw new Error('empty TLS inner plaintext');
  return { type: inner[end - 1]!, content: inner.subarray(0, end - 1) };
}

function readCertificateList(body: Buffer, tls13: boolean): X509Certificate[] {
  let offset = tls13 ? 1 + body[0]! : 0; // TLS 1.3: certificate_request_context
  const end = offset + 3 + body.readUIntBE(offset, 3);
  offset += 3;
  const certificates: X509Certificate[] = [];
  while (offset < end) {
    const length = body.readUIntBE(offset, 3);
    offset += 3;
    certificates.push(new X509Certificate(body.subarray(offset, offset + length)));
    offset += length;
    if (tls13) offset += 2 + body.readUInt16BE(offset); // per-certificate extensions
  }
  return certificates;
}

/** For callers that take either PEM text or a path to a PEM file. */
export function readPemInput(value: string): string {
  if (value.includes('-----BEGIN')) return value;
  try {
    return readFileSync(value, 'utf8');
  } catch (error) {
    throw new HarnessError(`could not read PEM file ${value}: ${errorMessage(error)}`);
  }
}
