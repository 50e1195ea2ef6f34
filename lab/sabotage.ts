/**
 * The sabotage catalogue: ways to break a lab run on purpose, each naming the DoD items whose
 * specs must catch it and the words the failure must contain. `ACCEPT_LAB_SABOTAGE=<name>` applies
 * one; the selftest project runs them all and writes the matrix. Host breakage goes through a
 * channel that is not recorded in the ledger, except where being recorded is the point.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../helpers/common/errors.ts';
import { succeed } from '../helpers/common/exec.ts';
import { log } from '../helpers/common/log.ts';
import { decryptSops, parseAgeIdentities, topLevelStrings } from '../helpers/sops/index.ts';
import type { HostChannel } from '../helpers/common/host.ts';
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
  return topLevelStrings(document);
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

/** Replaces `from` with `to` in one file, refusing to do nothing: a sabotage that misses breaks nothing. */
async function patch(dir: string, path: string, from: string, to: string): Promise<void> {
  const text = await readFile(join(dir, path), 'utf8');
  if (!text.includes(from)) throw new Error(`sabotage: ${path} no longer contains ${JSON.stringify(from.slice(0, 60))}`);
  await writeFile(join(dir, path), text.split(from).join(to));
}

/**
 * A fork of the base repo with `patches` applied, whose runbook clones the fork itself, so
 * that the machine runs the broken system and the operator side reads the same one.
 */
async function brokenBase(context: SabotageContext, name: string): Promise<{ baseRepo: string }> {
  const { message, patches } = BASE_PATCHES[name]!;
  const url = `${context.gitUrl}/${SABOTAGE_DIR}/${name}-${BASE_REPO}`;
  return {
    baseRepo: await fork(context, BASE_REPO, name, async (dir) => {
      for (const [path, from, to] of patches) await patch(dir, path, from, to);
      await patch(dir, 'docs/install.md', `${context.gitUrl}/${BASE_REPO}`, url);
      await git(dir, ['commit', '-q', '-am', message]);
    }),
  };
}

const IMPOSTOR_KEY = { items: ['C3'], why: "the impostor's private key on the host is itself an unexplained private key" };

