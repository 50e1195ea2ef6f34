import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HarnessError } from '../common/errors.ts';
import { succeed } from '../common/exec.ts';
import { startFakeSocks, type FakeSocks } from '../common/testing/fake-socks.ts';
import {
  PemError,
  TlsVerificationError,
  X509Certificate,
  describeCert,
  fetchServedChain,
  fingerprint,
  inspectServedChain,
  keyMatchesCert,
  parsePemChain,
  sanCovers,
  validityAt,
  verifyChain,
} from './index.ts';
import { parseHostPort, showServedChain } from './show.ts';
import { rejectionOf } from '../common/testing/rejection.ts';
import { warningsDuring } from '../common/testing/warnings.ts';

// --- fixtures: a small PKI made by the openssl CLI ---------------------------------------

const OPENSSL_CONFIG = `
[ca]
default_ca = lab
[lab]
dir = .
database = index.txt
serial = serial.txt
new_certs_dir = .
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
email_in_dn = no
[any]
commonName = supplied
[req]
distinguished_name = dn
[dn]
[root_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[int_ext]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[leaf_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:*.lab.test,DNS:lab.test
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[nosign_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,digitalSignature,cRLSign
[mixed_ext]
basicConstraints = critical,CA:FALSE
subjectAltName = DNS:mixed.lab.test,IP:10.0.0.1,email:ops@lab.test,URI:https://lab.test/
[othername_ext]
basicConstraints = critical,CA:FALSE
subjectAltName = DNS:odd.lab.test,otherName:1.2.3.4;UTF8:hello,dirName:odd_dir
[odd_dir]
CN = Odd Dir
[broken_san_ext]
# A SEQUENCE that claims 5 bytes and holds 3: OpenSSL stores it, a strict reader refuses it.
2.5.29.17 = DER:3005820141
`;

interface Pki {
  dir: string;
  pem: Record<string, string>;
  cert: Record<string, X509Certificate>;
  reference: Record<string, { fingerprint: string; serial: string }>;
}

