/**
 * C7 — the base repo documents the model: clone base and instance, provision the age key, one
 * nixos-rebuild switch; and the runbook this run executed is that document's.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';
import { parseRunbook } from '../helpers/runbook/index.ts';
import { dodItem, evidence, skipBecause, test } from './support/dod.ts';

async function doc(dir: string, path: string): Promise<string> {
  const text = await readFile(join(dir, path), 'utf8').catch(() => '');
  expect(text.trim().length > 0, `${path} is missing or empty in the base repo`).toBe(true);
  return text;
}

dodItem('C7', () => {
  test('docs/install.md describes clone, key, one nixos-rebuild switch', async ({ baseRepo, task }) => {
    const install = await doc(baseRepo.dir, 'docs/install.md');
    const steps = parseRunbook(install, 'docs/install.md');
    const scripts = steps.filter((step) => step.kind === 'sh').map((step) => step.script).join('\n');
    expect(scripts, 'docs/install.md has no runbook step that clones the repos').toMatch(/git clone/);
    expect(steps.filter((step) => step.kind === 'provision-key').length, 'docs/install.md must name exactly one provisioned secret: the bootstrap age key').toBe(1);
    expect(scripts.match(/nixos-rebuild switch/g)?.length ?? 0, 'docs/install.md must hold exactly one `nixos-rebuild switch`').toBe(1);
    evidence(task, `docs/install.md: ${steps.length} runbook steps (clone, key, one nixos-rebuild switch)`);
  });

  test('docs/secrets.md and docs/architecture.md describe the two repos and the key', async ({ baseRepo, task }) => {
    const secrets = await doc(baseRepo.dir, 'docs/secrets.md');
    const architecture = await doc(baseRepo.dir, 'docs/architecture.md');
    expect(secrets, 'docs/secrets.md does not explain sops').toMatch(/sops/i);
    expect(secrets, 'docs/secrets.md does not name the bootstrap key path').toContain('/var/lib/sops-nix/key.txt');
    expect(architecture, 'docs/architecture.md does not describe the base/instance split').toMatch(/base repo[\s\S]*instance repo|instance repo[\s\S]*base repo/i);
    expect(architecture, 'docs/architecture.md does not mention the one nixos-rebuild switch').toMatch(/nixos-rebuild switch/);
    evidence(task, 'docs/secrets.md and docs/architecture.md describe base + instance, sops, the bootstrap key and one switch');
  });

  test('the runbook this run executed is the one in docs/install.md', async ({ run, baseRepo, task, skip }) => {
    if (!run.runbook) skipBecause({ task, skip }, 'no runbook ran in this run (warm run against an existing host)');
    const steps = parseRunbook(await readFile(join(baseRepo.dir, 'docs/install.md'), 'utf8'), 'docs/install.md');
    expect(run.runbook.source).toBe('docs/install.md');
    expect(run.runbook.steps.map((step) => step.line), 'the executed steps do not match the document').toEqual(steps.slice(0, run.runbook.steps.length).map((step) => step.line));
    evidence(task, `executed ${run.runbook.steps.length} steps from docs/install.md (lines ${run.runbook.steps.map((step) => step.line).join(', ')})`);
  });
});
