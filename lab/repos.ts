/**
 * Generates the two repos a cc-ci deployment is made of, with fresh keys every bring-up:
 * the generic base repo `cc-ci` and the instance repo `cc-ci-secrets` (domain and sops secrets).
 */
import { randomBytes } from 'node:crypto';
import { chmod, cp, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateIdentity, identityToRecipient } from 'age-encryption';
import { succeed } from '../helpers/common/exec.ts';
import { scratchDir } from '../helpers/common/scratch.ts';
import { buildToplevel, closure, closureHash, OFFLINE_NIX_CONFIG, toplevelAttr } from '../helpers/nix/index.ts';
import { encryptSops } from '../helpers/sops/index.ts';
import type { SystemNames } from '../helpers/common/config.ts';
import { createCa, issueLoopbackServer, issueWildcard } from './pki.ts';
import type { LabPaths } from './state.ts';

/** The forge users' tokens (sops values of the instance repo): the bridge's bot, a member and an outsider. */
export const FORGE_TOKENS = ['forge_bot_token', 'forge_member_token', 'forge_outsider_token'] as const;

const HERE = dirname(fileURLToPath(import.meta.url));
export const BASE_REPO = 'cc-ci.git';
/** What the generated repos are made from; a change to any of it regenerates them. */
export const REPO_TEMPLATES = [join(HERE, 'base'), join(HERE, 'instance'), join(HERE, 'layouts'), join(HERE, 'repos.ts'), join(HERE, 'pki.ts')];
export const INSTANCE_REPO = 'cc-ci-secrets.git';
/** The D8 document the lab's system publishes in its base repo (helpers/docs/d8-document.ts). */
export const D8_DOCUMENT = 'docs/evidence/d8.md';

/** The names the lab's generated system uses where cc-ci's are unknown (each a required setting on a real target). */
export const LAB_SYSTEM_NAMES: SystemNames = {
  oneshots: [
    'ccci-secrets.service',
    'ccci-reconcile-swarm.service',
    'ccci-reconcile-proxy.service',
    'ccci-reconcile-drone.service',
    'ccci-reconcile-bridge.service',
    'ccci-reconcile-dashboard.service',
  ],
  d8Doc: D8_DOCUMENT,
  buildParams: { recipe: 'RECIPE', pull: 'PR', comment: 'COMMENT_ID' },
  stageWords: { install: 'install', upgrade: 'upgrade', backupRestore: 'backup|restore', recipeTests: 'recipe|local', browser: 'browser|playwright' },
  enrolment: { list: 'tests/enrolled', tree: 'tests/{recipe}/', doc: 'docs/enroll.md' },
  runbookDoc: 'docs/runbook.md',
};

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

export type Layout = 'submodule' | 'input';

/** How each layout is cloned and built; the runbook in docs/install.md says the same. */
function layoutValues(layout: Layout, gitUrl: string): Record<string, string> {
  return layout === 'submodule'
    ? {
        CLONE: `git clone --recursive ${gitUrl}/${BASE_REPO} /root/cc-ci`,
        FLAKE_REF: "'/root/cc-ci?submodules=1#cc-ci'",
        COMPOSITION:
          'The instance repo (domain, `.sops.yaml`, `secrets.yaml`) is the git submodule `secrets/`, so the clone is recursive and the build passes `?submodules=1`.',
        LINKAGE_DECISION: 'Decision: the git submodule `secrets/`, so that one recursive clone holds everything the build needs.',
      }
    : {
        CLONE: `git clone ${gitUrl}/${BASE_REPO} /root/cc-ci`,
        FLAKE_REF: '/root/cc-ci#cc-ci',
        COMPOSITION:
          'The instance repo (domain, `.sops.yaml`, `secrets.yaml`) is the flake input `instance`, pinned in `flake.lock`; Nix fetches it during the build.',
        LINKAGE_DECISION: 'Decision: the flake input `instance`, pinned in `flake.lock`, as the seed recommends.',
      };
}

