/**
 * D8 — the whole server is declared in the flake and rebuildable from scratch per docs/install.md.
 * Static half: a clean checkout builds /run/current-system. Live half: C4's brand-new machine.
 */
import { expect } from 'vitest';
import { attach, dodItem, evidence, skipBecause, test, useReproduction } from './support/dod.ts';

dodItem('D8', () => {
  useReproduction();

  test('static half: nixos-rebuild build from a clean checkout gives /run/current-system', async ({ reproduction, task }) => {
    expect(reproduction.built, `clean checkout builds ${reproduction.built}, the host runs ${reproduction.running}`).toBe(reproduction.running);
    evidence(task, `clean checkout → ${reproduction.built} = /run/current-system (reports/evidence/d8.md)`);
  });

  test('live half: a blank machine rebuilt from git per docs/install.md runs that same system', async ({ reproduction, task, skip }) => {
    const live = reproduction.evidence.live;
    if (!live) skipBecause({ task, skip }, 'warm run: the live half needs a cold run that creates the machine');
    await attach('live rebuild', live);
    expect(live.rebuildExitCode, `nixos-rebuild switch on the blank machine exited ${live.rebuildExitCode}`).toBe(0);
    expect(live.toplevel).toBe(reproduction.built);
    evidence(task, `${live.instance}: created ${live.createdAt}, rebuilt per ${live.runbook.source}, runs ${live.toplevel}`);
  });
});
