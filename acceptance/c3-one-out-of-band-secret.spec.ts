/**
 * C3 — every secret is sops-encrypted in git; the only secret that reached the machine outside
 * git is the bootstrap age key, at /var/lib/sops-nix/key.txt with mode 0600.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';
import { parse } from 'yaml';
import { fileHashesOnHost, filesMatchingOnHost } from '../helpers/common/host-scan.ts';
import { countOccurrences, describeLeak } from '../helpers/git/leak.ts';
import { isHostGitCredentialsEntry } from '../helpers/runbook/run.ts';
import { EXPLAINED_SECRET_PLACES, explainSecretFile, findSopsCopiesOnHost, unexplained, type SecretFile } from '../helpers/sops/host-copies.ts';
import { shellWord, type HostChannel } from '../helpers/common/host.ts';
import { recordedKeyProvisioning } from '../helpers/docs/decisions.ts';
import { parseAgeIdentities, recipientsOf } from '../helpers/sops/index.ts';
import {
  attach,
  dodItem,
  observation,
  skipBecause,
  step,
  system,
  test,
  expectNone,
  observes,
  OPERATOR_SIDE,
  runHost,
  runningCcci,
  decisionLog,
} from './support/dod.ts';

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** Where a copy of a sops value could be left: everything an operator or a service writes to, not the Nix store (see docs). */
const COPY_ROOTS = ['/etc', '/var', '/root', '/home', '/srv', '/opt', '/tmp', '/run', '/dev/shm'];

function leaves(node: unknown, path: string[] = []): { path: string[]; value: unknown }[] {
  if (Array.isArray(node)) return node.flatMap((item) => leaves(item, path));
  if (node && typeof node === 'object') return Object.entries(node).flatMap(([key, value]) => leaves(value, [...path, key]));
  return [{ path, value: node }];
}

