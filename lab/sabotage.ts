/**
 * The sabotage catalogue: ways to break a lab run on purpose, each naming the DoD items whose
 * specs must catch it and the words the failure must contain. `ACCEPT_LAB_SABOTAGE=<name>` applies
 * one; the selftest project runs them all and writes the matrix. Host breakage goes through a
 * channel that is not recorded in the ledger, except where being recorded is the point.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../helpers/common/errors.ts';
import { succeed } from '../helpers/common/exec.ts';
import { log } from '../helpers/common/log.ts';
import { decryptSops, parseAgeIdentities } from '../helpers/sops/index.ts';
import type { HostChannel } from '../helpers/target/host.ts';
import { incus } from './incus-cli.ts';
import { createCa, issueWildcard, type LabCa } from './pki.ts';
import { BASE_REPO, INSTANCE_REPO } from './repos.ts';
import { LAB_IMAGE_ALIAS, LAB_PROJECT, labPaths, type LabPaths } from './state.ts';

export interface SabotageContext {
  labDir: string;
  domain: string;
  gitUrl: string;
  /** Not recorded: breakage is not provisioning. */
  host: HostChannel;
  /** The runner's own recorded channel, for sabotage that the ledger must show. */
  recordedHost: HostChannel;
}

export interface Sabotage {
  description: string;
  /** Items whose specs must FAIL. */
  guards: string[];
  /** Items that rightly fail too, and why; every other item must still PASS. */
  alsoFails?: { items: string[]; why: string };
  /** Words the run's failure output must contain: the cause, named. */
  cause: RegExp;
  /** Before the runbook: forks of the lab repos that the operator side reads instead. */
  forkRepos?: (context: SabotageContext) => Promise<{ baseRepo?: string; instanceRepo?: string }>;
  /** On the blank machine, before the runbook: something the rebuild then trips over. */
  beforeRunbook?: (context: SabotageContext) => Promise<void>;
  afterRunbook?: (context: SabotageContext) => Promise<void>;
  /** Teardown "forgets" the throwaway: the cleanup check must fail (the lab deletes it afterwards). */
  leakThrowaway?: boolean;
}

const SABOTAGE_DIR = 'sabotage';
const EXTRA_INSTANCE = 'lichen-staging-sabotage';

async function git(cwd: string, args: string[]): Promise<void> {
  await succeed('git', ['-c', 'user.name=saboteur', '-c', 'user.email=saboteur@cc-ci.invalid', ...args], { cwd });
}

