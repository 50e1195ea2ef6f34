/**
 * The names the specs rely on in the system under test: its documents, units, build
 * parameters, stage names, dashboard links, recipe layout and secret paths. Specs read them
 * from here (through the run context) and hold none of their own, so a system that names a
 * thing differently changes one profile, not seventeen specs. Data only, no patterns: it crosses
 * to the spec workers through Vitest's provide/inject.
 */
import { LAB_ONESHOTS, type Config } from '../helpers/common/config.ts';

export interface SystemProfile {
  /** Whose contracts these are, as the evidence names them. */
  name: string;
  /** Paths in the base repo. */
  docs: {
    readme: string;
    /** The runbook a cold run executes (clone, key, one rebuild). */
    install: string;
    enroll: string;
    secrets: string;
    architecture: string;
    runbook: string;
    /** The decision log, where the seed has the final sizing of the running cc-ci recorded (C6). */
    decisions: string;
    /** The system's own published D8 evidence (ACCEPT_D8_DOC). */
    d8Evidence: string;
  };
  instance: {
    /** The sops file in the instance repo. */
    secretsFile: string;
    /** Where the submodule layout mounts the instance repo in the base repo. */
    submodule: string;
  };
  host: {
    /** The one secret provisioned outside git. */
    bootstrapKey: string;
    /** Where sops-nix installs the decrypted values. */
    secretsDir: string;
    /** Where activation puts the wildcard chain and key. */
    certChain: string;
    certKey: string;
    /** The reconcile oneshots, in the order they converge (ACCEPT_ONESHOTS). */
    oneshots: string[];
  };
  /** What the bridge puts on a Drone build. */
  build: {
    /** Build parameter names: the recipe, the PR number, the triggering comment's id. */
    params: { recipe: string; pull: string; comment: string };
    /** Words a stage's name contains, matched case-insensitively, `|` between alternatives. */
    stages: { install: string; upgrade: string; backupRestore: string; recipeTests: string };
    /** Words that mark the browser-test step's name or log. */
    browserSteps: string;
    /**
     * The browser engine the recipes' browser tests must run on: `pattern` (case-insensitive)
     * matches the engine the browser step's log names (`engine …`), `name` says it in a verdict.
     */
    browserEngine: { pattern: string; name: string };
  };
  dashboard: {
    /** `{n}` is the build number. */
    runPath: string;
    /** `{recipe}` is the recipe's name. */
    badgePath: string;
  };
  recipes: {
    /** The enrolment list in the base repo: one recipe a line. */
    enrolled: string;
    /** A recipe's own tree; `{recipe}` is its name. */
    tree: string;
    /** Where a recipe's own tests live in the recipe's repo (not in the tree): `test*.py` files there. */
    localTests: string;
    /**
     * How the enrolment document (docs.enroll) marks the procedure a harness follows: fenced
     * ```sh <marker> blocks, run in the checkout with the variables below set.
     */
    enrolMarker: string;
    /** The procedure's variables: the new recipe, an enrolled one to start from, a free port. */
    enrolVariables: { recipe: string; from: string; port: string };
  };
}

/** cc-ci's contracts, as its DoD and its repos name them. */
export function ccciProfile(config: Pick<Config, 'oneshots' | 'd8Doc' | 'layout'>): SystemProfile {
  // Unset only where the lab resolves it (its own names), or in tests: a real target requires it (resolve.ts).
  const oneshots = config.oneshots ?? LAB_ONESHOTS;
  return {
    name: 'cc-ci',
    docs: {
      readme: 'README.md',
      install: 'docs/install.md',
      enroll: 'docs/enroll.md',
      secrets: 'docs/secrets.md',
      // The DoD's C7 names it at the repo's top, beside docs/install.md and docs/secrets.md (ACCEPT_ARCHITECTURE_DOC).
      architecture: config.layout.architecture,
      runbook: 'docs/runbook.md',
      decisions: 'DECISIONS.md',
      d8Evidence: config.d8Doc,
    },
    // The seed's: secrets/secrets.yaml in the instance repo; the submodule alternative at cc-ci/instance/.
    instance: { secretsFile: config.layout.secretsFile, submodule: config.layout.submodule },
    host: {
      bootstrapKey: '/var/lib/sops-nix/key.txt',
      secretsDir: '/run/secrets',
      certChain: '/var/lib/ci-certs/live/fullchain.pem',
      certKey: '/var/lib/ci-certs/live/privkey.pem',
      oneshots,
    },
    build: {
      params: { recipe: 'RECIPE', pull: 'PR', comment: 'COMMENT_ID' },
      stages: { install: 'install', upgrade: 'upgrade', backupRestore: 'backup|restore', recipeTests: 'recipe|local' },
      browserSteps: 'browser|playwright',
      browserEngine: { pattern: '^playwright ', name: 'Playwright' },
    },
    dashboard: { runPath: '/runs/{n}/', badgePath: '/badge/{recipe}.svg' },
    recipes: { enrolled: 'tests/enrolled', tree: 'tests/{recipe}/', localTests: 'tests', enrolMarker: 'enrol', enrolVariables: { recipe: 'RECIPE', from: 'FROM', port: 'PORT' } },
  };
}

/** Fills `{name}` placeholders of a profile path. */
export function fill(template: string, values: Record<string, string | number>): string {
  return template.replace(/\{(\w+)\}/g, (whole, key: string) => (key in values ? String(values[key]) : whole));
}