async function buildPki(): Promise<Pki> {
  const dir = await mkdtemp(join(tmpdir(), 'tls-test-'));
  const run = (...args: string[]) => succeed('openssl', args, { cwd: dir });
  await writeFile(join(dir, 'openssl.cnf'), OPENSSL_CONFIG);
  await writeFile(join(dir, 'index.txt'), '');
  const ecKey = (name: string) => run('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`);
  await Promise.all([
    ecKey('root'),
    ecKey('leaf'),
    ecKey('other'),
    ecKey('rogue'),
    run('genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', 'int.key'),
  ]);
  const selfSigned = (name: string, key: string, subject: string) =>
    run('req', '-x509', '-new', '-config', 'openssl.cnf', '-extensions', 'root_ext', '-key', key, '-subj', subject, '-days', '3650', '-out', `${name}.pem`);
  await selfSigned('root', 'root.key', '/CN=Lab Root');
  await selfSigned('other', 'other.key', '/CN=Other CA');
  await selfSigned('impostor', 'other.key', '/CN=Lab Root'); // same name as the real root, other key
  // `openssl ca` because OpenSSL 3.0's `x509 -req` cannot set explicit (past) dates.
  const keyOf: Record<string, string> = { root: 'root.key', other: 'other.key', int: 'int.key', leaf: 'leaf.key', subCa: 'other.key', noSignCa: 'other.key' };
  const issue = async (name: string, key: string, subject: string, ca: string, extensions: string, dates: string[]) => {
    await run('req', '-new', '-config', 'openssl.cnf', '-key', key, '-subj', subject, '-out', `${name}.csr`);
    await run(
      'ca',
      '-batch',
      '-notext',
      '-create_serial',
      '-config',
      'openssl.cnf',
      '-cert',
      `${ca}.pem`,
      '-keyfile',
      keyOf[ca]!,
      '-in',
      `${name}.csr`,
      '-extensions',
      extensions,
      ...dates,
      '-out',
      `${name}.pem`,
    );
  };
  const past = ['-startdate', '20200101000000Z', '-enddate', '20200201000000Z'];
  await issue('int', 'int.key', '/CN=Lab Int', 'root', 'int_ext', ['-days', '365']);
  await issue('expiredInt', 'int.key', '/CN=Lab Int', 'root', 'int_ext', past);
  await issue('leaf', 'leaf.key', '/CN=*.lab.test', 'int', 'leaf_ext', ['-days', '90']);
  await issue('expiredLeaf', 'leaf.key', '/CN=*.lab.test', 'int', 'leaf_ext', past);
  await issue('rogue', 'rogue.key', '/CN=*.lab.test', 'other', 'leaf_ext', ['-days', '90']);
  // For the constraint checks: a leaf (CA:FALSE) acting as an issuer, and a CA below pathlen:0.
  await issue('underLeaf', 'rogue.key', '/CN=under.lab.test', 'leaf', 'leaf_ext', ['-days', '90']);
  await issue('subCa', 'other.key', '/CN=Sub CA', 'int', 'root_ext', ['-days', '90']);
  await issue('deepLeaf', 'rogue.key', '/CN=deep.lab.test', 'subCa', 'leaf_ext', ['-days', '90']);
  // A CA whose keyUsage lacks keyCertSign; SANs of every kind; a SAN @peculiar/x509 cannot read.
  await issue('noSignCa', 'other.key', '/CN=No Sign CA', 'root', 'nosign_ext', ['-days', '90']);
  await issue('noSignLeaf', 'rogue.key', '/CN=nosign.lab.test', 'noSignCa', 'leaf_ext', ['-days', '90']);
  await issue('mixedLeaf', 'rogue.key', '/CN=mixed.lab.test', 'int', 'mixed_ext', ['-days', '90']);
  await issue('oddLeaf', 'rogue.key', '/CN=odd.lab.test', 'int', 'othername_ext', ['-days', '90']);
  await issue('brokenSanLeaf', 'rogue.key', '/CN=broken.lab.test', 'int', 'broken_san_ext', ['-days', '90']);

  const names = [
    'root',
    'other',
    'impostor',
    'int',
    'expiredInt',
    'leaf',
    'expiredLeaf',
    'rogue',
    'underLeaf',
    'subCa',
    'deepLeaf',
    'noSignCa',
    'noSignLeaf',
    'mixedLeaf',
    'oddLeaf',
    'brokenSanLeaf',
  ];
  const pem: Record<string, string> = {};
  const cert: Record<string, X509Certificate> = {};
  const reference: Pki['reference'] = {};
  for (const name of names) {
    pem[name] = await readFile(join(dir, `${name}.pem`), 'utf8');
    cert[name] = new X509Certificate(pem[name]!);
    const out = (await run('x509', '-in', `${name}.pem`, '-noout', '-fingerprint', '-sha256', '-serial')).stdout;
    reference[name] = {
      fingerprint: /Fingerprint=([0-9A-F:]+)/i.exec(out)![1]!,
      serial: /serial=([0-9A-F]+)/i.exec(out)![1]!,
    };
  }
  for (const key of ['root', 'int', 'leaf', 'rogue']) pem[`${key}.key`] = await readFile(join(dir, `${key}.key`), 'utf8');
  pem.fullchain = pem.leaf! + pem.int!;
  return { dir, pem, cert, reference };
}

// --- servers: SNI-aware TLS, and a minimal SOCKS5 (no auth, CONNECT only) -----------------

type Closer = () => Promise<void>;

function listen(server: net.Server): Promise<{ port: number; close: Closer }> {
  const sockets = new Set<net.Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      const close = () =>
        new Promise<void>((done) => {
          for (const socket of sockets) socket.destroy();
          server.close(() => done());
        });
      resolve({ port, close });
    });
  });
}

function startTlsServer(pki: Pki, tuning: Pick<tls.TlsOptions, 'maxVersion' | 'ecdhCurve' | 'ciphers'> = {}) {
  const { pem } = pki;
  const contexts: Record<string, tls.SecureContext> = {
    'www.lab.test': tls.createSecureContext({ key: pem['leaf.key'], cert: pem.fullchain }),
    'full.lab.test': tls.createSecureContext({ key: pem['leaf.key'], cert: pem.fullchain! + pem.root! }),
    'bare.lab.test': tls.createSecureContext({ key: pem['leaf.key'], cert: pem.leaf }),
    'rogue.lab.test': tls.createSecureContext({ key: pem['rogue.key'], cert: pem.rogue }),
    'expired.lab.test': tls.createSecureContext({ key: pem['leaf.key'], cert: pem.expiredLeaf! + pem.int! }),
  };
  // The default context must have no chain: Node keeps it when SNI switches to a context
  // without one, so 'bare' and 'rogue' would silently be served Lab Int too.
  const server = tls.createServer({
    key: pem['rogue.key'],
    cert: pem.rogue,
    ...tuning,
    SNICallback: (name, callback) => callback(null, contexts[name] ?? contexts['www.lab.test']),
  });
  // Clients that reject our certificates hang up mid-handshake; that is the point of some tests.
  server.on('tlsClientError', () => {});
  server.on('secureConnection', (socket) => socket.on('error', () => {}));
  return listen(server);
}