/** Clones a lab repo, lets `edit` commit to it, and publishes the result beside the original. */
async function fork(context: SabotageContext, repo: string, name: string, edit: (dir: string) => Promise<void>): Promise<string> {
  const paths = labPaths(context.labDir);
  const work = await mkdtemp(join(tmpdir(), 'accept-sabotage-'));
  try {
    await succeed('git', ['clone', '-q', join(paths.gitDir, repo), work]);
    await edit(work);
    const bare = join(paths.gitDir, SABOTAGE_DIR, `${name}-${repo}`);
    await rm(bare, { recursive: true, force: true });
    await succeed('git', ['clone', '-q', '--bare', work, bare]);
    await succeed('git', ['update-server-info'], { cwd: bare });
    return `${context.gitUrl}/${SABOTAGE_DIR}/${name}-${repo}`;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function commitFile(dir: string, path: string, content: string, message: string): Promise<void> {
  await writeFile(join(dir, path), content);
  await git(dir, ['add', path]);
  await git(dir, ['commit', '-q', '-m', message]);
}

async function labSecrets(paths: LabPaths): Promise<Record<string, string>> {
  const identities = parseAgeIdentities(await readFile(paths.bootstrapKey, 'utf8'), paths.bootstrapKey);
  const document = await decryptSops(await readFile(join(paths.workDir, 'cc-ci-secrets', 'secrets.yaml'), 'utf8'), { identities });
  return document.data as Record<string, string>;
}

async function serveOtherCert(context: SabotageContext, otherCa: boolean): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'accept-sabotage-'));
  try {
    const paths = labPaths(context.labDir);
    const ca: LabCa = otherCa
      ? await createCa(join(dir, 'ca'), 'Impostor')
      : { root: { cert: paths.rootCa, key: join(paths.caDir, 'root.key') }, intermediate: { cert: join(paths.caDir, 'intermediate.pem'), key: join(paths.caDir, 'intermediate.key') } };
    const cert = await issueWildcard(ca, dir, 'decoy', context.domain);
    await context.host.pushFile('/etc/ccci-sabotage/fullchain.pem', Buffer.from(cert.fullchainPem), { mode: 0o444, purpose: 'sabotage', secret: false });
    await context.host.pushFile('/etc/ccci-sabotage/privkey.pem', Buffer.from(cert.keyPem), { mode: 0o400, purpose: 'sabotage', secret: true });
    await context.host.succeed(
      'ln -sfn /etc/ccci-sabotage/fullchain.pem /var/lib/ci-certs/live/fullchain.pem && ln -sfn /etc/ccci-sabotage/privkey.pem /var/lib/ci-certs/live/privkey.pem && systemctl reload nginx',
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function newPrivateKeyPem(): Promise<string> {
  return (await succeed('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'])).stdout;
}

const IMPOSTOR_KEY = { items: ['C3'], why: "the impostor's private key on the host is itself an unexplained private key" };

export const SABOTAGES: Record<string, Sabotage> = {
  'c1-domain-in-base-history': {
    description: 'the instance domain is committed to the base repo, then removed',
    guards: ['C1'],
    cause: /the base repo is not generic: instance domain/,
    forkRepos: async (context) => ({
      baseRepo: await fork(context, BASE_REPO, 'c1-domain-in-base-history', async (dir) => {
        const readme = await readFile(join(dir, 'README.md'), 'utf8');
        await commitFile(dir, 'README.md', `${readme}\nDeployed at https://${context.domain}/\n`, 'Say where it runs');
        await commitFile(dir, 'README.md', readme, 'Keep the base generic');
      }),
    }),
  },
  'c1-toplevel-from-other-base-commit': {
    description: 'the operator builds a base commit other than the one the machine runs',
    guards: ['C1', 'C5', 'D8'],
    cause: /clean-clone toplevel \/nix\/store\/\S+ ≠ \/run\/current-system/,
    forkRepos: async (context) => ({
      baseRepo: await fork(context, BASE_REPO, 'c1-toplevel-from-other-base-commit', async (dir) => {
        await commitFile(dir, 'system/etc/motd', 'cc-ci, one commit later\n', 'Add a login banner');
      }),
    }),
  },
  'c2-served-cert-other-leaf': {
    description: 'nginx serves another wildcard cert from the same lab CA',
    guards: ['C2'],
    alsoFails: IMPOSTOR_KEY,
    cause: /served leaf fingerprint [0-9A-F:]{95} ≠ git cert [0-9A-F:]{95}/,
    afterRunbook: (context) => serveOtherCert(context, false),
  },
  'c2-served-cert-other-ca': {
    description: 'nginx serves a cert with the same subject and SANs from another CA',
    guards: ['C2'],
    alsoFails: IMPOSTOR_KEY,
    cause: /the served chain does not lead to the trusted root/,
    afterRunbook: (context) => serveOtherCert(context, true),
  },
  'c2-key-of-another-cert': {
    description: 'the cert on the host is right, but privkey.pem belongs to another cert',
    guards: ['C2'],
    alsoFails: IMPOSTOR_KEY,
    cause: /privkey\.pem \(→ \/etc\/ccci-sabotage\/privkey\.pem\) on \S+ is not wildcard_key from git/,
    afterRunbook: async (context) => {
      await context.host.pushFile('/etc/ccci-sabotage/privkey.pem', Buffer.from(await newPrivateKeyPem()), { mode: 0o400, purpose: 'sabotage', secret: true });
      await context.host.succeed('ln -sfn /etc/ccci-sabotage/privkey.pem /var/lib/ci-certs/live/privkey.pem');
    },
  },
  'c3-plaintext-secret-in-instance-history': {
    description: 'a decrypted secret was committed to the instance repo in plaintext, then removed',
    guards: ['C3'],
    cause: /plaintext in the instance repo's history: sops value drone_rpc_secret/,
    forkRepos: async (context) => {
      const secrets = await labSecrets(labPaths(context.labDir));
      return {
        instanceRepo: await fork(context, INSTANCE_REPO, 'c3-plaintext-secret-in-instance-history', async (dir) => {
          await commitFile(dir, 'drone.env', `DRONE_RPC_SECRET=${secrets.drone_rpc_secret}\n`, 'Drone settings');
          await git(dir, ['rm', '-q', 'drone.env']);
          await git(dir, ['commit', '-q', '-m', 'Oops: secrets belong in sops']);
        }),
      };
    },
  },
  'c3-extra-out-of-band-secret': {
    description: 'the runner provisions a registry token by hand, outside git',
    guards: ['C3', 'C4'],
    cause: /secrets pushed out of band/,
    afterRunbook: async (context) => {
      await context.recordedHost.pushFile('/etc/ccci/registry-token', randomBytes(24), { mode: 0o600, purpose: 'hand-provisioned registry token', secret: true });
    },
  },
  'c3-stray-private-key': {
    description: 'a private key nobody accounts for sits in /root/.ssh',
    guards: ['C3'],
    cause: /private keys on \S+ that neither sops nor the bootstrap explains: \/root\/\.ssh\/id_ecdsa/,
    afterRunbook: async (context) => {
      await context.host.pushFile('/root/.ssh/id_ecdsa', Buffer.from(await newPrivateKeyPem()), { mode: 0o600, purpose: 'sabotage', secret: true });
    },
  },
  'c4-oneshot-fails': {
    description: 'the dashboard reconcile oneshot fails',
    guards: ['C4'],
    cause: /ccci-reconcile-dashboard\.service/,
    afterRunbook: async (context) => {
      await context.host.succeed(
        "mkdir -p /run/systemd/system/ccci-reconcile-dashboard.service.d && printf '[Service]\\nExecStartPre=/bin/false\\n' > /run/systemd/system/ccci-reconcile-dashboard.service.d/sabotage.conf && systemctl daemon-reload && (systemctl restart ccci-reconcile-dashboard.service || true)",
      );
    },
  },
  'c5-live-rebuild-fails': {
    description: 'a unit fails during the live rebuild, so nixos-rebuild switch exits 4',
    guards: ['C4', 'C5', 'D8'],
    cause: /the live rebuild exited 4/,
    beforeRunbook: async (context) => {
      // A drop-in outside the toplevel survives the switch, as a hand-made override would.
      await context.host.succeed(
        "mkdir -p /etc/systemd/system/ccci-reconcile-drone.service.d && printf '[Service]\\nExecStartPre=/bin/false\\n' > /etc/systemd/system/ccci-reconcile-drone.service.d/override.conf",
      );
    },
  },
  'c4-command-outside-runbook': {
    description: 'the runner runs a command that docs/install.md does not contain',
    guards: ['C4'],
    cause: /what the harness did to the machine differs from docs\/install\.md/,
    afterRunbook: async (context) => {
      await context.recordedHost.succeed('touch /root/.hand-fixed', { purpose: 'a quick fix by hand' });
    },
  },
  'c5-infeasible-wording': {
    description: 'the published D8 evidence calls the live rebuild infeasible by design',
    guards: ['C5'],
    cause: /the published D8 evidence still declares the live rebuild infeasible: docs\/evidence\/d8\.md:\d+/,
    forkRepos: async (context) => ({
      baseRepo: await fork(context, BASE_REPO, 'c5-infeasible-wording', async (dir) => {
        const doc = await readFile(join(dir, 'docs/evidence/d8.md'), 'utf8');
        await commitFile(dir, 'docs/evidence/d8.md', `${doc}\nThe live half is infeasible by design (sops host-key binding), so only the static half is shown.\n`, 'D8: scope');
      }),
    }),
  },
  'c6-project-over-guideline': {
    description: 'another instance in the project pushes its running memory over the guideline',
    guards: ['C6'],
    cause: /exceeds the 12\.0 GiB guideline \(ACCEPT_RAM_GUIDELINE\)/,
    afterRunbook: async () => {
      await succeed('incus', ['launch', LAB_IMAGE_ALIAS, EXTRA_INSTANCE, '--project', LAB_PROJECT, '-c', 'limits.memory=10GiB']);
    },
  },
  'c6-throwaway-leaks': {
    description: "teardown leaves the throwaway behind",
    guards: ['C6 cleanup'],
    cause: /still present after teardown/,
    leakThrowaway: true,
  },
  'c7-secrets-doc-emptied': {
    description: 'docs/secrets.md is emptied',
    guards: ['C7'],
    cause: /docs\/secrets\.md is missing or empty in the base repo/,
    forkRepos: async (context) => ({
      baseRepo: await fork(context, BASE_REPO, 'c7-secrets-doc-emptied', (dir) => commitFile(dir, 'docs/secrets.md', '', 'Trim the docs')),
    }),
  },
  'c7-architecture-describes-old-model': {
    description: 'docs/architecture.md still describes the old model (one repo, a cert file dropped by hand)',
    guards: ['C7'],
    cause: /docs\/architecture\.md does not describe the base\/instance split/,
    forkRepos: async (context) => ({
      baseRepo: await fork(context, BASE_REPO, 'c7-architecture-describes-old-model', (dir) =>
        commitFile(dir, 'docs/architecture.md', '# Architecture\n\ncc-ci is one repo. The operator copies the wildcard cert to /var/lib/ci-certs by hand, then rebuilds.\n', 'Docs'),
      ),
    }),
  },
};

export function parseSabotage(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!(value in SABOTAGES)) {
    throw new ConfigError('ACCEPT_LAB_SABOTAGE', `unknown sabotage ${JSON.stringify(value)}; known: ${Object.keys(SABOTAGES).join(', ')}`);
  }
  return value;
}

export function describeSabotage(name: string): string {
  return `lab sabotage ${name}: ${SABOTAGES[name]!.description}`;
}

/** Removes whatever sabotage left in the lab itself (forked repos, the extra instance). */
export async function cleanUpSabotage(labDir: string): Promise<void> {
  await rm(join(labPaths(labDir).gitDir, SABOTAGE_DIR), { recursive: true, force: true });
  const extra = await incus(['delete', '--force', EXTRA_INSTANCE, '--project', LAB_PROJECT]);
  if (extra.exitCode === 0) log.info(`removed sabotage instance ${EXTRA_INSTANCE}`);
}