dodItem('C3', () => {
  const { host: paths, instance } = system();
  const BOOTSTRAP_KEY = paths.bootstrapKey;
  const SOPS_FILE = instance.secretsFile;

  test('every leaf of the instance sops file is encrypted (apart from the unencrypted suffix)', async ({ instanceRepo, task }) => {
    observes(task, OPERATOR_SIDE);
    const document = parse(await readFile(join(instanceRepo, SOPS_FILE), 'utf8')) as Record<string, unknown> & { sops?: { unencrypted_suffix?: string } };
    const suffix = document.sops?.unencrypted_suffix ?? '_unencrypted';
    const data = Object.fromEntries(Object.entries(document).filter(([key]) => key !== 'sops'));
    const all = leaves(data);
    const plain = all.filter(
      ({ path, value }) => !path.some((key) => key.endsWith(suffix)) && !(typeof value === 'string' && value.startsWith('ENC[AES256_GCM,')),
    );
    expectNone(
      plain.map(({ path }) => path.join('.')),
      `values stored in plaintext in ${SOPS_FILE}`,
    );
    observation(task, `${all.length} leaves in ${SOPS_FILE}, all ENC[AES256_GCM,…]`);
  });

  test("no decrypted value appears in plaintext in the instance repo's history", async ({ run, instanceRepo, gitSecrets, task }) => {
    observes(task, OPERATOR_SIDE);
    const needles = Object.fromEntries(Object.entries(gitSecrets.values).map(([key, value]) => [`sops value ${key}`, value]));
    const results = await step(`scan every object of every commit of ${run.instanceRepo}`, () => countOccurrences(instanceRepo, needles));
    await attach('leak probe (instance repo, all history)', [...results].map(([label, result]) => describeLeak(String(label), result)).join('\n'));
    const leaks = [...results].filter(([, result]) => result.count > 0).map(([label, result]) => describeLeak(String(label), result));
    expectNone(leaks, "secret values in plaintext in the instance repo's history");
    const scanned = [...results.values()][0]?.scanned;
    observation(task, `0 plaintext occurrences of ${results.size} sops values in ${scanned?.commits ?? '?'} commits of the instance repo`);
  });

  test(`every file in ${paths.secretsDir} traces back to a sops key in git`, async ({ host, gitSecrets, task }) => {
    observes(task, runHost());
    const names = (await host.succeed(`ls -A1 -- ${shellWord(paths.secretsDir)}/`, { purpose: `list ${paths.secretsDir}` })).stdout.split('\n').filter(Boolean);
    const hashes = await fileHashesOnHost(
      host,
      names.map((name) => `${paths.secretsDir}/${name}`),
      `hash the files in ${paths.secretsDir}`,
    );
    // A name that is no regular file has no hash, and so traces back to nothing.
    const onHost = names.map((name) => [name, hashes.get(`${paths.secretsDir}/${name}`) ?? 'not-a-regular-file'] as [string, string]);
    const untraced = onHost.filter(([name, hash]) => gitSecrets.values[name] === undefined || sha256(gitSecrets.values[name]!) !== hash).map(([name]) => name);
    await attach(
      paths.secretsDir,
      onHost.map(([name, hash]) => `${name} sha256:${hash.slice(0, 16)}… ${gitSecrets.values[name] === undefined ? 'NOT IN GIT' : 'from sops'}`).join('\n'),
    );
    expectNone(untraced, `files in ${paths.secretsDir} on ${host.name} that match no sops value in git`);
    const missing = Object.keys(gitSecrets.values).filter((name) => !onHost.some(([file]) => file === name));
    expectNone(missing, `sops secrets that were not decrypted to ${paths.secretsDir}`);
    observation(task, `${onHost.length} files in ${paths.secretsDir}, each equal to its sops value in git`);
  });

  test('the only secret provisioned outside git is the bootstrap age key, at 0600', async ({ run, host, task, skip }) => {
    observes(task, runHost());
    if (run.ledger.length === 0) skipBecause({ task, skip }, 'no provisioning ledger: this host was not provisioned by the harness');
    // The operator's git credentials (ACCEPT_HOST_GIT_CREDENTIALS_FILE) are pushed for the runbook's clones and removed after it.
    const secrets = run.ledger.filter((entry) => entry.kind === 'push' && entry.secret && !isHostGitCredentialsEntry(entry));
    await attach('provisioning ledger (secret pushes)', secrets);
    const pushed = secrets.map((entry) => (entry.kind === 'push' ? `${entry.path} ${entry.mode}` : ''));
    expect(pushed, `secrets pushed out of band: ${pushed.join(', ') || 'none'} (only ${BOOTSTRAP_KEY} 0600 is allowed)`).toEqual([`${BOOTSTRAP_KEY} 0600`]);
    const mode = await host.succeed(`stat -c '%a %U' ${BOOTSTRAP_KEY}`);
    expect(mode.stdout.trim(), `${BOOTSTRAP_KEY} on ${host.name} has mode/owner ${mode.stdout.trim()}`).toBe('600 root');
    observation(task, `one out-of-band secret: ${BOOTSTRAP_KEY} (0600, root)`);
  });

  test(`the base repo's ${system().docs.decisions} records how the bootstrap key is provisioned, and the machines hold it so`, async ({
    run,
    host,
    production,
    baseRepo,
    gitSecrets,
    task,
  }) => {
    observes(task, `${OPERATOR_SIDE}, ${runHost()} and ${runningCcci()}`);
    const { decisions } = system().docs;
    const text = await decisionLog(baseRepo, `the bootstrap key's provisioning`);
    const recorded = recordedKeyProvisioning(text);
    expect(
      recorded,
      `${decisions} records no decision on how the bootstrap key is provisioned: no line about it (or under a heading about the bootstrap key) with a decision word followed by the recovery key (as it is) or a key of the host's own (the secrets re-encrypted to it)`,
    ).toBeDefined();
    const where = `${decisions} line ${recorded!.lineNumber} ("${recorded!.line}")`;
    const given = await recipientsOf(parseAgeIdentities(await readFile(run.ageKeyFile, 'utf8'), run.ageKeyFile));
    const opens = given.filter((recipient) => gitSecrets.recipients.includes(recipient));
    expect(opens.length, `the bootstrap key (${given.join(', ')}) is no recipient of ${gitSecrets.source}: it opens nothing`).toBeGreaterThan(0);
    if (recorded!.provisioning === 'recovery') {
      observation(task, `${where}: the recovery key as it is; the bootstrap key ${opens.join(', ')} is a recipient of ${SOPS_FILE}`);
      return;
    }
    // A key of each host's own: the throwaway must not hold the running cc-ci's key.
    if (!('host' in production)) {
      observation(task, `${where}: a key of each host's own; the running cc-ci is out of reach (${production.unreachable}), so its key is not compared`);
      return;
    }
    if (production.host === host || production.name === host.name) {
      observation(task, `${where}: a key of each host's own; this run faces the running cc-ci alone, so there is no second machine to compare`);
      return;
    }
    const [throwawayKey, productionKey] = [await keyDigestOn(host, BOOTSTRAP_KEY), await keyDigestOn(production.host, BOOTSTRAP_KEY)];
    expect(
      throwawayKey !== undefined && throwawayKey === productionKey,
      `${where} records a key of each host's own, but ${host.name} was given the running cc-ci ${production.name}'s own key (the same ${BOOTSTRAP_KEY})`,
    ).toBe(false);
    observation(task, `${where}: a key of each host's own; ${host.name} and ${production.name} hold different keys at ${BOOTSTRAP_KEY}`);
  });

  test('no other private key on the host is left unexplained', async ({ run, host, gitSecrets, task }) => {
    observes(task, runHost());
    // A grep that fails (no grep, an unreadable file) is an ERROR: never read as "no keys found".
    const found = await step('search /etc, /var/lib, /root and /run/secrets.d for private keys', () =>
      filesMatchingOnHost(host, {
        // Whole-line PEM markers and full-length age identities: code that merely names them does not match.
        pattern: '^-----BEGIN ([A-Z]+ )?PRIVATE KEY-----$|AGE-SECRET-KEY-1[02-9ACDEFGHJKLMNPQRSTUVWXYZ]{58}',
        roots: ['/etc', '/var/lib', '/root', '/run/secrets.d'],
        purpose: 'search for private keys',
        // A scan of a big host is slow; how slow it may be is a setting, not a constant here.
        timeoutMs: run.durations.check,
      }),
    );
    // Hashed only where the place alone explains nothing: a Docker secret mount is explained by its content.
    const unplaced = found.files.filter((file) => !EXPLAINED_SECRET_PLACES.some(({ pattern }) => pattern.test(file)));
    const hashes = await fileHashesOnHost(host, unplaced, 'hash the private keys no place explains');
    const keys: SecretFile[] = found.files.map((file) => ({ file, names: [], why: explainSecretFile(file, hashes.get(file), gitSecrets.values) }));
    await attach('private keys on the host', [...keys.map(({ file, why }) => `${file}: ${why ?? 'UNEXPLAINED'}`), searchedLine(found)].join('\n'));
    expectNone(unexplained(keys), `private keys on ${host.name} that neither sops nor the bootstrap explains`);
    observation(task, `${keys.length} private keys on the host, each explained (sops, bootstrap key, SSH host keys, Docker's own)`);
  });

  test('no decrypted sops value (token, key, password) is copied anywhere unexplained on the host', async ({ run, host, gitSecrets, task }) => {
    observes(task, runHost());
    const copies = await step(`search ${COPY_ROOTS.join(', ')} for the ${Object.keys(gitSecrets.values).length} sops values, in every form`, () =>
      findSopsCopiesOnHost(host, gitSecrets.values, { roots: COPY_ROOTS, timeoutMs: run.durations.check }),
    );
    await attach(
      'copies of sops values on the host (names only)',
      [
        ...copies.files.map(
          ({ file, names, forms, why }) => `${file} (${names.join(', ')})${forms?.length ? ` as ${forms.join('; ')}` : ''}: ${why ?? 'UNEXPLAINED'}`,
        ),
        ...copies.notSearched.map(({ name, why }) => `not searched: ${name}: ${why}`),
        searchedLine(copies),
      ].join('\n'),
    );
    expectNone(unexplained(copies.files), `copies of sops values on ${host.name} outside the places that explain them`);
    const searchedFor = Object.keys(gitSecrets.values).length - copies.notSearched.length;
    observation(task, `${searchedFor} sops values searched for in ${copies.searched.join(' ')}: ${copies.files.length} files hold one, each explained`);
  });
});

/**
 * Which age key a machine holds at `path`: a SHA-256 over its identity lines, computed on the
 * machine (the key never leaves it), or undefined when it holds none there.
 */
async function keyDigestOn(machine: HostChannel, path: string): Promise<string | undefined> {
  const quoted = shellWord(path);
  const result = await machine.succeed(`if [ -f ${quoted} ]; then grep -o 'AGE-SECRET-KEY-1[0-9A-Z]*' ${quoted} | sha256sum; fi`, {
    purpose: `digest of the age key at ${path}`,
  });
  return result.stdout.trim().split(/\s+/)[0] || undefined;
}

function searchedLine({ searched, absent }: { searched: string[]; absent: string[] }): string {
  return `searched: ${searched.join(' ')}${absent.length ? `; absent: ${absent.join(' ')}` : ''}`;
}
