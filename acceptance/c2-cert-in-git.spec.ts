/**
 * C2 — the wildcard cert and key are sops secrets in the instance repo, and what the machine
 * serves on :443 is exactly that cert.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { expect } from 'vitest';
import { waitFor } from '../helpers/common/wait.ts';
import { fileHashesOnHost } from '../helpers/common/host-scan.ts';
import {
  describeCert,
  fetchServedChain,
  fingerprint,
  keyMatchesCert,
  parsePemChain,
  sanCovers,
  validityAt,
  verifyChain,
  type X509Certificate,
} from '../helpers/tls/index.ts';
import type { RunContext } from './support/context.ts';
import { attach, dodItem, observation, step, system, test, observes, OPERATOR_SIDE, runHost, within } from './support/dod.ts';

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

dodItem('C2', () => {
  const paths = system().host;

  let served: X509Certificate[] | undefined;
  const servedChain = async (run: RunContext) => {
    const ca = await readFile(run.tlsCaFile, 'utf8');
    // Within the converge window: a proxy still starting after the switch refuses for a moment
    // (retried); any other answer, a wrong or unverifiable chain included, ends the wait at once.
    served ??= await step(`fetch the chain served on :443 with SNI drone.${run.domain}`, () =>
      waitFor(
        `${run.https.host}:${run.https.port} to serve TLS for drone.${run.domain} (ACCEPT_CONVERGE_TIMEOUT)`,
        () => fetchServedChain({ host: run.https.host, port: run.https.port, servername: `drone.${run.domain}`, socks: run.target.socks, ca }),
        { timeoutMs: run.durations.converge, intervalMs: 1000 },
      ),
    );
    await attach('served chain', served.map(describeCert));
    return served;
  };

  test(
    'the served leaf is the wildcard_cert from git (SHA-256 fingerprint)',
    async ({ run, gitSecrets, task }) => {
      observes(task, runHost());
      const git = parsePemChain(gitSecrets.values.wildcard_cert ?? '', `wildcard_cert in ${gitSecrets.source}`);
      await attach('git cert', git.map(describeCert));
      const chain = await servedChain(run);
      const servedLeaf = fingerprint(chain[0]!);
      const gitLeaf = fingerprint(git[0]!);
      expect(servedLeaf, `served leaf fingerprint ${servedLeaf} ≠ git cert ${gitLeaf}`).toBe(gitLeaf);
      observation(task, `served leaf = git wildcard_cert, SHA-256 ${servedLeaf}`);
    },
    within('converge'),
  );

  test(
    'the whole served chain, not just the leaf, is the fullchain in git',
    async ({ run, gitSecrets, task }) => {
      observes(task, runHost());
      const git = parsePemChain(gitSecrets.values.wildcard_cert ?? '', 'wildcard_cert').map(fingerprint);
      const chain = (await servedChain(run)).map(fingerprint);
      expect(chain, `served chain [${chain.join(', ')}] ≠ git fullchain [${git.join(', ')}]`).toEqual(git);
      observation(task, `served chain = git fullchain (${chain.length} certs)`);
    },
    within('converge'),
  );

  test('fullchain.pem and privkey.pem on the host are the git secrets (symlinks followed)', async ({ host, gitSecrets, task }) => {
    observes(task, runHost());
    const files = { [paths.certChain]: 'wildcard_cert', [paths.certKey]: 'wildcard_key' } as const;
    const seen: string[] = [];
    // A missing file is a FAIL; a sha256sum or readlink that fails is an ERROR, never a wrong hash.
    // Both asked side by side: each exec is a round trip to the host.
    const [hashes, resolved] = await Promise.all([
      fileHashesOnHost(host, Object.keys(files), 'hash the cert files'),
      host.succeed(
        Object.keys(files)
          .map((path) => `readlink -f -- ${path} || echo '(unresolved)'`)
          .join('; '),
        { purpose: 'resolve the cert files' },
      ),
    ]);
    const targets = resolved.stdout.split('\n');
    for (const [index, [path, key]] of Object.entries(files).entries()) {
      const hostHash = hashes.get(path);
      expect(hostHash, `${path} is missing on ${host.name} (or not a regular file)`).toBeDefined();
      const target = targets[index]!.trim();
      const gitHash = sha256(gitSecrets.values[key] ?? '');
      expect(hostHash, `${path} (→ ${target}) on ${host.name} is not ${key} from git: sha256 ${hostHash?.slice(0, 16)}… ≠ ${gitHash.slice(0, 16)}…`).toBe(
        gitHash,
      );
      seen.push(`${path} → ${target}`);
    }
    await attach('cert files on the host', seen.join('\n'));
    observation(task, `${seen.join(', ')}: same sha256 as the git secrets`);
  });

  test(
    'the served chain verifies up to the trusted root',
    async ({ run, task }) => {
      observes(task, runHost());
      const chain = await servedChain(run);
      const roots = parsePemChain(await readFile(run.tlsCaFile, 'utf8'), run.tlsCaFile);
      const verdict = verifyChain(chain, roots);
      expect(verdict.ok, verdict.ok ? '' : `served chain does not verify: ${verdict.reason}`).toBe(true);
      observation(task, `chain ${chain.map((cert) => describeCert(cert).subject).join(' → ')} → ${describeCert(roots[0]!).subject}`);
    },
    within('converge'),
  );

  test('the private key in git belongs to the cert in git', async ({ gitSecrets, task }) => {
    observes(task, OPERATOR_SIDE);
    const git = parsePemChain(gitSecrets.values.wildcard_cert ?? '', 'wildcard_cert');
    expect('wildcard_key' in gitSecrets.values, 'wildcard_key is missing from the instance repo secrets').toBe(true);
    expect(keyMatchesCert(gitSecrets.values.wildcard_key!, git[0]!), 'wildcard_key does not belong to wildcard_cert').toBe(true);
    observation(task, `wildcard_key matches ${describeCert(git[0]!).subject}`);
  });

  test('the SANs cover the domain and the cert is within its validity window', async ({ run, gitSecrets, task }) => {
    observes(task, OPERATOR_SIDE);
    const leaf = parsePemChain(gitSecrets.values.wildcard_cert ?? '', 'wildcard_cert')[0]!;
    const names = [`drone.${run.domain}`, `ci-probe.${run.domain}`];
    for (const name of names) {
      expect(sanCovers(leaf, name), `SANs ${describeCert(leaf).sans.join(', ')} do not cover ${name}`).toBe(true);
    }
    const validity = validityAt(leaf, new Date());
    expect(validity.ok, `git cert is not valid now: ${validity.reason}`).toBe(true);
    observation(task, `SANs ${describeCert(leaf).sans.join(', ')} cover *.${run.domain}; valid until ${describeCert(leaf).notAfter}`);
  });
});
