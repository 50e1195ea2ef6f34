/**
 * TLS for acceptance specs: what a server actually serves (served.ts, read from the
 * wire by wire.ts), whether it verifies against the CA we trust, and offline checks on PEM
 * material (pem.ts, chain.ts).
 *
 * Failure kinds follow helpers/common/errors.ts: a certificate that does not verify
 * (TlsVerificationError) or input that holds no certificate (PemError) is a FAIL, while not
 * being able to reach the server at all is a HarnessError.
 */
export { PemError, X509Certificate, describeCert, fingerprint, formatName, parsePemChain, readPemInput, subjectOf, type CertDescription } from './pem.ts';
export { keyMatchesCert, sanCovers, validityAt, verifyChain, type ChainVerdict } from './chain.ts';
export { TlsVerificationError, fetchServedChain, inspectServedChain, type FetchServedChainOptions, type ServedChain } from './served.ts';
