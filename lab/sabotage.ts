/**
 * The sabotage catalogue: ways to break a lab run on purpose, each naming the DoD items whose
 * specs must catch it and the words the failure must contain. `ACCEPT_LAB_SABOTAGE=<name>` applies
 * one; the selftest project runs them all and writes the matrix. Host breakage goes through a
 * channel that is not recorded in the ledger, except where being recorded is the point.
 */
import { randomBytes } from 'node:crypto';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError } from '../helpers/common/errors.ts';
import { succeed } from '../helpers/common/exec.ts';
import { log } from '../helpers/common/log.ts';
import { scratchDir } from '../helpers/common/scratch.ts';
import { decryptSops, parseAgeIdentities, topLevelStrings } from '../helpers/sops/index.ts';
import type { HostChannel } from '../helpers/common/host.ts';
import { incus } from './incus-cli.ts';
import { createCa, issueWildcard, type LabCa } from './pki.ts';
import { BASE_REPO, INSTANCE_REPO } from './repos.ts';
import { applyEdits, type FileEdit, type ForkCommit } from './sabotage-edits.ts';
import { LAB_IMAGE_ALIAS, LAB_NEIGHBOUR, LAB_PRODUCTION, LAB_PROJECT, labPaths, type LabPaths } from './state.ts';

export interface SabotageContext {
  labDir: string;
  domain: string;
  gitUrl: string;
  /** The Incus project the throwaway is in. */
  project: string;
  /** Not recorded: breakage is not provisioning. */
  host: HostChannel;
  /** The runner's own recorded channel, for sabotage that the ledger must show. */
  recordedHost: HostChannel;
  /** The lab's production stand-in (cc-nix-test) in the run's project; not recorded either. */
  production: HostChannel;
  /** Marks a lab machine (production, a neighbour) before the sabotage changes it: the next run makes it afresh. */
  markChanged(machine: string): Promise<void>;
}

/** What a clean-up hook needs: the lab, and nothing of the run (it also runs after an interrupted one). */
export interface SabotageCleanUpContext {
  labDir: string;
  project: string;
}

/**
 * A fork of the base repo made of declared edits, in one commit. `machineRuns`: the fork's
 * runbook clones the fork itself, so that the machine runs the broken system and the operator
 * side reads the same one; otherwise only the operator side reads the fork.
 */
export interface BaseFork {
  message: string;
  edits: readonly FileEdit[];
  machineRuns: boolean;
}

export interface Sabotage {
  description: string;
  /** Items whose specs must FAIL. */
  guards: string[];
  /** Items that rightly fail too, and why; every other item must still PASS. */
  alsoFails?: { items: string[]; why: string };
  /** Words the run's failure output must contain: the cause, named. */
  cause: RegExp;
  /** Before the runbook, as data: the base-repo fork that `forkRepos` publishes. */
  baseFork?: BaseFork;
  /** Before the runbook: forks of the lab repos that the operator side reads instead. */
  forkRepos?: (context: SabotageContext) => Promise<{ baseRepo?: string; instanceRepo?: string }>;
  /**
   * Before the run observes anything (the machines it must leave alone, then the throwaway): a
   * state of the running cc-ci that was so before the run began, such as drift.
   */
  beforeRun?: (context: Pick<SabotageContext, 'labDir' | 'project' | 'production' | 'markChanged'>) => Promise<void>;
  /** On the blank machine, before the runbook: something the rebuild then trips over. */
  beforeRunbook?: (context: SabotageContext) => Promise<void>;
  afterRunbook?: (context: SabotageContext) => Promise<void>;
  /** The row turns on D8's optional reboot check (ACCEPT_REBOOT_CHECK), which it breaks. */
  rebootCheck?: true;
  /** Teardown "forgets" the throwaway: the cleanup check must fail (the lab deletes it afterwards). */
  leakThrowaway?: boolean;
  /** Removes what the sabotage left in the lab itself, beyond its forks (which every clean-up removes). */
  cleanUp?: (context: SabotageCleanUpContext) => Promise<void>;
}

const SABOTAGE_DIR = 'sabotage';
const EXTRA_INSTANCE = 'lichen-staging-sabotage';

async function git(cwd: string, args: string[]): Promise<void> {
  await succeed('git', ['-c', 'user.name=saboteur', '-c', 'user.email=saboteur@cc-ci.invalid', ...args], { cwd });
}

/** The URL a sabotage's fork of `repo` is served at. */
export function forkUrl(gitUrl: string, sabotage: string, repo: string): string {
  return `${gitUrl}/${SABOTAGE_DIR}/${sabotage}-${repo}`;
}

