/**
 * C1 — the base repo is generic; the instance lives in a second repo, composed as a flake input
 * or as the submodule secrets/; and the composed flake builds the running system byte for byte.
 */
import { expect } from 'vitest';
import { countOccurrences, describeLeak } from '../helpers/git/leak.ts';
import { formatClosureDiff } from '../helpers/nix/index.ts';
import { attach, dodItem, evidence, step, test, expectNone, useReproduction } from './support/dod.ts';
import { judgeSystems } from './support/systems.ts';

dodItem('C1', () => {
  useReproduction();

  test('the base repo holds neither the instance domain nor any secret value, in any commit', async ({ run, baseRepo, gitSecrets, task }) => {
    const needles: Record<string, string> = { 'instance domain': run.domain };
    for (const [key, value] of Object.entries(gitSecrets.values)) needles[`sops value ${key}`] = value;
    const results = await step(`scan every object of every commit of ${run.baseRepo} for ${Object.keys(needles).length} values`, () =>
      countOccurrences(baseRepo.dir, needles),
    );
    const lines = [...results].map(([label, result]) => describeLeak(String(label), result));
    await attach('leak probe (base repo, all history)', lines.join('\n'));
    const leaks = [...results].filter(([, result]) => result.count > 0).map(([label, result]) => describeLeak(String(label), result));
    expectNone(leaks, 'the base repo is not generic');
    const scanned = [...results.values()][0]?.scanned;
    evidence(task, `0 occurrences of the domain and ${Object.keys(needles).length - 1} sops values in ${scanned?.commits ?? '?'} commits (${scanned?.objects ?? '?'} objects) of the base repo`);
  });

  test('the instance repo is composed as a flake input or as the git submodule secrets/', async ({ reproduction, task }) => {
    expect(reproduction.composition, 'the base repo composes no instance repo: no secrets/ submodule in .gitmodules and no `instance` input in flake.lock').toBeDefined();
    evidence(task, `composition: ${reproduction.composition === 'submodule' ? 'git submodule secrets/ (?submodules=1)' : 'flake input `instance` pinned in flake.lock'}`);
  });

  test('the toplevel built from a clean clone is /run/current-system, with every narHash equal (and /run/booted-system, where there is one)', async ({ reproduction, host, run, task }) => {
    const { diff } = reproduction;
    await attach('closure comparison', formatClosureDiff(diff, { labels: ['clean-clone build', 'running system'] }));
    const verdict = await judgeSystems(reproduction, host, { narHashes: true, nix: { nixConfig: run.nixConfig } });
    await attach('expected, current and booted systems', verdict.record);
    for (const { name, text } of verdict.attachments) await attach(name, text);
    expectNone(verdict.mismatches, `the composed flake does not build the system ${host.name} runs and boots`);
    evidence(task, `${reproduction.built} = /run/current-system${reproduction.booted ? ' = /run/booted-system' : ' (no /run/booted-system on the host)'}; ${diff.sizeA} paths, ${diff.hashA} on both sides`);
  });
});
