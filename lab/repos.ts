/**
 * Generates the two repos a cc-ci deployment is made of, with fresh keys every bring-up:
 * the generic base repo `cc-ci` and the instance repo `cc-ci-secrets` (domain and sops secrets).
 */
import { randomBytes } from 'node:crypto';
import { chmod, cp, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateIdentity, identityToRecipient } from 'age-encryption';
import { succeed } from '../helpers/common/exec.ts';
import { encryptSops } from '../helpers/sops/index.ts';
import { createCa, issueWildcard } from './pki.ts';
import type { LabPaths } from './state.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
export const BASE_REPO = 'cc-ci.git';
export const INSTANCE_REPO = 'cc-ci-secrets.git';

export interface GeneratedRepos {
  baseCommit: string;
  instanceCommit: string;
  bootstrapRecipient: string;
  masterRecipient: string;
}

async function git(cwd: string, args: string[]): Promise<string> {
  const env = {
    ...process.env,
    GIT_AUTHOR_NAME: 'cc-ci lab',
    GIT_AUTHOR_EMAIL: 'lab@cc-ci.invalid',
    GIT_COMMITTER_NAME: 'cc-ci lab',
    GIT_COMMITTER_EMAIL: 'lab@cc-ci.invalid',
  };
  return (await succeed('git', args, { cwd, env })).stdout.trim();
}

async function writeKeyFile(file: string, identity: string, recipient: string, role: string): Promise<void> {
  const body = `# ${role} (cc-ci-acceptance lab, generated ${new Date().toISOString()})\n# public key: ${recipient}\n${identity}\n`;
  await writeFile(file, body, { mode: 0o600 });
  await chmod(file, 0o600);
}

async function substituteTree(dir: string, values: Record<string, string>): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const file = join(entry.parentPath, entry.name);
    const text = await readFile(file, 'utf8');
    let replaced = text;
    for (const [key, value] of Object.entries(values)) replaced = replaced.split(`@${key}@`).join(value);
    if (replaced !== text) await writeFile(file, replaced);
  }
}

function randomSecret(bytes: number, encoding: 'hex' | 'base64url'): string {
  return randomBytes(bytes).toString(encoding);
}

export async function generateRepos(paths: LabPaths, domain: string, gitUrl: string): Promise<GeneratedRepos> {
  await rm(paths.keysDir, { recursive: true, force: true });
  await rm(paths.caDir, { recursive: true, force: true });
  await rm(paths.gitDir, { recursive: true, force: true });
  await rm(paths.workDir, { recursive: true, force: true });
  await mkdir(paths.keysDir, { recursive: true, mode: 0o700 });
  await mkdir(paths.gitDir, { recursive: true });
  await mkdir(paths.workDir, { recursive: true, mode: 0o700 });

  const bootstrap = await generateIdentity();
  const master = await generateIdentity();
  const bootstrapRecipient = await identityToRecipient(bootstrap);
  const masterRecipient = await identityToRecipient(master);
  await writeKeyFile(paths.bootstrapKey, bootstrap, bootstrapRecipient, 'bootstrap age key: the only secret provisioned out of band');
  await writeKeyFile(paths.masterKey, master, masterRecipient, 'master recovery age key: kept offline');

  const ca = await createCa(paths.caDir, 'cc-ci lab');
  const wildcard = await issueWildcard(ca, paths.caDir, 'wildcard', domain);

  const secrets = {
    wildcard_cert: wildcard.fullchainPem,
    wildcard_key: wildcard.keyPem,
    drone_oauth_client_id: randomSecret(10, 'hex'),
    drone_oauth_client_secret: randomSecret(30, 'base64url'),
    drone_rpc_secret: randomSecret(32, 'hex'),
    webhook_hmac: randomSecret(32, 'hex'),
    registry_credentials: JSON.stringify({ username: 'ccci-bot', password: randomSecret(24, 'base64url') }),
  };
  const values = { DOMAIN: domain, BOOTSTRAP_RECIPIENT: bootstrapRecipient, MASTER_RECIPIENT: masterRecipient, BASE_URL: `${gitUrl}/${BASE_REPO}` };

  const instanceWork = join(paths.workDir, 'cc-ci-secrets');
  await cp(join(HERE, 'instance'), instanceWork, { recursive: true });
  await substituteTree(instanceWork, values);
  await cp(join(instanceWork, 'sops.yaml'), join(instanceWork, '.sops.yaml'));
  await rm(join(instanceWork, 'sops.yaml'));
  await writeFile(join(instanceWork, 'secrets.yaml'), await encryptSops(secrets, { recipients: [bootstrapRecipient, masterRecipient] }));
  await git(instanceWork, ['init', '-q', '-b', 'main']);
  await git(instanceWork, ['add', '-A']);
  await git(instanceWork, ['commit', '-q', '-m', `Instance ${domain}: domain and sops secrets`]);
  const instanceCommit = await git(instanceWork, ['rev-parse', 'HEAD']);
  await git(paths.gitDir, ['clone', '-q', '--bare', instanceWork, join(paths.gitDir, INSTANCE_REPO)]);

  const baseWork = join(paths.workDir, 'cc-ci');
  await cp(join(HERE, 'base'), baseWork, { recursive: true });
  await substituteTree(baseWork, values);
  await git(baseWork, ['init', '-q', '-b', 'main']);
  await writeFile(join(baseWork, '.gitmodules'), `[submodule "secrets"]\n\tpath = secrets\n\turl = ${gitUrl}/${INSTANCE_REPO}\n`);
  await git(baseWork, ['add', '-A']);
  // The submodule is recorded by commit id alone, so no clone over the network is needed here.
  await git(baseWork, ['update-index', '--add', '--cacheinfo', `160000,${instanceCommit},secrets`]);
  await git(baseWork, ['commit', '-q', '-m', 'cc-ci base: generic flake, system tree and runbook']);
  const baseCommit = await git(baseWork, ['rev-parse', 'HEAD']);
  await git(paths.gitDir, ['clone', '-q', '--bare', baseWork, join(paths.gitDir, BASE_REPO)]);
  for (const bare of [BASE_REPO, INSTANCE_REPO]) {
    await writeFile(join(paths.gitDir, bare, 'git-daemon-export-ok'), '');
  }
  return { baseCommit, instanceCommit, bootstrapRecipient, masterRecipient };
}
