/**
 * The names the specs rely on in the system under test: its documents, units, build
 * parameters, stage names, dashboard links, recipe layout and secret paths. Specs read them
 * from here (through the run context) and hold none of their own, so a system that names a
 * thing differently changes one profile, not seventeen specs. Data only, no patterns: it crosses
 * to the spec workers through Vitest's provide/inject.
 */
import { SYSTEM_NAME_SETTINGS, type Config, type SystemNames } from '../helpers/common/config.ts';
import { ConfigError } from '../helpers/common/errors.ts';

export interface SystemProfile {
  /** Whose contracts these are, as the run record names them. */
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
    /** The D8 document the system publishes (ACCEPT_D8_DOC; helpers/docs/d8-document.ts). */
    d8Document: string;
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

/**
 * cc-ci's contracts: the DoD's and the seed's names where they give one (the host paths, the
 * dashboard's links, the recipe repo's tests/), and the operator's settings where they do not
 * (`names`, each required on a real target; the lab passes its own).
 */
export function ccciProfile(names: SystemNames, layout: Config['layout']): SystemProfile {
  return {
    name: 'cc-ci',
    docs: {
      readme: 'README.md',
      install: 'docs/install.md',
      enroll: names.enrolment.doc,
      secrets: 'docs/secrets.md',
      // The DoD's C7 names it at the repo's top, beside docs/install.md and docs/secrets.md (ACCEPT_ARCHITECTURE_DOC).
      architecture: layout.architecture,
      runbook: names.runbookDoc,
      decisions: 'DECISIONS.md',
      d8Document: names.d8Doc,
    },
    // The seed's secrets/secrets.yaml in the instance repo; the DoD's submodule at secrets/ (ACCEPT_INSTANCE_*).
    instance: { secretsFile: layout.secretsFile, submodule: layout.submodule },
    host: {
      bootstrapKey: '/var/lib/sops-nix/key.txt',
      secretsDir: '/run/secrets',
      certChain: '/var/lib/ci-certs/live/fullchain.pem',
      certKey: '/var/lib/ci-certs/live/privkey.pem',
      oneshots: names.oneshots,
    },
    build: {
      params: names.buildParams,
      stages: {
        install: names.stageWords.install,
        upgrade: names.stageWords.upgrade,
        backupRestore: names.stageWords.backupRestore,
        recipeTests: names.stageWords.recipeTests,
      },
      browserSteps: names.stageWords.browser,
      browserEngine: { pattern: '^playwright ', name: 'Playwright' },
    },
    dashboard: { runPath: '/runs/{n}/', badgePath: '/badge/{recipe}.svg' },
    recipes: {
      enrolled: names.enrolment.list,
      tree: names.enrolment.tree,
      localTests: 'tests',
      enrolMarker: 'enrol',
      enrolVariables: { recipe: 'RECIPE', from: 'FROM', port: 'PORT' },
    },
  };
}

/**
 * The names a real target must be given, each required by its setting: one ERROR naming every
 * one unset, raised when the settings are read, before anything is created. Never the lab's.
 */
export function requiredSystemNames(names: Partial<SystemNames>, why: string): SystemNames {
  const missing = (Object.keys(SYSTEM_NAME_SETTINGS) as (keyof SystemNames)[]).filter((key) => names[key] === undefined);
  if (missing.length) {
    const settings = missing.map((key) => SYSTEM_NAME_SETTINGS[key]);
    throw new ConfigError(
      settings[0]!,
      `${settings.length > 1 ? `and ${settings.slice(1).join(', ')} are` : 'is'} required ${why}: cc-ci's own names, which neither the DoD nor the seed gives ` +
        '(profiles/b1.env.example lists each, marked FILL IN; docs/configuration.md says where to read it on cc-nix-test)',
    );
  }
  return names as SystemNames;
}

/** Fills `{name}` placeholders of a profile path. */
export function fill(template: string, values: Record<string, string | number>): string {
  return template.replace(/\{(\w+)\}/g, (whole, key: string) => (key in values ? String(values[key]) : whole));
}