/** Clones a lab repo, commits `commits` to it, and publishes the result beside the original. */
async function fork(context: SabotageContext, repo: string, sabotage: string, commits: readonly ForkCommit[]): Promise<string> {
  const paths = labPaths(context.labDir);
  const work = await scratchDir('accept-sabotage');
  try {
    await succeed('git', ['clone', '-q', join(paths.gitDir, repo), work]);
    for (const { message, edits } of commits) {
      await applyEdits(sabotage, work, edits);
      const files = new Set(edits.map((edit) => edit.file));
      await git(work, ['add', '-A', '--', ...files]);
      await git(work, ['commit', '-q', '-m', message]);
    }
    const bare = join(paths.gitDir, SABOTAGE_DIR, `${sabotage}-${repo}`);
    await rm(bare, { recursive: true, force: true });
    await succeed('git', ['clone', '-q', '--bare', work, bare]);
    await succeed('git', ['update-server-info'], { cwd: bare });
    return forkUrl(context.gitUrl, sabotage, repo);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** The base fork's one commit; when the machine runs it, its runbook clones the fork. */
export function baseForkCommit(context: Pick<SabotageContext, 'gitUrl'>, sabotage: string, { message, edits, machineRuns }: BaseFork): ForkCommit {
  const repoint: FileEdit = { file: 'docs/install.md', expected: `${context.gitUrl}/${BASE_REPO}`, replacement: forkUrl(context.gitUrl, sabotage, BASE_REPO) };
  return { message, edits: machineRuns ? [...edits, repoint] : edits };
}

async function labSecrets(paths: LabPaths): Promise<Record<string, string>> {
  const identities = parseAgeIdentities(await readFile(paths.bootstrapKey, 'utf8'), paths.bootstrapKey);
  const document = await decryptSops(await readFile(join(paths.workDir, 'cc-ci-secrets', 'secrets.yaml'), 'utf8'), { identities });
  return topLevelStrings(document);
}

async function serveOtherCert(context: SabotageContext, otherCa: boolean): Promise<void> {
  const dir = await scratchDir('accept-sabotage');
  try {
    const paths = labPaths(context.labDir);
    const ca: LabCa = otherCa
      ? await createCa(join(dir, 'ca'), 'Impostor')
      : {
          root: { cert: paths.rootCa, key: join(paths.caDir, 'root.key') },
          intermediate: { cert: join(paths.caDir, 'intermediate.pem'), key: join(paths.caDir, 'intermediate.key') },
        };
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

/** A base fork the machine runs: the broken system, built from the fork's own runbook. */
/** A complete live half for a D8 document a sabotage writes whole: the generated one's figures are this generation's. */
const DECLARED_LIVE_HALF = [
  '## Live half',
  '',
  '- Instance: `cc-ci-lab-live`',
  '- Created at: 2026-12-01T09:00:00Z',
  '- Rebuild started at: 2026-12-01T09:01:00Z',
  '- Rebuild finished at: 2026-12-01T09:04:00Z',
  '- Rebuild exit code: 0',
  '- Toplevel: `/nix/store/00000000000000000000000000000000-nixos-system-cc-ci`',
  `- Closure hash: \`sha256:${'0'.repeat(64)}\``,
  '',
];

const brokenBase = (message: string, edits: readonly FileEdit[]): BaseFork => ({ message, edits, machineRuns: true });

const IMPOSTOR_KEY = { items: ['C3'], why: "the impostor's private key on the host is itself an unexplained private key" };
/** D7's failing side reads D4's deliberately failing build: where that build passes, there is no failing run to see reported. */
const NO_FAILING_RUN = { items: ['D7'], why: "D7's failing side has no failing run to see reported: the build of D4's failing pull request passed" };
const REBUILDS_TRIP = { items: ['D4', 'D5', 'D6'], why: 'D4, D5 and D6 rebuild the host, and those rebuilds trip over the same broken unit (switch exits 4)' };

/**
 * Every sabotage by name. Built through `catalogue`, so that the names form `SabotageName` and
 * each `baseFork` gets its `forkRepos`.
 */
export const SABOTAGES = catalogue({
  'c1-domain-in-base-history': {
    description: 'the instance domain is committed to the base repo, then removed',
    guards: ['C1'],
    cause: /the base repo is not generic: instance domain/,
    forkRepos: async (context) => {
      const deployed = `\nDeployed at https://${context.domain}/\n`;
      return {
        baseRepo: await fork(context, BASE_REPO, 'c1-domain-in-base-history', [
          { message: 'Say where it runs', edits: [{ file: 'README.md', append: deployed }] },
          { message: 'Keep the base generic', edits: [{ file: 'README.md', expected: deployed, replacement: '' }] },
        ]),
      };
    },
  },
  'c1-decisions-composition-disagrees': {
    description: 'DECISIONS.md records the flake input as the linkage, while the base repo composes the submodule secrets/',
    guards: ['C1'],
    cause: /DECISIONS\.md line \d+ records the flake input `instance`, but the base repo composes the git submodule secrets\//,
    baseFork: {
      message: 'Revisit the linkage',
      // The last decision wins: a later entry supersedes the generated one.
      edits: [{ file: 'DECISIONS.md', append: '\nLinkage of the instance repo, revisited: decided on the flake input `instance`, pinned in `flake.lock`.\n' }],
      machineRuns: false,
    },
  },
  'c1-toplevel-from-other-base-commit': {
    description: 'the operator builds a base commit other than the one the machine runs',
    guards: ['C1', 'C5', 'D8'],
    cause: /clean-clone toplevel \/nix\/store\/\S+ ≠ \/run\/current-system/,
    baseFork: { message: 'Add a login banner', edits: [{ file: 'system/etc/motd', content: 'cc-ci, one commit later\n' }], machineRuns: false },
  },
  'c1-production-drifted': {
    description: "the running cc-ci (the lab's cc-nix-test) was changed by hand on the host and switched: it no longer runs what git builds",
    guards: ['C1', 'D8'],
    alsoFails: { items: ['C5'], why: "C5 checks that the D8 evidence's static half holds, and that half is the running cc-ci's" },
    cause: /the running cc-ci cc-nix-test has drifted from git: .*clean-clone toplevel \/nix\/store\/\S+ ≠ \/run\/current-system/,
    // Before the run: drift is production's own state, not something the run did (C6 would say so).
    beforeRun: async (context) => {
      await context.markChanged(LAB_PRODUCTION);
      // A hand edit in production's checkout, switched to with the runbook's own rebuild line.
      await context.production.succeed(
        "cd /root/cc-ci && printf 'changed by hand on the host\\n' > system/etc/motd && git add system/etc/motd && eval \"$(grep -m1 '^nixos-rebuild ' docs/install.md)\"",
      );
    },
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
        instanceRepo: await fork(context, INSTANCE_REPO, 'c3-plaintext-secret-in-instance-history', [
          { message: 'Drone settings', edits: [{ file: 'drone.env', content: `DRONE_RPC_SECRET=${secrets.drone_rpc_secret}\n` }] },
          { message: 'Oops: secrets belong in sops', edits: [{ file: 'drone.env', remove: true }] },
        ]),
      };
    },
  },
  'c3-extra-out-of-band-secret': {
    description: 'the runner provisions a registry token by hand, outside git',
    guards: ['C3', 'C4'],
    cause: /secrets pushed out of band/,
    afterRunbook: async (context) => {
      await context.recordedHost.pushFile('/etc/ccci/registry-token', randomBytes(24), {
        mode: 0o600,
        purpose: 'hand-provisioned registry token',
        secret: true,
      });
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
  'c3-decisions-key-disagrees': {
    description: "DECISIONS.md records a key of each host's own, while the throwaway is given the running cc-ci's key",
    guards: ['C3'],
    cause: /DECISIONS\.md line \d+ \("[^"]*"\) records a key of each host's own, but accept-\S+ was given the running cc-ci cc-nix-test's own key/,
    baseFork: {
      message: 'Revisit the bootstrap key',
      // The last decision wins: a later entry supersedes the generated one.
      edits: [{ file: 'DECISIONS.md', append: "\nBootstrap key, revisited: decided on a per-host key, every secret re-encrypted to the host's own.\n" }],
      machineRuns: false,
    },
  },
  'c3-stray-token-copy': {
    description: "someone saved the bridge's forge token outside the secrets directory and forgot it",
    guards: ['C3'],
    cause: /copies of sops values on \S+ outside the places that explain them: \/var\/lib\/ccci\/leftover-token \(forge_bot_token\)/,
    afterRunbook: async (context) => {
      // Copied on the host from where sops-nix installed it: the value never leaves the host or reaches argv.
      await context.host.succeed(
        'mkdir -p /var/lib/ccci && cp -- /run/secrets/forge_bot_token /var/lib/ccci/leftover-token && chmod 0600 /var/lib/ccci/leftover-token',
        { purpose: 'sabotage' },
      );
    },
  },
  'c3-token-copy-url-encoded': {
    description: 'someone saved a registry URL with the registry credentials percent-encoded into its query, and forgot it',
    guards: ['C3'],
    cause:
      /copies of sops values on \S+ outside the places that explain them: \/var\/lib\/ccci\/registry\.url \(registry_credentials\) as [^\n]*registry_credentials: whole value, url-encoded/,
    afterRunbook: async (context) => {
      // Encoded on the host from where sops-nix installed it: the value never leaves the host or reaches argv.
      await context.host.succeed(
        `mkdir -p /var/lib/ccci && python3 -c 'import urllib.parse; print("https://registry.invalid/v2/?auth=" + urllib.parse.quote(open("/run/secrets/registry_credentials").read(), safe=""))' > /var/lib/ccci/registry.url`,
        { purpose: 'sabotage' },
      );
    },
  },
  'c4-oneshot-fails': {
    description: 'the dashboard reconcile oneshot fails',
    guards: ['C4'],
    alsoFails: REBUILDS_TRIP,
    cause: /ccci-reconcile-dashboard\.service/,
    afterRunbook: async (context) => {
      await context.host.succeed(
        "mkdir -p /run/systemd/system/ccci-reconcile-dashboard.service.d && printf '[Service]\\nExecStartPre=/bin/false\\n' > /run/systemd/system/ccci-reconcile-dashboard.service.d/sabotage.conf && systemctl daemon-reload && (systemctl restart ccci-reconcile-dashboard.service || true)",
      );
    },
  },
  // The dashboard's reconcile is the one to stop: no unit Requires, BindsTo or orders itself
  // After it, it has no ExecStop, and the dashboard service does not depend on it, so stopping
  // it changes nothing but its own state (failed units and is-system-running are untouched). A
  // later rebuild (D4–D6) restarts it, and it converges again, so no other item fails.
  'c4-oneshot-stopped': {
    description: 'a reconcile oneshot is stopped after the runbook (the dashboard one: nothing depends on it, so only its own state changes)',
    guards: ['C4'],
    // The unit named as the subject of a line, with its state: a passing run names the unit too.
    cause: /ccci-reconcile-dashboard\.service: .*inactive/,
    afterRunbook: async (context) => {
      // Checked, so that a stop that did not take breaks nothing silently.
      await context.host.succeed('systemctl stop ccci-reconcile-dashboard.service && ! systemctl is-active --quiet ccci-reconcile-dashboard.service');
    },
  },
  'c5-live-rebuild-fails': {
    description: 'a unit fails during the live rebuild, so nixos-rebuild switch exits 4',
    guards: ['C4', 'C5', 'D8'],
    alsoFails: REBUILDS_TRIP,
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
  'c4-blank-machine-lacks-git': {
    description: "the blank machine has no git, which docs/install.md's first step relies on (a minimal NixOS image)",
    guards: ['C4'],
    alsoFails: {
      items: ['C1', 'C2', 'C3', 'C5', 'D5', 'D6', 'D8'],
      why: "nothing was cloned, so nothing was built or switched: the throwaway serves no cert, runs no system, holds no secrets, and has no rebuild of its runbook's for D5's and D6's changes to redo",
    },
    cause:
      /runbook step 1 \(docs\/install\.md:\d+\) could not start `git` on accept-\S+ \(exit 127\): docs\/install\.md relies on a program the blank machine does not have/,
    beforeRunbook: async (context) => {
      await context.host.succeed('rm -f /usr/bin/git /usr/local/bin/git && ! command -v git');
    },
  },
  'c5-infeasible-wording': {
    description: 'the published D8 evidence calls the live rebuild infeasible by design',
    guards: ['C5'],
    cause: /what the system publishes still declares the live rebuild infeasible: docs\/evidence\/d8\.md:\d+/,
    baseFork: {
      message: 'D8: scope',
      edits: [{ file: 'docs/evidence/d8.md', append: '\nThe live half is infeasible by design (sops host-key binding), so only the static half is shown.\n' }],
      machineRuns: false,
    },
  },
  'c5-d8-doc-static-half-missing': {
    description: 'the published D8 evidence is rewritten to the live rebuild alone, its static half dropped',
    guards: ['C5'],
    cause: /docs\/evidence\/d8\.md: the D8 evidence document has no static half/,
    baseFork: {
      message: 'D8: the live rebuild is the evidence',
      // The whole file: the generated one holds this generation's figures, which no declared text can match.
      edits: [
        {
          file: 'docs/evidence/d8.md',
          content: ['# D8: reproducible server', '', ...DECLARED_LIVE_HALF].join('\n'),
        },
      ],
      machineRuns: false,
    },
  },
  'c5-d8-doc-names-unknown-commit': {
    description: "the published D8 evidence is copied from elsewhere: its static half names a commit the base repo's history does not hold",
    guards: ['C5'],
    cause: /docs\/evidence\/d8\.md:\d+: the static half names commit 0badc0de0bad, which is not in the base repo's history/,
    baseFork: {
      message: 'D8: evidence from the staging deployment',
      edits: [
        {
          file: 'docs/evidence/d8.md',
          content: [
            '# D8: reproducible server',
            '',
            '## Static half',
            '',
            '- Commit: `0badc0de0bad`',
            '- Toplevel: `/nix/store/00000000000000000000000000000000-nixos-system-cc-ci`',
            `- Closure hash: \`sha256:${'0'.repeat(64)}\``,
            '- Built at: 2026-12-01T08:50:00Z',
            '',
            ...DECLARED_LIVE_HALF,
          ].join('\n'),
        },
      ],
      machineRuns: false,
    },
  },
  'c6-project-over-guideline': {
    description: 'another instance in the project pushes its running memory over the guideline',
    guards: ['C6'],
    cause: /exceeds the 12\.0 GiB guideline \(ACCEPT_RAM_GUIDELINE\)/,
    afterRunbook: async ({ project }) => {
      await succeed('incus', ['launch', LAB_IMAGE_ALIAS, EXTRA_INSTANCE, '--project', project, '-c', 'limits.memory=10GiB']);
    },
    cleanUp: async ({ project }) => {
      const extra = await incus(['delete', '--force', EXTRA_INSTANCE, '--project', project]);
      if (extra.exitCode === 0) log.info(`removed sabotage instance ${EXTRA_INSTANCE} from ${project}`);
    },
  },
  'c6-neighbour-touched': {
    description: 'the run resizes lichen-staging, the neighbour it must leave alone',
    guards: ['C6', 'C6 cleanup'],
    cause: /the run (?:has )?changed what it must leave alone: lichen-staging \(neighbour\): limits\.memory 4GiB → 3GiB/,
    afterRunbook: async ({ project, markChanged }) => {
      await markChanged(LAB_NEIGHBOUR);
      await succeed('incus', ['config', 'set', LAB_NEIGHBOUR, 'limits.memory=3GiB', '--project', project]);
    },
  },
  'c6-sizing-decision-disagrees': {
    description: "DECISIONS.md records cc-nix-test's final sizing as restored to 6 GB, while it runs with 4GiB",
    guards: ['C6'],
    cause: /DECISIONS\.md line \d+ records cc-nix-test at 6 GB, but it runs with limits\.memory 4GiB/,
    baseFork: {
      message: 'Record the final sizing',
      edits: [{ file: 'DECISIONS.md', expected: 'Decision (W6): keep cc-nix-test at 4 GB.', replacement: 'Decision (W6): restore cc-nix-test to 6 GB.' }],
      machineRuns: false,
    },
  },
  'c6-throwaway-leaks': {
    description: 'teardown leaves the throwaway behind',
    guards: ['C6 cleanup'],
    cause: /still present after teardown/,
    leakThrowaway: true,
  },
  'c7-secrets-doc-emptied': {
    description: 'docs/secrets.md is emptied',
    // D9 requires the same document to exist and be non-empty.
    guards: ['C7', 'D9'],
    cause: /docs\/secrets\.md is missing or empty in the base repo/,
    baseFork: { message: 'Trim the docs', edits: [{ file: 'docs/secrets.md', content: '' }], machineRuns: false },
  },
  'c7-architecture-describes-old-model': {
    description: 'docs/architecture.md still describes the old model (one repo, a cert file dropped by hand)',
    guards: ['C7'],
    cause: /docs\/architecture\.md does not describe the base\/instance split/,
    baseFork: {
      message: 'Docs',
      edits: [
        {
          file: 'docs/architecture.md',
          content: '# Architecture\n\ncc-ci is one repo. The operator copies the wildcard cert to /var/lib/ci-certs by hand, then rebuilds.\n',
        },
      ],
      machineRuns: false,
    },
  },
  'd1-bridge-ignores-membership': {
    description: 'the bridge starts a build for any !testme, member of the org or not',
    guards: ['D1'],
    cause: /a !testme from non-member \S+ \(comment \d+\) started Drone build/,
    baseFork: brokenBase('Bridge: let everyone test', [
      { file: 'services/bridge.py', expected: '    if not is_member(login):', replacement: '    if False and not is_member(login):' },
    ]),
  },
  'd1-hook-hmac-missing': {
    description: 'the bridge takes /hook webhooks without checking their signature',
    guards: ['D1'],
    alsoFails: { items: ['D6'], why: 'with no check, a webhook signed with the old webhook_hmac is still accepted after the rotation' },
    cause: /an unsigned \/hook was accepted \(HTTP 2\d\d\)/,
    baseFork: brokenBase('Bridge: skip the webhook signature', [
      { file: 'services/bridge.py', expected: '        if not signature:', replacement: '        if False:' },
      { file: 'services/bridge.py', expected: '        if not hmac.compare_digest(signature.lower(), expected):', replacement: '        if False:' },
    ]),
  },
  'd1-hook-any-signature': {
    description: 'the bridge takes a /hook webhook with any signature: it checks that one is there, not that it is right',
    guards: ['D1'],
    alsoFails: { items: ['D6'], why: 'a webhook signed with the old webhook_hmac is still accepted after the rotation' },
    cause: /a \/hook signed with another key was accepted \(HTTP 2\d\d\)/,
    baseFork: brokenBase('Bridge: a signature is a signature', [
      { file: 'services/bridge.py', expected: '        if not hmac.compare_digest(signature.lower(), expected):', replacement: '        if False:' },
    ]),
  },
  'd2-restore-skipped-reported-green': {
    description: 'the runner skips the restore step of backup/restore and reports it green',
    guards: ['D2'],
    cause: /stage backup-restore reported success, but its log never shows restore/,
    baseFork: brokenBase('Runner: restore is slow, skip it', [
      {
        file: 'services/drone.py',
        expected: '    os.makedirs(os.path.dirname(path), exist_ok=True)\n',
        replacement: '    os.makedirs(os.path.dirname(path), exist_ok=True)\n    if name == "restore":\n        open(path, "w").close()\n        return 0\n',
      },
    ]),
  },
  'd3-no-browser-tests': {
    description: 'the browser step finds no browser tests and passes all the same',
    guards: ['D3'],
    cause: /the browser step of build #\d+ ran 0 browser tests/,
    baseFork: brokenBase('Browser tests: later', [
      { file: 'ci/browser.py', expected: 'if name.startswith("test_")]', replacement: 'if name.startswith("test_") and False]' },
      { file: 'ci/browser.py', expected: 'sys.exit(1 if failed or not tests else 0)', replacement: 'sys.exit(1 if failed else 0)' },
    ]),
  },
  'd3-http-only-browser': {
    description: 'the browser step runs the browser tests on the HTTP-level stand-in: HTML fetched and parsed, no browser engine, no JavaScript',
    guards: ['D3'],
    cause: /the browser tests of build #\d+ ran on "http-standin \(no browser: HTML fetched and parsed, no JavaScript\)", not on a real Chromium/,
    alsoFails: {
      items: ['D2', 'D4', 'D5', 'D7', 'D10'],
      why: "without JavaScript the recipes' script check fails, so every install stage fails, the stages after it are skipped, and no recipe's build is green (so D7 has no passing run whose badge it could read)",
    },
    baseFork: brokenBase('Browser tests: skip the browser', [
      { file: 'ci/browser.py', expected: 'if importlib.util.find_spec("selenium") and os.path.exists(CHROMEDRIVER):', replacement: 'if False:' },
    ]),
  },
  'd4-local-tests-not-counted': {
    description: "the runner ignores the recipe-local tests' exit code",
    guards: ['D4'],
    cause: /a failing recipe-local test left stage recipe-tests of build #\d+ success/,
    alsoFails: NO_FAILING_RUN,
    baseFork: brokenBase('Runner: recipe tests are advisory', [
      {
        file: 'services/drone.py',
        expected: '    return run_harness(name, env, path)\n',
        replacement: '    code = run_harness(name, env, path)\n    return 0 if name == "recipe-tests" else code\n',
      },
    ]),
  },
  'd4-recipe-tests-from-default-branch': {
    description: "the runner reads the recipe repo's tests/ from its default branch, not from the head of the pull request the build is for",
    guards: ['D4'],
    cause: /a failing recipe-local test left stage recipe-tests of build #\d+ success/,
    alsoFails: {
      items: ['D5', ...NO_FAILING_RUN.items],
      why: `the enrolled probe's own test is on its enrolment branch, not on main, so its first build finds no recipe-local test and fails; ${NO_FAILING_RUN.why}`,
    },
    baseFork: brokenBase('Runner: recipe tests from main', [
      { file: 'ci/harness.py', expected: '    sha = pull["head"]["sha"]\n', replacement: '    sha = "main"\n' },
    ]),
  },
  'd5-recipes-hardcoded-in-bridge': {
    description: 'the bridge knows the six recipes by heart instead of reading the enrolment list',
    guards: ['D5'],
    cause: /no Drone build started within 60 s (\(ACCEPT_BUILD_START_TIMEOUT\) )?of the !testme comment \d+ by \S+ on \S+\/accept-probe/,
    baseFork: brokenBase('Bridge: the recipes we test', [
      {
        file: 'services/bridge.py',
        expected: 'def enrolled():\n',
        replacement: 'def enrolled():\n    return ["custom-html", "keycloak", "matrix-synapse", "n8n", "cryptpad", "lasuite-docs"]\n',
      },
    ]),
  },
  'd6-secret-in-build-log': {
    description: 'the install step echoes the registry credentials into the build log',
    guards: ['D6'],
    cause: /sops value registry_credentials in the log of build #\d+ install\/deploy/,
    baseFork: brokenBase('Harness: show the registry login', [
      {
        file: 'ci/harness.py',
        expected: '    say("install: %s %s answers on %s (title %r)" % (RECIPE, SPEC["install"], URL, SPEC["title"]))\n',
        replacement:
          '    say("install: %s %s answers on %s (title %r)" % (RECIPE, SPEC["install"], URL, SPEC["title"]))\n    say("install: registry login " + open("/run/secrets/registry_credentials").read())\n',
      },
    ]),
  },
  'd6-secret-base64-in-build-log': {
    description: 'the install step prints the registry credentials base64-encoded, as a Docker auth string, into the build log',
    guards: ['D6'],
    cause: /sops value registry_credentials in the log of build #\d+ install\/deploy \(as [^)]*whole value, base64/,
    baseFork: brokenBase('Harness: show the registry auth string', [
      {
        file: 'ci/harness.py',
        expected: '    say("install: %s %s answers on %s (title %r)" % (RECIPE, SPEC["install"], URL, SPEC["title"]))\n',
        replacement:
          '    say("install: %s %s answers on %s (title %r)" % (RECIPE, SPEC["install"], URL, SPEC["title"]))\n    say("install: registry auth " + base64.b64encode(open("/run/secrets/registry_credentials", "rb").read()).decode())\n',
      },
    ]),
  },
  'd6-rotation-keeps-old-webhook-hmac': {
    description:
      'after a rotation the bridge still takes webhooks signed with the old webhook_hmac: it accepts the key of every generation of /run/secrets.d still on the machine',
    guards: ['D6'],
    cause: /after rotating webhook_hmac and rebuilding, a webhook signed with the old value was still accepted \(HTTP 2\d\d\)/,
    // Old generations are sops-nix's own copies (C3 explains them): the sabotage writes no new one.
    baseFork: brokenBase('Bridge: a grace period for rotated webhook keys', [
      {
        file: 'services/bridge.py',
        expected:
          '        expected = hmac.new(secret("webhook_hmac").encode(), raw, hashlib.sha256).hexdigest()\n        if not hmac.compare_digest(signature.lower(), expected):\n',
        replacement:
          '        keys = {secret("webhook_hmac")} | {open(path, encoding="utf-8").read().strip() for path in __import__("glob").glob("/run/secrets.d/*/webhook_hmac")}\n' +
          '        if not any(hmac.compare_digest(signature.lower(), hmac.new(key.encode(), raw, hashlib.sha256).hexdigest()) for key in keys):\n',
      },
    ]),
  },
  'd7-badge-missing': {
    description: 'the dashboard serves no badges',
    guards: ['D7'],
    cause: /GET \/badge\/custom-html\.svg answered 404/,
    baseFork: brokenBase('Dashboard: drop badges', [
      { file: 'services/dashboard.py', expected: '        ("GET", r"/badge/([A-Za-z0-9._-]+)\\.svg", "badge"),\n', replacement: '' },
    ]),
  },
  'd7-dashboard-shows-every-run-passing': {
    description: 'the dashboard shows every finished run as success, and every badge as passing, whatever Drone says',
    guards: ['D7'],
    cause: /the run list's entry for build #\d+ \(failure\) reads "#\d+ \S+ success": it says passing/,
    baseFork: brokenBase('Dashboard: stay positive', [
      {
        file: 'services/dashboard.py',
        expected: 'def drone(path):\n    return call("GET", ARGS.drone + "/api" + path, "Bearer " + secret(ARGS.drone_token_secret))\n',
        replacement:
          'def drone(path):\n    status, body = call("GET", ARGS.drone + "/api" + path, "Bearer " + secret(ARGS.drone_token_secret))\n' +
          '    for build in body if isinstance(body, list) else [body]:\n' +
          '        if isinstance(build, dict) and build.get("status") in ("failure", "error", "killed"):\n' +
          '            build["status"] = "success"\n' +
          '    return status, body\n',
      },
    ]),
  },
  'd7-bridge-reports-every-run-passed': {
    description: 'the bridge comments "passed" on the PR of every finished run, whatever its status',
    guards: ['D7'],
    cause: /the outcome comment of failing build #\d+ \(failure\) on \S+: it says passing as well as failing/,
    baseFork: brokenBase('Bridge: good news only', [
      {
        file: 'services/bridge.py',
        expected: '            verdict = "passed" if build["status"] == "success" else "failed"\n',
        replacement: '            verdict = "passed"\n',
      },
    ]),
  },
  'd5-enrolment-by-hand-only': {
    description: 'docs/enroll.md describes enrolment in prose only: no procedure a harness or a person can follow step by step',
    guards: ['D5'],
    cause: /docs\/enroll\.md in the base repo holds no ```sh enrol block/,
    baseFork: brokenBase('docs: enrolment in prose', [{ file: 'docs/enroll.md', expected: '```sh enrol\n', replacement: '```sh\n' }]),
  },
  'd8-switch-not-the-boot-default': {
    description: "the switched system is not the boot default (the system profile still names the blank image's system): a reboot brings back another system",
    guards: ['D8'],
    cause: /after the reboot/,
    rebootCheck: true,
    afterRunbook: async (context) => {
      // Later rebuilds (D5's, D6's) must not mend it: this machine's nixos-rebuild stops setting the profile.
      await context.host.succeed(
        "sed -i 's|^nix-env --profile /nix/var/nix/profiles/system --set \"$toplevel\"$|true # not made the boot default|' /usr/local/sbin/nixos-rebuild && grep -q '^true # not made the boot default' /usr/local/sbin/nixos-rebuild && " +
          'nix-env --profile /nix/var/nix/profiles/system --set "$(readlink -f /run/booted-system)" && [ "$(readlink -f /nix/var/nix/profiles/system)" != "$(readlink -f /run/current-system)" ]',
      );
    },
  },
  'd9-runbook-not-linked': {
    description: 'the README no longer links the operations runbook',
    guards: ['D9'],
    cause: /docs\/runbook\.md is not linked from README\.md/,
    baseFork: brokenBase('README: shorter', [{ file: 'README.md', expected: '- [Runbook](docs/runbook.md): operating a running machine.\n', replacement: '' }]),
  },
  'd10-keycloak-browser-test-broken': {
    description: "keycloak's browser test expects a page the app does not serve, so its install stage fails",
    guards: ['D10'],
    cause: /keycloak: build #\d+ \(fresh !testme \(comment \d+\)\) is not green in all three stages/,
    baseFork: brokenBase('keycloak: test the admin console', [
      { file: 'tests/keycloak/browser_test.py', expected: 'assert "Keycloak" in page.title()', replacement: 'assert "Keycloak Admin Console" in page.title()' },
    ]),
  },
});

export type SabotageName = keyof typeof SABOTAGES;

/**
 * The catalogue as given, each `baseFork` turned into the `forkRepos` hook that publishes it
 * under the sabotage's own name. An entry with both is refused: which one would run?
 */
function catalogue<Name extends string>(definitions: Record<Name, Sabotage>): Readonly<Record<Name, Sabotage>> {
  const entries = Object.entries<Sabotage>(definitions).map(([name, sabotage]): [string, Sabotage] => {
    const { baseFork } = sabotage;
    if (!baseFork) return [name, sabotage];
    if (sabotage.forkRepos) throw new Error(`sabotage ${name}: declares both baseFork and forkRepos in lab/sabotage.ts; keep one`);
    return [
      name,
      { ...sabotage, forkRepos: async (context) => ({ baseRepo: await fork(context, BASE_REPO, name, [baseForkCommit(context, name, baseFork)]) }) },
    ];
  });
  return Object.fromEntries(entries) as Record<Name, Sabotage>;
}

export function isSabotageName(value: string): value is SabotageName {
  return Object.hasOwn(SABOTAGES, value);
}

export function parseSabotage(value: string | undefined): SabotageName | undefined {
  if (value === undefined) return undefined;
  if (!isSabotageName(value)) {
    throw new ConfigError('ACCEPT_LAB_SABOTAGE', `unknown sabotage ${JSON.stringify(value)}; known: ${Object.keys(SABOTAGES).join(', ')}`);
  }
  return value;
}

export function describeSabotage(name: SabotageName): string {
  return `lab sabotage ${name}: ${SABOTAGES[name].description}`;
}

/** Removes what one sabotage left in the lab itself: its forked repos, then whatever its own hook removes. */
export async function cleanUpSabotage(labDir: string, name: SabotageName, project: string = LAB_PROJECT): Promise<void> {
  // Only this sabotage's forks: another run may be using its own at the same time.
  const dir = join(labPaths(labDir).gitDir, SABOTAGE_DIR);
  for (const entry of await readdir(dir).catch(() => [] as string[])) {
    if (entry.startsWith(`${name}-`)) await rm(join(dir, entry), { recursive: true, force: true });
  }
  await SABOTAGES[name].cleanUp?.({ labDir, project });
}

/**
 * Removes what any sabotage may have left in a project: an interrupted sabotage run's extra
 * instance, drifted production or resized neighbour. Each sabotage with a clean-up of its own,
 * in catalogue order.
 */
export async function cleanUpEverySabotage(labDir: string, project: string): Promise<void> {
  for (const name of Object.keys(SABOTAGES) as SabotageName[]) {
    if (SABOTAGES[name].cleanUp) await cleanUpSabotage(labDir, name, project);
  }
}