async function nixEnv(): Promise<NodeJS.ProcessEnv> {
  return { ...process.env, NIX_CONFIG: NIX_OFFLINE_CONFIG };
}

export const NIX_OFFLINE_CONFIG = 'build-users-group =\nsandbox = false\nexperimental-features = nix-command flakes\nflake-registry =\nsubstituters =';

export interface MeasuredToplevel {
  toplevel: string;
  closureHash: string;
  builtAt: string;
  finishedAt: string;
}

const withoutGit = (source: string) => basename(source) !== '.git';

/**
 * Builds the toplevel of a base work tree (the instance tree in `secrets/` for the submodule
 * layout) from a copy with no .git, as a path flake: the store path depends on the committed
 * content only, so it is the one a clean checkout gives.
 */
export async function measureToplevel(baseTree: string, instanceTree: string | undefined): Promise<MeasuredToplevel> {
  const scratch = await scratchDir('accept-lab-d8');
  try {
    const tree = join(scratch, 'cc-ci');
    await cp(baseTree, tree, { recursive: true, filter: withoutGit });
    if (instanceTree) await cp(instanceTree, join(tree, 'secrets'), { recursive: true, filter: withoutGit });
    const builtAt = new Date().toISOString();
    const toplevel = await buildToplevel({ flakeRef: `path:${tree}`, attr: toplevelAttr(), nixConfig: OFFLINE_NIX_CONFIG });
    const hash = closureHash(await closure(toplevel, { nixConfig: OFFLINE_NIX_CONFIG }));
    return { toplevel, closureHash: hash, builtAt, finishedAt: new Date().toISOString() };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** The lab's stand-in live rebuild, as its operators would record it (see docs/lab.md). */
export const LAB_LIVE_INSTANCE = 'cc-ci-lab-live';

/** The placeholders of lab/base/docs/evidence/d8.md. */
export function d8DocumentValues(measured: MeasuredToplevel, commit: string): Record<string, string> {
  return {
    D8_STATIC_COMMIT: commit,
    D8_STATIC_TOPLEVEL: measured.toplevel,
    D8_STATIC_CLOSURE_HASH: measured.closureHash,
    D8_STATIC_BUILT_AT: measured.builtAt,
    D8_LIVE_INSTANCE: LAB_LIVE_INSTANCE,
    D8_LIVE_CREATED_AT: measured.builtAt,
    D8_LIVE_STARTED_AT: measured.builtAt,
    D8_LIVE_FINISHED_AT: measured.finishedAt,
    D8_LIVE_TOPLEVEL: measured.toplevel,
    D8_LIVE_CLOSURE_HASH: measured.closureHash,
  };
}

/** A bare repo that dumb-HTTP clients can fetch, now and after any later push. */
async function publishBare(workDir: string, bare: string): Promise<void> {
  await git(dirname(bare), ['clone', '-q', '--bare', workDir, bare]);
  await writeFile(join(bare, 'hooks', 'post-update'), '#!/bin/sh\nexec git update-server-info\n', { mode: 0o755 });
  await git(bare, ['update-server-info']);
}

export async function generateRepos(paths: LabPaths, domain: string, gitUrl: string, layout: Layout): Promise<GeneratedRepos> {
  await rm(paths.keysDir, { recursive: true, force: true });
  await rm(paths.caDir, { recursive: true, force: true });
  await rm(paths.workDir, { recursive: true, force: true });
  // The git server keeps serving this directory: empty it rather than remove it.
  await mkdir(paths.gitDir, { recursive: true });
  for (const entry of await readdir(paths.gitDir)) await rm(join(paths.gitDir, entry), { recursive: true, force: true });
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
  // The forge is not cc-ci's: it runs on the lab host (lab/forge.ts), over HTTPS for the harness.
  await rm(paths.forgeDir, { recursive: true, force: true });
  await mkdir(join(paths.forgeDir, 'tokens'), { recursive: true, mode: 0o700 });
  await issueLoopbackServer(ca, paths.caDir, 'forge', 'cc-ci lab forge');

  const secrets = {
    wildcard_cert: wildcard.fullchainPem,
    wildcard_key: wildcard.keyPem,
    drone_oauth_client_id: randomSecret(10, 'hex'),
    drone_oauth_client_secret: randomSecret(30, 'base64url'),
    drone_rpc_secret: randomSecret(32, 'hex'),
    webhook_hmac: randomSecret(32, 'hex'),
    registry_credentials: JSON.stringify({ username: 'ccci-bot', password: randomSecret(24, 'base64url') }),
    // API tokens of the stand-ins: the bridge's forge account, two forge users the specs act as, and Drone's.
    forge_bot_token: randomSecret(20, 'hex'),
    forge_member_token: randomSecret(20, 'hex'),
    forge_outsider_token: randomSecret(20, 'hex'),
    drone_api_token: randomSecret(20, 'hex'),
  };
  // The forge's side of its users' tokens, as a real forge holds its own (the instance repo holds the bridge's and the test users').
  for (const name of FORGE_TOKENS) await writeFile(join(paths.forgeDir, 'tokens', name), `${secrets[name]}\n`, { mode: 0o600 });
  const values = {
    DOMAIN: domain,
    BOOTSTRAP_RECIPIENT: bootstrapRecipient,
    MASTER_RECIPIENT: masterRecipient,
    INSTANCE_URL: `${gitUrl}/${INSTANCE_REPO}`,
    ...layoutValues(layout, gitUrl),
  };

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
  await publishBare(instanceWork, join(paths.gitDir, INSTANCE_REPO));

  const baseWork = join(paths.workDir, 'cc-ci');
  await cp(join(HERE, 'base'), baseWork, { recursive: true });
  if (layout === 'input') await cp(join(HERE, 'layouts', 'input', 'flake.nix'), join(baseWork, 'flake.nix'));
  await substituteTree(baseWork, values);
  await git(baseWork, ['init', '-q', '-b', 'main']);
  if (layout === 'submodule') {
    await writeFile(join(baseWork, '.gitmodules'), `[submodule "secrets"]\n\tpath = secrets\n\turl = ${gitUrl}/${INSTANCE_REPO}\n`);
    await git(baseWork, ['add', '-A']);
    // The submodule is recorded by commit id alone, so no clone over the network is needed here.
    await git(baseWork, ['update-index', '--add', '--cacheinfo', `160000,${instanceCommit},secrets`]);
  } else {
    await git(baseWork, ['add', '-A']);
    // Pins the instance input (rev and narHash) through the git server, as an operator would.
    await succeed('nix', ['flake', 'lock'], { cwd: baseWork, env: await nixEnv() });
    await git(baseWork, ['add', 'flake.lock']);
  }
  // The system first; its D8 document in the commit after, naming the one it measured (no commit can name itself).
  await git(baseWork, ['rm', '-r', '-q', '--cached', 'docs/evidence']);
  await git(baseWork, ['commit', '-q', '-m', 'cc-ci base: generic flake, system tree and runbook']);
  const measuredCommit = await git(baseWork, ['rev-parse', 'HEAD']);
  await substituteTree(
    join(baseWork, 'docs', 'evidence'),
    d8DocumentValues(await measureToplevel(baseWork, layout === 'submodule' ? instanceWork : undefined), measuredCommit),
  );
  await git(baseWork, ['add', 'docs/evidence']);
  await git(baseWork, ['commit', '-q', '-m', `D8 evidence, measured at ${measuredCommit.slice(0, 12)}`]);
  const baseCommit = await git(baseWork, ['rev-parse', 'HEAD']);
  await publishBare(baseWork, join(paths.gitDir, BASE_REPO));
  return { baseCommit, instanceCommit, bootstrapRecipient, masterRecipient };
}