async function closedPort(): Promise<number> {
  const { port, close } = await listen(net.createServer());
  await close();
  return port;
}

const rejection = (promise: Promise<unknown>): Promise<Error> => rejectionOf(promise, Error);

// --- tests -----------------------------------------------------------------------------

let pki: Pki;
let tls13: { port: number; close: Closer };
let tls12: { port: number; close: Closer };
let retry: { port: number; close: Closer };
let socks: FakeSocks;

beforeAll(async () => {
  pki = await buildPki();
  [tls13, tls12, retry, socks] = await Promise.all([
    startTlsServer(pki),
    startTlsServer(pki, { maxVersion: 'TLSv1.2' }),
    // Node's client offers an X25519 key share first, so P-384 forces a HelloRetryRequest.
    startTlsServer(pki, { ecdhCurve: 'secp384r1', ciphers: 'TLS_CHACHA20_POLY1305_SHA256' }),
    startFakeSocks({ resolveName: (host) => (host.endsWith('.lab.test') ? '127.0.0.1' : host) }),
  ]);
}, 30_000);

afterAll(async () => {
  await Promise.all([tls13?.close(), tls12?.close(), retry?.close(), socks?.close()]);
  if (pki) await rm(pki.dir, { recursive: true, force: true });
});

describe('PEM and descriptions', () => {
  it('parses a fullchain leaf first and names the source when there is no certificate', () => {
    const chain = parsePemChain(pki.pem.fullchain!, 'fullchain.pem');
    expect(chain.map(fingerprint)).toEqual([pki.reference.leaf!.fingerprint, pki.reference.int!.fingerprint]);
    expect(() => parsePemChain('', 'empty.pem')).toThrow(/empty\.pem: no PEM certificate found \(it is empty\)/);
    const keyOnly = rejectionSync(() => parsePemChain(pki.pem['leaf.key']!, 'privkey.pem'));
    expect(keyOnly).toBeInstanceOf(PemError);
    expect(keyOnly.message).toMatch(/privkey\.pem: .*private key, not a certificate/);
    expect(keyOnly.message).not.toContain('BEGIN');
  });

  it('fingerprints and describes like openssl does', () => {
    expect(fingerprint(pki.cert.leaf!)).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    expect(fingerprint(pki.cert.leaf!)).toBe(pki.reference.leaf!.fingerprint);
    const description = describeCert(pki.cert.leaf!);
    expect(description).toMatchObject({
      subject: 'CN=*.lab.test',
      issuer: 'CN=Lab Int',
      sans: ['*.lab.test', 'lab.test'],
      fingerprint: pki.reference.leaf!.fingerprint,
      serial: pki.reference.leaf!.serial,
    });
    expect(describeCert(pki.cert.expiredLeaf!)).toMatchObject({
      notBefore: '2020-01-01T00:00:00.000Z',
      notAfter: '2020-02-01T00:00:00.000Z',
    });
  });

  it('lists SANs of every kind, DNS names bare and the others prefixed', () => {
    expect(describeCert(pki.cert.mixedLeaf!).sans).toEqual(['mixed.lab.test', 'IP:10.0.0.1', 'email:ops@lab.test', 'URI:https://lab.test/']);
    expect(sanCovers(pki.cert.mixedLeaf!, 'mixed.lab.test')).toBe(true);
    // Only DNS SANs cover a name: the URI's host and the IP do not.
    expect(sanCovers(pki.cert.mixedLeaf!, 'lab.test')).toBe(false);
    expect(sanCovers(pki.cert.mixedLeaf!, '10.0.0.1')).toBe(false);
  });

  it('keeps the DNS names beside a SAN entry that has no text form', () => {
    expect(describeCert(pki.cert.oddLeaf!).sans).toEqual(['odd.lab.test', 'other:dn:CN=Odd Dir']);
    expect(sanCovers(pki.cert.oddLeaf!, 'odd.lab.test')).toBe(true);
  });

  it('calls extensions it cannot read a harness error naming the certificate, never "no SAN"', () => {
    const error = rejectionSync(() => sanCovers(pki.cert.brokenSanLeaf!, 'broken.lab.test'));
    expect(error).toBeInstanceOf(HarnessError);
    expect(error.message).toMatch(
      new RegExp(`^could not read the extensions of CN=broken\\.lab\\.test \\(SHA-256 ${pki.reference.brokenSanLeaf!.fingerprint}\\): `),
    );
  });

  it('checks validity windows', () => {
    expect(validityAt(pki.cert.expiredLeaf!, new Date('2020-01-15T00:00:00Z'))).toEqual({ ok: true });
    expect(validityAt(pki.cert.expiredLeaf!, new Date('2019-12-31T23:59:59Z')).reason).toMatch(/^is not valid before 2020-01-01T00:00:00.000Z/);
    expect(validityAt(pki.cert.expiredLeaf!).reason).toMatch(/^expired at 2020-02-01T00:00:00.000Z/);
  });
});