/** What each base-repo sabotage changes: commit message and patches (path, text, replacement). */
export const BASE_PATCHES: Record<string, { message: string; patches: Array<[path: string, from: string, to: string]> }> = {
  'd1-bridge-ignores-membership': {
    message: 'Bridge: let everyone test',
    patches: [['services/bridge.py', '    if not is_member(login):', '    if False and not is_member(login):']],
  },
  'd1-hook-hmac-missing': {
    message: 'Bridge: skip the webhook signature',
    patches: [
      ['services/bridge.py', '        if not signature:', '        if False:'],
      ['services/bridge.py', '        if not hmac.compare_digest(signature.lower(), expected):', '        if False:'],
    ],
  },
  'd2-restore-skipped-reported-green': {
    message: 'Runner: restore is slow, skip it',
    patches: [
      ['services/drone.py', '    os.makedirs(os.path.dirname(path), exist_ok=True)\n', '    os.makedirs(os.path.dirname(path), exist_ok=True)\n    if name == "restore":\n        open(path, "w").close()\n        return 0\n'],
    ],
  },
  'd3-no-browser-tests': {
    message: 'Browser tests: later',
    patches: [
      ['ci/browser.py', 'if name.startswith("test_")]', 'if name.startswith("test_") and False]'],
      ['ci/browser.py', 'sys.exit(1 if failed or not tests else 0)', 'sys.exit(1 if failed else 0)'],
    ],
  },
  'd4-local-tests-not-counted': {
    message: 'Runner: recipe tests are advisory',
    patches: [
      [
        'services/drone.py',
        '            return subprocess.run([ARGS.python, ARGS.harness, name], stdout=out, stderr=subprocess.STDOUT, env=env, timeout=300).returncode',
        '            code = subprocess.run([ARGS.python, ARGS.harness, name], stdout=out, stderr=subprocess.STDOUT, env=env, timeout=300).returncode\n            return 0 if name == "recipe-tests" else code',
      ],
    ],
  },
  'd5-recipes-hardcoded-in-bridge': {
    message: 'Bridge: the recipes we test',
    patches: [
      ['services/bridge.py', 'def enrolled():\n', 'def enrolled():\n    return ["custom-html", "keycloak", "matrix-synapse", "n8n", "cryptpad", "lasuite-docs"]\n'],
    ],
  },
  'd6-secret-in-build-log': {
    message: 'Harness: show the registry login',
    patches: [
      ['ci/harness.py', '    say("install: %s %s answers on %s (title %r)" % (RECIPE, SPEC["install"], URL, SPEC["title"]))\n', '    say("install: %s %s answers on %s (title %r)" % (RECIPE, SPEC["install"], URL, SPEC["title"]))\n    say("install: registry login " + open("/run/secrets/registry_credentials").read())\n'],
    ],
  },
  'd7-badge-missing': {
    message: 'Dashboard: drop badges',
    patches: [['services/dashboard.py', '        ("GET", r"/badge/([A-Za-z0-9._-]+)\\.svg", "badge"),\n', '']],
  },
  'd9-runbook-not-linked': {
    message: 'README: shorter',
    patches: [['README.md', '- [Runbook](docs/runbook.md): operating a running machine.\n', '']],
  },
  'd10-keycloak-browser-test-broken': {
    message: 'keycloak: test the admin console',
    patches: [['tests/keycloak/browser_test.py', 'assert "Keycloak" in page.title()', 'assert "Keycloak Admin Console" in page.title()']],
  },
};

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
    alsoFails: {
      items: ['C3', 'D1', 'D2', 'D3', 'D4', 'D5', 'D6', 'D7', 'D10'],
      why: `${IMPOSTOR_KEY.why}; and the D items reach the forge, Drone and dashboard through the same untrusted TLS, until a D4–D6 rebuild relinks the real cert, so which of them fail depends on their order`,
    },
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
    alsoFails: { items: ['D6'], why: "D6's leak probe covers the instance repo's history too" },
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
    alsoFails: { items: ['D4', 'D5', 'D6'], why: 'D4, D5 and D6 rebuild the host, and those rebuilds trip over the same broken unit (switch exits 4)' },
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
    alsoFails: { items: ['D4', 'D5', 'D6'], why: 'D4, D5 and D6 rebuild the host, and those rebuilds trip over the same broken unit (switch exits 4)' },
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
    // D9 requires the same document to exist and be non-empty.
    guards: ['C7', 'D9'],
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
  'd1-bridge-ignores-membership': {
    description: 'the bridge starts a build for any !testme, member of the org or not',
    guards: ['D1'],
    cause: /a !testme from non-member \S+ \(comment \d+\) started Drone build/,
    forkRepos: (context) => brokenBase(context, 'd1-bridge-ignores-membership'),
  },
  'd1-hook-hmac-missing': {
    description: 'the bridge takes /hook webhooks without checking their signature',
    guards: ['D1'],
    alsoFails: { items: ['D6'], why: 'with no check, a webhook signed with the old webhook_hmac is still accepted after the rotation' },
    cause: /an unsigned \/hook was accepted \(HTTP 2\d\d\)/,
    forkRepos: (context) => brokenBase(context, 'd1-hook-hmac-missing'),
  },
  'd2-restore-skipped-reported-green': {
    description: 'the runner skips the restore step of backup/restore and reports it green',
    guards: ['D2'],
    cause: /stage backup-restore reported success, but its log never shows restore/,
    forkRepos: (context) => brokenBase(context, 'd2-restore-skipped-reported-green'),
  },
  'd3-no-browser-tests': {
    description: 'the browser step finds no browser tests and passes all the same',
    guards: ['D3'],
    cause: /the browser step of build #\d+ ran 0 browser tests/,
    forkRepos: (context) => brokenBase(context, 'd3-no-browser-tests'),
  },
  'd4-local-tests-not-counted': {
    description: "the runner ignores the recipe-local tests' exit code",
    guards: ['D4'],
    cause: /a failing recipe-local test left stage recipe-tests of build #\d+ success/,
    forkRepos: (context) => brokenBase(context, 'd4-local-tests-not-counted'),
  },
  'd5-recipes-hardcoded-in-bridge': {
    description: 'the bridge knows the six recipes by heart instead of reading the enrolment list',
    guards: ['D5'],
    cause: /no Drone build started within 60 s of the !testme comment \d+ by \S+ on \S+\/accept-probe/,
    forkRepos: (context) => brokenBase(context, 'd5-recipes-hardcoded-in-bridge'),
  },
  'd6-secret-in-build-log': {
    description: 'the install step echoes the registry credentials into the build log',
    guards: ['D6'],
    cause: /sops value registry_credentials in the log of build #\d+ install\/deploy/,
    forkRepos: (context) => brokenBase(context, 'd6-secret-in-build-log'),
  },
  'd7-badge-missing': {
    description: 'the dashboard serves no badges',
    guards: ['D7'],
    cause: /GET \/badge\/custom-html\.svg answered 404/,
    forkRepos: (context) => brokenBase(context, 'd7-badge-missing'),
  },
  'd9-runbook-not-linked': {
    description: "the README no longer links the operations runbook",
    guards: ['D9'],
    cause: /docs\/runbook\.md is not linked from README\.md/,
    forkRepos: (context) => brokenBase(context, 'd9-runbook-not-linked'),
  },
  'd10-keycloak-browser-test-broken': {
    description: "keycloak's browser test expects a page the app does not serve, so its install stage fails",
    guards: ['D10'],
    cause: /keycloak: build #\d+ \(fresh !testme \(comment \d+\)\) is not green in all three stages/,
    forkRepos: (context) => brokenBase(context, 'd10-keycloak-browser-test-broken'),
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

/** Removes what one sabotage left in the lab itself (its forked repos, the extra instance). */
export async function cleanUpSabotage(labDir: string, name: string): Promise<void> {
  // Only this sabotage's forks: another run may be using its own at the same time.
  const dir = join(labPaths(labDir).gitDir, SABOTAGE_DIR);
  for (const entry of await readdir(dir).catch(() => [] as string[])) {
    if (entry.startsWith(`${name}-`)) await rm(join(dir, entry), { recursive: true, force: true });
  }
  if (name === 'c6-project-over-guideline') {
    const extra = await incus(['delete', '--force', EXTRA_INSTANCE, '--project', LAB_PROJECT]);
    if (extra.exitCode === 0) log.info(`removed sabotage instance ${EXTRA_INSTANCE}`);
  }
}
