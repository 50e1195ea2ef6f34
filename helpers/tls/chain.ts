/**
 * Offline checks on certificates: validity, SAN coverage (RFC 6125 wildcards), key match, and
 * a chain to a trusted root with names, signatures, CA constraints and validity checked.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { HarnessError } from '../common/errors.ts';
import { certFacts, formatName, subjectOf, type X509Certificate } from './pem.ts';

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
          : `issuer ${formatName(current.issuer)} of ${role} ${subjectOf(current)} not found (neither in the chain nor among the trusted roots)`;
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
