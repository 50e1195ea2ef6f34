/**
 * D8 — the whole server is declared in the flake and rebuildable from scratch per docs/install.md.
 * Static half: a clean checkout builds the running cc-ci's /run/current-system. Live half: C4's
 * brand-new machine, the throwaway.
 */
import { waitBooted } from '../helpers/systemd/index.ts';
import { expect } from 'vitest';
import { bootedSystem, currentSystem } from '../helpers/nix/index.ts';
import { rebootOwnInstance } from '../machines/guard.ts';
import {
  attach,
  dodItem,
  observation,
  providedRun,
  skipBecause,
  step,
  system,
  test,
  useReproduction,
  observes,
  runHost,
  runningCcci,
  within,
} from './support/dod.ts';
import { judgeRunningCcci } from './support/running-ccci.ts';

dodItem('D8', () => {
  useReproduction();

  test("static half: nixos-rebuild build from a clean checkout gives the running cc-ci's /run/current-system", async ({
    reproduction,
    production,
    run,
    task,
    skip,
  }) => {
    observes(task, runningCcci());
    // By path, as D8 reads it; C1 holds the narHashes to account too.
    const observed = await judgeRunningCcci(
      { task, skip },
      { reproduction, production, run },
      {
        narHashes: false,
        failure: (machine) => `expected = current does not hold on ${machine}, the running cc-ci`,
      },
    );
    observation(task, `${observed.machine} (the running cc-ci): clean checkout → ${observed.built} = /run/current-system (reports/evidence/d8.md)`);
  });

  test(`live half: a blank machine rebuilt from git per ${system().docs.install} runs that same system`, async ({ reproduction, task, skip }) => {
    observes(task, runHost());
    const live = reproduction.record.live;
    if (!live) skipBecause({ task, skip }, 'warm run: the live half needs a cold run that creates the machine');
    await attach('live rebuild', live);
    expect(live.rebuildExitCode, `nixos-rebuild switch on the blank machine exited ${live.rebuildExitCode}`).toBe(0);
    expect(live.toplevel, `${live.instance}, rebuilt per ${live.runbook.source}, runs ${live.toplevel}, not the clean build ${reproduction.built}`).toBe(
      reproduction.built,
    );
    observation(task, `${live.instance} (the throwaway): created ${live.createdAt}, rebuilt per ${live.runbook.source}, runs ${live.toplevel}`);
  });

  // Optional (ACCEPT_REBOOT_CHECK): more than the DoD asks, and on b1 it costs a VM boot. Last on
  // the throwaway: D9 reads the repos and D10 acts through the running cc-ci.
  const run = providedRun();
  if (run.rebootCheck && run.instance.createdInThisRun && run.target.kind !== 'ssh') {
    test(
      'live half, strongest form: rebooted, the throwaway comes back running, with /run/booted-system = /run/current-system = the clean build',
      async ({ reproduction, host, incus, task }) => {
        observes(task, runHost());
        await step(`reboot ${host.name} through the Incus API (stop, start)`, () => rebootOwnInstance(incus, host.name, run.runId));
        // The system's own state: a machine that never comes back is a FAIL; a channel that breaks, an ERROR.
        const state = await waitBooted(host, `${host.name} to come back after the reboot`, { timeoutMs: run.durations.boot, observes: 'system' });
        const failed = (await host.succeed('systemctl list-units --failed --no-legend --plain')).stdout.trim();
        expect(state, `${host.name} came back ${state} after the reboot: ${failed || 'no failed unit listed'}`).toBe('running');
        const current = await currentSystem(host);
        const booted = await bootedSystem(host);
        await attach(`systems on ${host.name} after the reboot`, `booted: ${booted ?? 'none'}\ncurrent: ${current}\nclean build: ${reproduction.built}`);
        expect(booted, `after the reboot, /run/booted-system on ${host.name} is ${booted ?? 'absent'}, not /run/current-system ${current}`).toBe(current);
        expect(current, `after the reboot, ${host.name} runs ${current}, not the clean build ${reproduction.built}`).toBe(reproduction.built);
        observation(task, `${host.name} (the throwaway) rebooted: running, /run/booted-system = /run/current-system = ${current}, the clean build`);
      },
      within('boot'),
    );
  }
});
