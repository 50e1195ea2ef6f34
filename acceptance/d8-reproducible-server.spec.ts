/**
 * D8 — the whole server is declared in the flake and rebuildable from scratch per docs/install.md.
 * Static half: a clean checkout builds the running cc-ci's /run/current-system. Live half: C4's
 * brand-new machine, the throwaway.
 */
import { expect } from 'vitest';
import { attach, dodItem, evidence, expectNone, skipBecause, system, test, useReproduction, observes, runHost, runningCcci } from './support/dod.ts';
import { judgeSystems } from './support/systems.ts';

dodItem('D8', () => {
  useReproduction();

  test('static half: nixos-rebuild build from a clean checkout gives the running cc-ci\'s /run/current-system', async ({ reproduction, production, run, task, skip }) => {
    observes(task, runningCcci());
    const observed = reproduction.production;
    if ('unreachable' in observed || 'unreachable' in production) skipBecause({ task, skip }, 'unreachable' in observed ? observed.unreachable : 'the running cc-ci is unreachable');
    // By path, as D8 reads it; C1 holds the narHashes to account too.
    const verdict = await judgeSystems(observed, production.host, { narHashes: false, nix: { nixConfig: run.nixConfig } });
    await attach(`expected, current and booted systems on ${observed.machine} (the running cc-ci)`, verdict.record);
    for (const { name, text } of verdict.attachments) await attach(`${name} on ${observed.machine}`, text);
    expectNone(verdict.mismatches, `expected = current does not hold on ${observed.machine}, the running cc-ci`);
    evidence(task, `${observed.machine} (the running cc-ci): clean checkout → ${observed.built} = /run/current-system (reports/evidence/d8.md)`);
  });

  test(`live half: a blank machine rebuilt from git per ${system().docs.install} runs that same system`, async ({ reproduction, task, skip }) => {
    observes(task, runHost());
    const live = reproduction.evidence.live;
    if (!live) skipBecause({ task, skip }, 'warm run: the live half needs a cold run that creates the machine');
    await attach('live rebuild', live);
    expect(live.rebuildExitCode, `nixos-rebuild switch on the blank machine exited ${live.rebuildExitCode}`).toBe(0);
    expect(live.toplevel, `${live.instance}, rebuilt per ${live.runbook.source}, runs ${live.toplevel}, not the clean build ${reproduction.built}`).toBe(reproduction.built);
    evidence(task, `${live.instance} (the throwaway): created ${live.createdAt}, rebuilt per ${live.runbook.source}, runs ${live.toplevel}`);
  });
});
