/**
 * D8 — the whole server is declared in the flake and rebuildable from scratch per docs/install.md.
 * Static half: a clean checkout builds /run/current-system. Live half: C4's brand-new machine.
 */
import { expect } from 'vitest';
import { attach, dodItem, evidence, expectNone, skipBecause, system, test, useReproduction } from './support/dod.ts';
import { judgeSystems } from './support/systems.ts';

dodItem('D8', () => {
  useReproduction();

  test('static half: nixos-rebuild build from a clean checkout gives /run/current-system (and /run/booted-system, where there is one)', async ({ reproduction, host, run, task }) => {
    // By path, as D8 reads it; C1 holds the narHashes to account too.
    const verdict = await judgeSystems(reproduction, host, { narHashes: false, nix: { nixConfig: run.nixConfig } });
    await attach('expected, current and booted systems', verdict.record);
    for (const { name, text } of verdict.attachments) await attach(name, text);
    expectNone(verdict.mismatches, `expected = current = booted does not hold on ${host.name}`);
    evidence(task, `clean checkout → ${reproduction.built} = /run/current-system${reproduction.booted ? ' = /run/booted-system' : ' (no /run/booted-system on the host)'} (reports/evidence/d8.md)`);
  });

  test(`live half: a blank machine rebuilt from git per ${system().docs.install} runs that same system`, async ({ reproduction, task, skip }) => {
    const live = reproduction.evidence.live;
    if (!live) skipBecause({ task, skip }, 'warm run: the live half needs a cold run that creates the machine');
    await attach('live rebuild', live);
    expect(live.rebuildExitCode, `nixos-rebuild switch on the blank machine exited ${live.rebuildExitCode}`).toBe(0);
    expect(live.toplevel).toBe(reproduction.built);
    evidence(task, `${live.instance}: created ${live.createdAt}, rebuilt per ${live.runbook.source}, runs ${live.toplevel}`);
  });
});