describe('keyMatchesCert', () => {
  it('matches EC and RSA keys to their certificates and detects a mismatch', () => {
    expect(keyMatchesCert(pki.pem['leaf.key']!, pki.cert.leaf!)).toBe(true);
    expect(keyMatchesCert(pki.pem['int.key']!, pki.cert.int!)).toBe(true);
    expect(keyMatchesCert(pki.pem['rogue.key']!, pki.cert.leaf!)).toBe(false);
    expect(keyMatchesCert(pki.pem['int.key']!, pki.cert.leaf!)).toBe(false);
  });

  it('says an unreadable key cannot be read, without echoing it', () => {
    const broken = pki.pem['leaf.key']!.replace(/[A-Za-z]{8}/, '!!!!!!!!');
    const error = rejectionSync(() => keyMatchesCert(broken, pki.cert.leaf!));
    expect(error).toBeInstanceOf(HarnessError);
    expect(error.message).toMatch(/could not read the private key/);
    expect(error.message).not.toContain(broken.split('\n')[1]!.slice(0, 20));
  });
});

describe('sanCovers', () => {
  const table: Array<[string, boolean]> = [
    ['a.lab.test', true],
    ['A.LAB.Test', true],
    ['a.lab.test.', true],
    ['lab.test', true], // listed explicitly
    ['a.b.lab.test', false],
    ['lab.test.evil', false],
    ['alab.test', false],
    ['.lab.test', false],
    ['test', false],
    ['*.lab.test', true], // the SAN itself, literally
    ['', false],
  ];
  it.each(table)('%s → %s', (name, expected) => {
    expect(sanCovers(pki.cert.leaf!, name)).toBe(expected);
  });

  it('finds nothing to cover in a certificate without SANs', () => {
    expect(sanCovers(pki.cert.int!, 'a.lab.test')).toBe(false);
  });
});

