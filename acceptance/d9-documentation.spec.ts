/** D9 — README, install, enroll, secrets, architecture and runbook docs exist, are not empty, and are linked from the README. */
import { readFile } from 'node:fs/promises';
import { join, normalize } from 'node:path';
import { dodItem, evidence, expectNone, test } from './support/dod.ts';

const DOCS = ['docs/install.md', 'docs/enroll.md', 'docs/secrets.md', 'docs/architecture.md', 'docs/runbook.md'];

dodItem('D9', () => {
  test('README, install, enroll, secrets, architecture and runbook docs exist in the base repo and are not empty', async ({ baseRepo, task }) => {
    const sizes = await Promise.all(['README.md', ...DOCS].map(async (path) => [path, (await readFile(join(baseRepo.dir, path), 'utf8').catch(() => '')).trim().length] as const));
    expectNone(sizes.filter(([, size]) => size === 0).map(([path]) => path), 'docs missing or empty in the base repo');
    evidence(task, sizes.map(([path, size]) => `${path} ${size} chars`).join(', '));
  });

  test('each of them is linked from the README', async ({ baseRepo, task }) => {
    const readme = await readFile(join(baseRepo.dir, 'README.md'), 'utf8').catch(() => '');
    const links = [...readme.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)].map((match) => normalize(match[1]!).replace(/^\.\//, ''));
    expectNone(DOCS.filter((doc) => !links.includes(doc)).map((doc) => `${doc} is not linked from README.md`), 'docs not linked from the README');
    evidence(task, `README.md links ${DOCS.join(', ')}`);
  });
});
