/** The lab's certificate authority: root → intermediate → wildcard leaf, fresh on every bring-up. */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { succeed } from '../helpers/common/exec.ts';

export interface IssuedCert {
  certPem: string;
  keyPem: string;
  /** Leaf followed by the intermediate, as servers send it. */
  fullchainPem: string;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  await succeed('openssl', args, { cwd });
}

async function newKey(dir: string, name: string): Promise<string> {
  const file = join(dir, `${name}.key`);
  await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file], dir);
  return file;
}

async function extFile(dir: string, name: string, lines: string[]): Promise<string> {
  const file = join(dir, `${name}.ext`);
  await writeFile(file, `${lines.join('\n')}\n`);
  return file;
}

async function signed(
  dir: string,
  name: string,
  subject: string,
  issuer: { cert: string; key: string },
  extensions: string[],
  days: number,
): Promise<{ cert: string; key: string }> {
  const key = await newKey(dir, name);
  const csr = join(dir, `${name}.csr`);
  const cert = join(dir, `${name}.pem`);
  await openssl(['req', '-new', '-key', key, '-subj', subject, '-out', csr], dir);
  const ext = await extFile(dir, name, extensions);
  await openssl(
    ['x509', '-req', '-in', csr, '-CA', issuer.cert, '-CAkey', issuer.key, '-CAcreateserial', '-days', String(days), '-sha256', '-extfile', ext, '-out', cert],
    dir,
  );
  return { cert, key };
}

export interface LabCa {
  root: { cert: string; key: string };
  intermediate: { cert: string; key: string };
}

/** Creates a root and an intermediate under `dir` (keys 0600 inside a 0700 dir). */
export async function createCa(dir: string, label: string): Promise<LabCa> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const rootKey = await newKey(dir, 'root');
  const rootCert = join(dir, 'root.pem');
  await openssl(
    [
      'req',
      '-x509',
      '-new',
      '-key',
      rootKey,
      '-subj',
      `/O=cc-ci-acceptance lab/CN=${label} Root CA`,
      '-days',
      '3650',
      '-sha256',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
      '-out',
      rootCert,
    ],
    dir,
  );
  const intermediate = await signed(
    dir,
    'intermediate',
    `/O=cc-ci-acceptance lab/CN=${label} Intermediate CA`,
    { cert: rootCert, key: rootKey },
    ['basicConstraints=critical,CA:TRUE,pathlen:0', 'keyUsage=critical,keyCertSign,cRLSign', 'subjectKeyIdentifier=hash', 'authorityKeyIdentifier=keyid'],
    1825,
  );
  return { root: { cert: rootCert, key: rootKey }, intermediate };
}

/** Issues `*.domain` (plus the apex) from the intermediate. */
export async function issueWildcard(ca: LabCa, dir: string, name: string, domain: string): Promise<IssuedCert> {
  const leaf = await signed(
    dir,
    name,
    `/O=cc-ci-acceptance lab/CN=*.${domain}`,
    ca.intermediate,
    [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature',
      'extendedKeyUsage=serverAuth',
      `subjectAltName=DNS:*.${domain},DNS:${domain}`,
      'subjectKeyIdentifier=hash',
      'authorityKeyIdentifier=keyid',
    ],
    90,
  );
  const certPem = await readFile(leaf.cert, 'utf8');
  const keyPem = await readFile(leaf.key, 'utf8');
  const intermediatePem = await readFile(ca.intermediate.cert, 'utf8');
  return { certPem, keyPem, fullchainPem: certPem + intermediatePem };
}

/** A server cert for the lab host's own loopback (127.0.0.1), from the intermediate: its full chain and key, as files in `dir`. */
export async function issueLoopbackServer(ca: LabCa, dir: string, name: string, label: string): Promise<{ fullchain: string; key: string }> {
  const leaf = await signed(
    dir,
    name,
    `/O=cc-ci-acceptance lab/CN=${label}`,
    ca.intermediate,
    [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature',
      'extendedKeyUsage=serverAuth',
      'subjectAltName=IP:127.0.0.1',
      'subjectKeyIdentifier=hash',
      'authorityKeyIdentifier=keyid',
    ],
    90,
  );
  const fullchain = join(dir, `${name}-fullchain.pem`);
  await writeFile(fullchain, (await readFile(leaf.cert, 'utf8')) + (await readFile(ca.intermediate.cert, 'utf8')), { mode: 0o644 });
  return { fullchain, key: leaf.key };
}

/** A self-signed client certificate for the Incus API. */
export async function createClientCert(certFile: string, keyFile: string, name: string): Promise<void> {
  await openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:secp384r1',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-subj',
      `/CN=${name}`,
      '-days',
      '3650',
      '-addext',
      'extendedKeyUsage=clientAuth',
    ],
    '/',
  );
}
