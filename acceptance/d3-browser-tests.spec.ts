/**
 * D3 — recipe tests include browser tests that run in every install: the build's log shows them,
 * and names the engine they ran on, which must be the real browser engine the system profile
 * expects (Playwright for cc-ci; in the lab, Debian's Chromium through Selenium). An HTTP-level
 * stand-in that fetches HTML and runs no JavaScript is a FAIL that names it.
 */
import { expect } from 'vitest';
import { readBrowserRun } from '../helpers/drone/browser-log.ts';
import { buildLogs, findStage, runStart, testmeBuild, WAITS } from './support/ci.ts';
import { attach, dodItem, observation, test, unlessWriteRefused, within, observes, ciFaces } from './support/dod.ts';

dodItem('D3', () => {
  test(
    'the install stage ran browser tests, and the log shows how many passed and on what engine',
    async ({ ci, run, task, skip }) => {
      observes(task, ciFaces());
      const { build } = await unlessWriteRefused({ task, skip }, () => testmeBuild(ci, ci.probeRecipe, runStart(run)));
      const install = findStage(ci, build, 'install');
      expect(install, `build #${build.number} has no install stage`).toBeDefined();
      const logs = (await buildLogs(ci, build)).filter((log) => log.stage === install!.name);
      const browserWords = new RegExp(ci.profile.build.browserSteps, 'i');
      const browser = logs.filter((log) => browserWords.test(`${log.step}\n${log.text}`));
      await attach(`install stage of build #${build.number}`, logs.map((log) => `## ${log.step}\n${log.text}`).join('\n\n'));
      expect(
        browser.length,
        `the install stage of build #${build.number} (steps ${install!.steps.map((s) => s.name).join(', ')}) shows no browser tests`,
      ).toBeGreaterThan(0);
      const text = browser.map((log) => log.text).join('\n');
      // The engine first: a stand-in without JavaScript fails the script check too, but the cause is what ran.
      const { pattern, name } = ci.profile.build.browserEngine;
      // pytest-playwright's own output (its plugin in pytest's header, the browser in each test id), or an "engine …" line.
      const { engine, passed, failed } = readBrowserRun(text);
      expect(
        engine,
        `the browser step's log of build #${build.number} names no engine (no pytest-playwright header, no "engine …" line): D3 needs ${name}`,
      ).toBeDefined();
      expect(new RegExp(pattern, 'i').test(engine!), `the browser tests of build #${build.number} ran on "${engine}", not on ${name}`).toBe(true);
      expect(passed, `the browser step of build #${build.number} ran 0 browser tests:\n${text.slice(0, 500)}`).toBeGreaterThan(0);
      expect(failed, `${failed} browser test(s) failed in build #${build.number}`).toBe(0);
      const step = install!.steps.find((s) => browser.some((log) => log.step === s.name))!;
      expect(step.status, `the browser step ${step.name} ended ${step.status}`).toBe('success');
      observation(task, `build #${build.number} ${install!.name}/${step.name}: ${passed} browser tests passed; engine: ${engine}`);
    },
    within(...WAITS.build),
  );
});
