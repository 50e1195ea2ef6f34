/**
 * D6 — no decrypted secret appears in either repo's history, in the published Drone logs or on
 * the dashboard; and a rotated webhook_hmac takes effect after a rebuild (cold runs, or
 * ACCEPT_ALLOW_HOST_CHANGES=1).
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';
import { HarnessError } from '../helpers/common/errors.ts';
import { registerSecret } from '../helpers/common/redact.ts';
import { secretsInTexts } from '../helpers/common/secret-forms.ts';
import { signBody } from '../helpers/dashboard/index.ts';
import { giteaPushEvent } from '../helpers/forge/webhooks.ts';
import { countOccurrences, describeLeak } from '../helpers/git/leak.ts';
import { decryptSops, encryptSops, parseAgeIdentities } from '../helpers/sops/index.ts';
import { badgePath, buildLogs, buildParam, runPath, runStart, testmeBuild, WAITS } from './support/ci.ts';
import { GIT_COMMIT, HOST_CHANGES_SKIP, hostCheckout, mayChangeHost, withHostChange } from './support/host-change.ts';
import {
  attach,
  detectComposition,
  dodItem,
  observation,
  expectNone,
  skipBecause,
  step,
  test,
  unlessWriteRefused,
  within,
  observes,
  OPERATOR_SIDE,
  ciFaces,
  hostFacesOf,
} from './support/dod.ts';

dodItem('D6', () => {
  test('no decrypted secret occurs anywhere in the history of the base or the instance repo', async ({ run, baseRepo, instanceRepo, gitSecrets, task }) => {
    observes(task, OPERATOR_SIDE);
    const needles = Object.fromEntries(Object.entries(gitSecrets.values).map(([key, value]) => [`sops value ${key}`, value]));
    const lines: string[] = [];
    const leaks: string[] = [];
    for (const [name, dir, url] of [
      ['base', baseRepo.dir, run.baseRepo],
      ['instance', instanceRepo, run.instanceRepo],
    ] as const) {
      const results = await step(`scan all history of the ${name} repo ${url}`, () => countOccurrences(dir, needles));
      for (const [label, result] of results) {
        lines.push(`${name}: ${describeLeak(String(label), result)}`);
        if (result.count > 0) leaks.push(`${name} repo: ${describeLeak(String(label), result)}`);
      }
    }
    await attach('leak probe, both repos', lines.join('\n'));
    expectNone(leaks, 'decrypted secrets in git history');
    observation(task, `0 occurrences of ${Object.keys(needles).length} decrypted values, in any form, in all history of both repos`);
  });

  test(
    'no decrypted secret occurs in the published build logs or on the dashboard',
    async ({ ci, run, gitSecrets, task, skip }) => {
      observes(task, ciFaces());
      await unlessWriteRefused({ task, skip }, () => testmeBuild(ci, ci.probeRecipe, runStart(run)));
      const builds = await ci.drone.builds({ atMost: 25 });
      const texts: Array<{ where: string; text: string }> = [];
      for (const listed of builds) {
        const build = await ci.drone.build(listed.number);
        for (const log of await buildLogs(ci, build)) texts.push({ where: `log of build #${build.number} ${log.stage}/${log.step}`, text: log.text });
        const page = await ci.apex.get(runPath(ci, build.number));
        texts.push({ where: `dashboard ${runPath(ci, build.number)}`, text: page.text });
      }
      for (const path of ['/', ...new Set(builds.map((build) => badgePath(ci, buildParam(ci, build, 'recipe') ?? '')))])
        texts.push({ where: `dashboard ${path}`, text: (await ci.apex.get(path)).text });
      texts.push({ where: 'Drone UI /', text: (await ci.drone.ui()).text });
      // Every form of every value (whole, by line and field; base64, hex, percent-, JSON- and HTML-escaped) in one pass per text.
      const leaks = secretsInTexts(Object.fromEntries(Object.entries(gitSecrets.values).map(([key, value]) => [`sops value ${key}`, value])), texts);
      const logCount = texts.filter(({ where }) => where.startsWith('log')).length;
      await attach('published texts searched', texts.map(({ where, text }) => `${where}: ${text.length} characters`).join('\n'));
      expectNone(leaks, 'decrypted secrets published');
      observation(
        task,
        `0 occurrences of ${Object.keys(gitSecrets.values).length} decrypted values, in any form, in ${logCount} step logs of ${builds.length} builds and ${texts.length - logCount} dashboard and Drone pages`,
      );
    },
    within(...WAITS.build),
  );

  test(
    'a rotated webhook_hmac takes effect after a rebuild: the new signature is accepted, the old one rejected',
    async ({ hostCi: ci, run, config, host, baseRepo, instanceRepo, gitSecrets, task, skip }) => {
      observes(task, hostFacesOf());
      // A rotation rebuilds the host: the run's host (the throwaway), through its own /hook.
      if (!mayChangeHost(run, config)) skipBecause({ task, skip }, HOST_CHANGES_SKIP);
      if ((await detectComposition(baseRepo.dir, run.profile.instance.submodule)) !== 'submodule') {
        skipBecause(
          { task, skip },
          `rotation is committed in the host's ${run.profile.instance.submodule}/ submodule; with the flake-input layout the instance repo would have to change on its remote, which this run must not do`,
        );
      }
      const checkout = await hostCheckout(run, baseRepo.dir);
      const old = gitSecrets.values.webhook_hmac!;
      const identities = parseAgeIdentities(await readFile(run.ageKeyFile, 'utf8'), run.ageKeyFile);
      const { secretsFile, submodule } = run.profile.instance;
      const document = await decryptSops(await readFile(join(instanceRepo, secretsFile), 'utf8'), { identities, source: `instance ${secretsFile}` });
      const rotated = randomBytes(32).toString('hex');
      registerSecret(rotated);
      const encrypted = await encryptSops({ ...(document.data as Record<string, unknown>), webhook_hmac: rotated }, { recipients: document.recipients });
      // An event Gitea really sends, which starts no build: only the signature is checked.
      const { event, body } = giteaPushEvent(ci.org, ci.probeRecipe, 'cc-ci-acceptance', ci.forge.baseUrl);
      const answers = await withHostChange(
        host,
        checkout,
        'rotate webhook_hmac',
        async () => {
          await host.pushFile(`${checkout.dir}/${submodule}/${secretsFile}`, Buffer.from(encrypted), {
            mode: 0o644,
            purpose: `D6: re-encrypted ${secretsFile} with a new webhook_hmac`,
            secret: false,
          });
          await host.succeed(`cd ${checkout.dir}/${submodule} && ${GIT_COMMIT} commit -q -am 'Rotate webhook_hmac'`);
        },
        async () => ({
          fresh: await ci.apex.hook(body, signBody(body, rotated), event),
          stale: await ci.apex.hook(body, signBody(body, old), event),
        }),
        // Committed in secrets/ only: the rotated commit is not on the instance repo's remote, and
        // a superproject left dirty makes the rebuild take the checkout as it stands.
        { commit: false },
      );
      await attach('after the rotation', { newKey: [answers.fresh.status, answers.fresh.text], oldKey: [answers.stale.status, answers.stale.text] });
      expect(
        answers.fresh.status >= 200 && answers.fresh.status < 300,
        `after rotating webhook_hmac and rebuilding, a webhook signed with the new value got HTTP ${answers.fresh.status}`,
      ).toBe(true);
      expect(
        [401, 403],
        `after rotating webhook_hmac and rebuilding, a webhook signed with the old value was still accepted (HTTP ${answers.stale.status})`,
      ).toContain(answers.stale.status);
      const restored = await ci.apex.hook(body, signBody(body, old), event);
      if (restored.status >= 300) throw new HarnessError(`after restoring the host, the original webhook_hmac got HTTP ${restored.status}`);
      observation(
        task,
        `rotated webhook_hmac in the host's secrets/ and rebuilt: new signature → ${answers.fresh.status}, old → ${answers.stale.status}; restored and rebuilt: original → ${restored.status}`,
      );
    },
    within(...WAITS.hostChange),
  );
});
