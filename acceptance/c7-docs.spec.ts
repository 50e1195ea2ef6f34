/**
 * C7 — the base repo documents the model: clone base and instance, provision the age key, one
 * nixos-rebuild switch; and the runbook this run executed is that document's.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';
import { parseRunbook } from '../helpers/runbook/index.ts';
import { dodItem, observation, skipBecause, system, test, observes, OPERATOR_SIDE, runHost } from './support/dod.ts';

async function doc(dir: string, path: string): Promise<string> {
  const text = await readFile(join(dir, path), 'utf8').catch(() => '');
  expect(text.trim().length > 0, `${path} is missing or empty in the base repo`).toBe(true);
  return text;
}

dodItem('C7', () => {
  const { docs, host } = system();

  test(`${docs.install} describes clone, key, one nixos-rebuild switch`, async ({ baseRepo, task }) => {
    observes(task, OPERATOR_SIDE);
    const install = await doc(baseRepo.dir, docs.install);
    const steps = parseRunbook(install, docs.install);
    const scripts = steps
      .filter((step) => step.kind === 'sh')
      .map((step) => step.script)
      .join('\n');
    expect(scripts, `${docs.install} has no runbook step that clones the repos`).toMatch(/git clone/);
    expect(
      steps.filter((step) => step.kind === 'provision-key').length,
      `${docs.install} must name exactly one provisioned secret: the bootstrap age key`,
    ).toBe(1);
    expect(scripts.match(/nixos-rebuild switch/g)?.length ?? 0, `${docs.install} must hold exactly one \`nixos-rebuild switch\``).toBe(1);
    observation(task, `${docs.install}: ${steps.length} runbook steps (clone, key, one nixos-rebuild switch)`);
  });

  test(`${docs.secrets} and ${docs.architecture} describe the two repos and the key`, async ({ baseRepo, task }) => {
    observes(task, OPERATOR_SIDE);
    const secrets = await doc(baseRepo.dir, docs.secrets);
    const architecture = await doc(baseRepo.dir, docs.architecture);
    expect(secrets, `${docs.secrets} does not explain sops`).toMatch(/sops/i);
    expect(secrets, `${docs.secrets} does not name the bootstrap key path`).toContain(host.bootstrapKey);
    expect(architecture, `${docs.architecture} does not describe the base/instance split`).toMatch(
      /base repo[\s\S]*instance repo|instance repo[\s\S]*base repo/i,
    );
    expect(architecture, `${docs.architecture} does not mention the one nixos-rebuild switch`).toMatch(/nixos-rebuild switch/);
    observation(task, `${docs.secrets} and ${docs.architecture} describe base + instance, sops, the bootstrap key and one switch`);
  });

  test(`the runbook this run executed is the one in ${docs.install}`, async ({ run, baseRepo, task, skip }) => {
    observes(task, runHost());
    if (!run.runbook) skipBecause({ task, skip }, 'no runbook ran in this run (warm run against an existing host)');
    const steps = parseRunbook(await readFile(join(baseRepo.dir, docs.install), 'utf8'), docs.install);
    expect(run.runbook.source).toBe(docs.install);
    expect(
      run.runbook.steps.map((step) => step.line),
      'the executed steps do not match the document',
    ).toEqual(steps.slice(0, run.runbook.steps.length).map((step) => step.line));
    observation(task, `executed ${run.runbook.steps.length} steps from ${docs.install} (lines ${run.runbook.steps.map((step) => step.line).join(', ')})`);
  });
});