describe('verifyChain', () => {
  const roots = () => [pki.cert.root!];

  it('builds leaf → intermediate → root, whatever the order and extras', () => {
    const ok = verifyChain([pki.cert.leaf!, pki.cert.int!], roots());
    expect(ok.ok && ok.path.map(fingerprint)).toEqual(['leaf', 'int', 'root'].map((n) => pki.reference[n]!.fingerprint));
    const shuffled = verifyChain([pki.cert.leaf!, pki.cert.other!, pki.cert.root!, pki.cert.int!], roots());
    expect(shuffled.ok).toBe(true);
  });

  it('names the expired certificate', () => {
    expect(verifyChain([pki.cert.expiredLeaf!, pki.cert.int!], roots())).toEqual({
      ok: false,
      reason: expect.stringMatching(/^leaf CN=\*\.lab\.test expired at 2020-02-01T00:00:00\.000Z/),
    });
    expect(verifyChain([pki.cert.leaf!, pki.cert.expiredInt!], roots())).toEqual({
      ok: false,
      reason: expect.stringMatching(/^intermediate CN=Lab Int expired at 2020-02-01T00:00:00\.000Z/),
    });
    // An expired intermediate next to a valid one is not fatal: the valid one is used.
    expect(verifyChain([pki.cert.leaf!, pki.cert.expiredInt!, pki.cert.int!], roots()).ok).toBe(true);
  });

  it('reports a missing intermediate and a wrong root', () => {
    expect(verifyChain([pki.cert.leaf!], roots())).toEqual({
      ok: false,
      reason:
        'no path from CN=*.lab.test to a trusted root; issuer CN=Lab Int of leaf CN=*.lab.test not found (neither in the chain nor among the trusted roots)',
    });
    expect(verifyChain([pki.cert.rogue!], roots())).toEqual({
      ok: false,
      reason: expect.stringMatching(/^no path from CN=\*\.lab\.test to a trusted root; issuer CN=Other CA of leaf/),
    });
    expect(verifyChain([pki.cert.leaf!, pki.cert.int!], [pki.cert.other!])).toEqual({
      ok: false,
      reason: expect.stringMatching(/issuer CN=Lab Root of intermediate CN=Lab Int not found/),
    });
    expect(verifyChain([pki.cert.leaf!, pki.cert.int!], [pki.cert.impostor!])).toEqual({
      ok: false,
      reason: expect.stringMatching(/signature on intermediate CN=Lab Int does not verify with the key of trusted root CN=Lab Root/),
    });
  });

  it('refuses a non-CA issuer and a pathlen overrun, and checks at the given time', () => {
    expect(verifyChain([pki.cert.underLeaf!, pki.cert.leaf!, pki.cert.int!], roots())).toEqual({
      ok: false,
      reason: 'intermediate CN=*.lab.test is not a CA (basicConstraints CA:TRUE missing) but issued leaf CN=under.lab.test',
    });
    expect(verifyChain([pki.cert.deepLeaf!, pki.cert.subCa!, pki.cert.int!], roots())).toEqual({
      ok: false,
      reason: 'intermediate CN=Lab Int allows 0 intermediate(s) below it (pathlen) but has 1',
    });
    expect(verifyChain([pki.cert.noSignLeaf!, pki.cert.noSignCa!], roots())).toEqual({
      ok: false,
      reason: 'intermediate CN=No Sign CA may not sign certificates (keyUsage lacks keyCertSign) but issued leaf CN=nosign.lab.test',
    });
    const future = new Date(Date.now() + 5 * 365 * 86_400_000);
    expect(verifyChain([pki.cert.leaf!, pki.cert.int!], roots(), future)).toEqual({
      ok: false,
      reason: expect.stringMatching(/^leaf CN=\*\.lab\.test expired at/),
    });
  });
});

