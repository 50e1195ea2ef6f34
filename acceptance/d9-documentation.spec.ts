/** D9 — README, install, enroll, secrets, architecture and runbook docs exist, are not empty, and are linked from the README. */
import { readFile } from 'node:fs/promises';
import { join, normalize } from 'node:path';
import { dodItem, observation, expectNone, system, test, observes, OPERATOR_SIDE } from './support/dod.ts';

dodItem('D9', () => {
  const { docs } = system();
  const DOCS = [docs.install, docs.enroll, docs.secrets, docs.architecture, docs.runbook];

  test('README, install, enroll, secrets, architecture and runbook docs exist in the base repo and are not empty', async ({ baseRepo, task }) => {
    observes(task, OPERATOR_SIDE);
    const sizes = await Promise.all(
      [docs.readme, ...DOCS].map(async (path) => [path, (await readFile(join(baseRepo.dir, path), 'utf8').catch(() => '')).trim().length] as const),
    );
    expectNone(
      sizes.filter(([, size]) => size === 0).map(([path]) => path),
      'docs missing or empty in the base repo',
    );
    observation(task, sizes.map(([path, size]) => `${path} ${size} chars`).join(', '));
  });

  test('each of them is linked from the README', async ({ baseRepo, task }) => {
    observes(task, OPERATOR_SIDE);
    const readme = await readFile(join(baseRepo.dir, docs.readme), 'utf8').catch(() => '');
    const links = [...readme.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)].map((match) => normalize(match[1]!).replace(/^\.\//, ''));
    expectNone(
      DOCS.filter((doc) => !links.includes(doc)).map((doc) => `${doc} is not linked from ${docs.readme}`),
      'docs not linked from the README',
    );
    observation(task, `${docs.readme} links ${DOCS.join(', ')}`);
  });
});
