/** A run record for tests: four items (PASS, FAIL, SKIPPED, PASS), as the DoD reporter records them. */
import { itemRecord, withOverhead, withResults, withTeardown, RUN_RECORD_SCHEMA_VERSION, type ItemRecord, type RunRecord } from './run-record.ts';

export function emptyRecord(runId = 'r9'): RunRecord {
  return {
    schemaVersion: RUN_RECORD_SCHEMA_VERSION,
    runId,
    mode: 'cold',
    target: {
      kind: 'lab',
      label: 'lab (stand-ins: an Incus container, not a VM; nginx, not Traefik)',
      server: 'https://127.0.0.1:8443',
      instanceType: 'container',
      standIns: ['an Incus container, not a VM', 'nginx, not Traefik'],
      project: 'terraform-ci',
    },
    harnessVersion: '0.1.0',
    node: 'v20.20.2',
    startedAt: '2026-11-25T20:08:17.000Z',
    phases: {},
    items: [],
  };
}

export const SAMPLE_ITEMS: ItemRecord[] = [
  itemRecord('C1', [{ name: 'no instance literal in the base repo', verdict: 'PASS', evidence: '0 occurrences', durationMs: 12 }]),
  itemRecord('C2', [
    { name: 'the served chain verifies', verdict: 'PASS', evidence: 'chain verifies to the lab root', durationMs: 40 },
    {
      name: 'the served leaf is the wildcard_cert from git',
      verdict: 'FAIL',
      cause: 'served leaf fingerprint AA ≠ git cert BB',
      errorClass: 'AssertionError',
      durationMs: 35,
    },
  ]),
  itemRecord('C4', [{ name: 'the machine was created blank in this run', verdict: 'SKIPPED', evidence: 'warm run' }]),
  itemRecord('D8', [{ name: 'a clean checkout builds the running toplevel', verdict: 'PASS', evidence: 'clean checkout | same', durationMs: 900 }]),
];

export function sampleRecord(runId = 'r9', items: ItemRecord[] = SAMPLE_ITEMS): RunRecord {
  return withResults(emptyRecord(runId), { items, finishedAt: '2026-11-25T20:20:00.000Z', specsMs: 987 });
}

/** The phases of a cold run: provisioning with two runbook steps, two spec files. */
export const PHASES = {
  provision: {
    totalMs: 9_000,
    createMs: 2_000,
    bootMs: 3_000,
    runbookMs: 3_500,
    steps: [
      { index: 1, text: 'git clone --recursive http://git/cc-ci.git /root/cc-ci', durationMs: 1_000 },
      { index: 3, text: "nixos-rebuild switch --flake '/root/cc-ci?submodules=1#cc-ci'", durationMs: 2_500 },
    ],
  },
  specFiles: [
    { file: 'acceptance/c1-repo-split.spec.ts', durationMs: 1_500, testsMs: 1_200 },
    { file: 'acceptance/c2-cert-in-git.spec.ts', durationMs: 400, testsMs: 300 },
  ],
};

/** A cold run recorded at its three moments: setup (provisioning), the reporter (spec files), the teardown (a 1.8 s delete). */
export function phasedRecord(): RunRecord {
  const started = { ...emptyRecord(), startedAt: '2026-11-25T20:00:00.000Z', phases: { setupMs: 12_000, provision: PHASES.provision } };
  const reported = withResults(started, { items: SAMPLE_ITEMS, finishedAt: '2026-11-25T20:00:20.000Z', specsMs: 1_900, specFiles: PHASES.specFiles });
  return withOverhead(withTeardown(reported, Date.parse('2026-11-25T20:00:23.000Z'), 1_800));
}
