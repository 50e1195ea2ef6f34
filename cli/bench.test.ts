import { describe, expect, it } from 'vitest';
import { emptyRecord, phasedRecord } from '../reporting/run-record.fixture.ts';
import { coldBreakdown, READ_ONLY_SPECS, vitestPhases } from './bench.ts';

describe('the bench', () => {
  it('puts the running cc-ci and the neighbours first, where the record has their time', () => {
    const record = phasedRecord();
    const withMachines = { ...record, phases: { ...record.phases, provision: { ...record.phases.provision!, machinesMs: 900 } } };
    const { rows } = coldBreakdown(withMachines);
    expect(rows[0]).toEqual({
      what: 'cold: the running cc-ci and the neighbours (the lab converges its stand-ins where needed; observed before the throwaway)',
      ms: 900,
    });
  });

  it('prints the cold breakdown from the run record: create, boot, each runbook step, each spec file, teardown, overhead', () => {
    const { rows, lines } = coldBreakdown(phasedRecord());
    expect(rows.map((row) => row.what)).toEqual([
      'cold: create the throwaway (Incus create + start)',
      'cold: boot the throwaway (until systemd is running)',
      'cold: runbook on the throwaway',
      '  step 1: git clone --recursive http://git/cc-ci.git /root/cc-ci',
      "  step 3: nixos-rebuild switch --flake '/root/cc-ci?submodules=1#cc-ci'",
      'cold: c1-repo-split.spec.ts (its tests 1.2 s)',
      'cold: c2-cert-in-git.spec.ts (its tests 300 ms)',
      'cold: all spec files',
      'cold: teardown: delete the throwaway',
      'cold: teardown in all (delete, cleanup check, evidence)',
      'cold: wall (Vitest start to last record)',
      'cold: waiting on the system',
      'cold: harness overhead (wall − waiting)',
    ]);
    expect(lines[0]).toBe('cold run harness overhead: 11.2 s of 23.0 s wall = 48.7 % (definition: docs/reports.md, "Phases")');
    // The 2.5 s rebuild step replaced by 10 minutes: 23 − 2.5 + 600 s.
    expect(lines[1]).toBe('on paper, a real cold run with a 10-minute rebuild: the same 11.2 s overhead of 10 min 21 s = 1.8 %');
  });

  it('says so when the record has no overhead figures (an older harness, or a run cut short)', () => {
    expect(coldBreakdown(emptyRecord('old')).lines).toEqual(['cold run record old has no overhead figures (a run that did not finish, or an older harness)']);
  });

  it('times as read-only only specs that neither write to the forge or Drone nor rebuild', () => {
    expect(READ_ONLY_SPECS.map((spec) => spec.replace(/^acceptance\/|-.*$/g, ''))).toEqual(['c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7', 'd8', 'd9']);
  });

  it("reads Vitest's own phase summary of a run, colours and all", () => {
    const output = '\x1b[2m   Duration \x1b[22m 4.54s\x1b[2m (transform 653ms, setup 161ms, import 1.63s, tests 1.01s, environment 0ms)\x1b[22m\n';
    expect(vitestPhases(output)).toEqual({ transform: 653, setup: 161, import: 1630, tests: 1010, environment: 0 });
    expect(vitestPhases('no summary')).toEqual({});
  });
});
