/**
 * PEM certificates and the public facts about them (names, SANs, validity, constraints), for
 * observations and for the offline checks in chain.ts. A PemError is a FAIL: the input that should
 * hold certificates does not.
 */
// @peculiar/x509 resolves its parsers through tsyringe, which needs the Reflect metadata API first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { HarnessError, errorMessage } from '../common/errors.ts';

export { X509Certificate };

/** Input that should hold certificates does not. Plain Error: the caller knows whose input it was. */
export class PemError extends Error {
  override readonly name = 'PemError';
  constructor(
    readonly source: string,
    message: string,
  ) {
    super(message);
  }
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** Every certificate in a PEM bundle, in file order. Never echoes the input (it may hold a key). */
export function parsePemChain(pem: string, source: string): X509Certificate[] {
  const blocks = pem.match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) {
    const hint = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(pem) ? ' (it holds a private key, not a certificate)' : pem.trim() === '' ? ' (it is empty)' : '';
    throw new PemError(source, `${source}: no PEM certificate found${hint}`);
  }
  return blocks.map((block, index) => {
    try {
      return new X509Certificate(block);
    } catch (error) {
      throw new PemError(source, `${source}: certificate ${index + 1} of ${blocks.length} is not a valid X.509 certificate: ${errorMessage(error)}`);
    }
  });
}

/** SHA-256 over the DER, "AB:CD:…" (the form openssl and browsers show). */
export function fingerprint(cert: X509Certificate): string {
  return cert.fingerprint256.toUpperCase();
}

/** Node prints names one RDN per line; an observation wants them on one line. */
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

/** For callers that take either PEM text or a path to a PEM file. */
export function readPemInput(value: string): string {
  if (value.includes('-----BEGIN')) return value;
  try {
    return readFileSync(value, 'utf8');
  } catch (error) {
    throw new HarnessError(`could not read PEM file ${value}: ${errorMessage(error)}`);
  }
}

// ---------------------------------------------------------------------------------------
// Certificate facts (SANs, basic constraints, key usage, validity), read by @peculiar/x509
// ---------------------------------------------------------------------------------------

export interface San {
  kind: 'DNS' | 'IP' | 'email' | 'URI' | 'other';
  value: string;
}

export interface CertFacts {
  sans: San[];
  basicConstraints?: { ca: boolean; pathLength?: number };
  keyUsage?: { keyCertSign: boolean };
  notBefore: Date;
  notAfter: Date;
}

const SAN_KINDS: Partial<Record<x509.GeneralNameType, San['kind']>> = { dns: 'DNS', ip: 'IP', email: 'email', url: 'URI' };

const factsCache = new WeakMap<X509Certificate, CertFacts>();

export function certFacts(cert: X509Certificate): CertFacts {
  const cached = factsCache.get(cert);
  if (cached) return cached;
  let facts: CertFacts;
  try {
    const parsed = new x509.X509Certificate(cert.raw);
    // Each getExtension decodes every extension, so any malformed one throws here.
    const basicConstraints = parsed.getExtension(x509.BasicConstraintsExtension);
    const keyUsage = parsed.getExtension(x509.KeyUsagesExtension);
    facts = {
      sans: readSans(parsed),
      basicConstraints: basicConstraints ? { ca: basicConstraints.ca, pathLength: basicConstraints.pathLength } : undefined,
      keyUsage: keyUsage ? { keyCertSign: (keyUsage.usages & x509.KeyUsageFlags.keyCertSign) !== 0 } : undefined,
      notBefore: parsed.notBefore,
      notAfter: parsed.notAfter,
    };
  } catch (error) {
    // Node (OpenSSL) reads extensions lazily and may accept what this stricter reader does not:
    // an ERROR (cannot find out), never "no SAN" or "not a CA".
    throw new HarnessError(`could not read the extensions of ${subjectOf(cert)} (SHA-256 ${fingerprint(cert)}): ${errorMessage(error)}`);
  }
  factsCache.set(cert, facts);
  return facts;
}

/**
 * @peculiar/x509 2.2.0 skips the GeneralNames it has no text form for (an otherName other than
 * GUID or UPN, x400Address, ediPartyName), so descriptions no longer list them (the hand-written
 * reader showed "other:[n]"). No check needs them: coverage reads DNS names only.
 */
function readSans(parsed: x509.X509Certificate): San[] {
  const extension = parsed.getExtension(x509.SubjectAlternativeNameExtension);
  return (extension?.names.items ?? []).map((name) => {
    const kind = SAN_KINDS[name.type];
    return kind ? { kind, value: name.value } : { kind: 'other', value: `${name.type}:${name.value}` };
  });
}