describe('fetchServedChain', () => {
  const base = () => ({ host: '127.0.0.1', port: tls13.port, ca: pki.pem.root!, timeoutMs: 5_000 });

  it('through SOCKS5 returns leaf + intermediate as served, with the reference fingerprints', async () => {
    const before = socks.destinations.length;
    const served = await inspectServedChain({
      ...base(),
      host: 'www.lab.test',
      servername: 'www.lab.test',
      socks: `socks5://127.0.0.1:${socks.port}`,
    });
    expect(socks.destinations.slice(before)).toEqual([`www.lab.test:${tls13.port}`]);
    expect(served.source).toBe('handshake');
    expect(served.protocol).toBe('TLSv1.3');
    expect(served.presented.map(fingerprint)).toEqual([pki.reference.leaf!.fingerprint, pki.reference.int!.fingerprint]);
    // Node's detailed peer chain carries the trusted root from `ca` although it was not sent.
    expect(served.verifiedPath.map(fingerprint)).toEqual(['leaf', 'int', 'root'].map((n) => pki.reference[n]!.fingerprint));
  });

  it('tells a served root apart from the appended one, over TLS 1.3 and TLS 1.2', async () => {
    const full = await fetchServedChain({ ...base(), servername: 'full.lab.test' });
    expect(full.map(fingerprint)).toEqual(['leaf', 'int', 'root'].map((n) => pki.reference[n]!.fingerprint));
    const overTls12 = await inspectServedChain({ ...base(), port: tls12.port, servername: 'www.lab.test' });
    expect(overTls12.protocol).toBe('TLSv1.2');
    expect(overTls12.source).toBe('handshake');
    expect(overTls12.presented.map(fingerprint)).toEqual([pki.reference.leaf!.fingerprint, pki.reference.int!.fingerprint]);
    const afterRetry = await inspectServedChain({ ...base(), port: retry.port, servername: 'full.lab.test' });
    expect(afterRetry.cipher).toBe('TLS_CHACHA20_POLY1305_SHA256');
    expect(afterRetry.source).toBe('handshake');
    expect(afterRetry.presented).toHaveLength(3);
  });

  it('rejects a leaf from another CA as a TlsVerificationError, not a harness error', async () => {
    const error = await rejection(fetchServedChain({ ...base(), servername: 'rogue.lab.test' }));
    expect(error).toBeInstanceOf(TlsVerificationError);
    expect(error).not.toBeInstanceOf(HarnessError);
    const verification = error as TlsVerificationError;
    expect(verification.code).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    expect(verification.message).toContain(`127.0.0.1:${tls13.port} (servername rogue.lab.test)`);
    expect(verification.message).toContain('the served chain does not lead to the trusted root');
    expect(verification.presented?.map(fingerprint)).toEqual([pki.reference.rogue!.fingerprint]);
    expect(verification.message).toContain('issued by CN=Other CA');
  });

  it('gives the specific code for a missing intermediate, an expired leaf and a name mismatch', async () => {
    const codes = await Promise.all(
      ['bare.lab.test', 'expired.lab.test', 'www.other.test'].map(async (servername) => {
        const error = await rejection(fetchServedChain({ ...base(), servername }));
        return error instanceof TlsVerificationError ? error.code : `${error.name}: ${error.message}`;
      }),
    );
    expect(codes).toEqual(['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'CERT_HAS_EXPIRED', 'ERR_TLS_CERT_ALTNAME_INVALID']);
  });

  it('asks for an IP address without SNI (no DEP0123), and still checks the certificate against it', async () => {
    let error: Error | undefined;
    const warnings = await warningsDuring(async () => {
      error = await rejection(fetchServedChain({ ...base(), servername: '127.0.0.1' }));
    });
    expect(warnings).not.toContain('DEP0123');
    // No certificate here covers 127.0.0.1: verification stays on and refuses.
    expect(error).toBeInstanceOf(TlsVerificationError);
    expect(error!.message).toContain(`127.0.0.1:${tls13.port} (servername 127.0.0.1)`);
  });

  it('reports a refused proxy, a closed port and a silent server as harness errors naming them', async () => {
    const deadPort = await closedPort();
    const viaProxy = await rejection(fetchServedChain({ ...base(), servername: 'www.lab.test', socks: `socks5://127.0.0.1:${deadPort}` }));
    expect(viaProxy).toBeInstanceOf(HarnessError);
    expect(viaProxy.message).toBe(
      `could not reach 127.0.0.1:${tls13.port} through SOCKS5 proxy socks5://127.0.0.1:${deadPort} (ACCEPT_SOCKS): ` +
        'the proxy refused the connection (ECONNREFUSED); is it running?',
    );

    const direct = await rejection(fetchServedChain({ ...base(), port: deadPort, servername: 'www.lab.test' }));
    expect(direct).toBeInstanceOf(HarnessError);
    expect(direct.message).toBe(`could not reach 127.0.0.1:${deadPort}: it refused the connection (ECONNREFUSED); is the service running and the port right?`);

    const silent = await listen(net.createServer(() => {}));
    try {
      const timeout = await rejection(fetchServedChain({ ...base(), port: silent.port, servername: 'www.lab.test', timeoutMs: 300 }));
      expect(timeout).toBeInstanceOf(HarnessError);
      expect(timeout.message).toMatch(new RegExp(`timed out after \\d+ ms during the TLS handshake with 127\\.0\\.0\\.1:${silent.port}`));
    } finally {
      await silent.close();
    }
  });
});

describe('showServedChain', () => {
  it('prints each certificate with SANs, validity and fingerprint', async () => {
    const text = await showServedChain(`127.0.0.1:${tls13.port}`, {
      servername: 'www.lab.test',
      socks: `socks5://127.0.0.1:${socks.port}`,
      ca: join(pki.dir, 'root.pem'),
    });
    expect(text).toContain('served chain (read from the handshake), 2 certificate(s)');
    expect(text).toContain('subject      CN=*.lab.test');
    expect(text).toContain('SANs         *.lab.test, lab.test');
    expect(text).toContain(`SHA-256      ${pki.reference.leaf!.fingerprint}`);
    expect(text).toContain('trusted root (from the given CA, not sent by the server)');
    expect(text).toContain(pki.reference.root!.fingerprint);
    expect(text).not.toContain('PRIVATE KEY');
  });

  it('parses host:port forms', () => {
    expect(parseHostPort('a.test:8443')).toEqual({ host: 'a.test', port: 8443 });
    expect(parseHostPort('a.test')).toEqual({ host: 'a.test', port: 443 });
    expect(parseHostPort('[::1]:8443')).toEqual({ host: '::1', port: 8443 });
    expect(() => parseHostPort('a.test:99999')).toThrow(HarnessError);
  });
});

function rejectionSync(action: () => unknown): Error {
  try {
    action();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a throw');
}
