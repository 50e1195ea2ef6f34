/**
 * The lab's system publishes a true D8 document (C5 reads it), and the sabotage that drops its
 * static half is caught by C5's check with the words its cause names. Builds with the local Nix,
 * as the lab's generator does.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { succeed } from '../helpers/common/exec.ts';
import { d8DocumentProblems, parseD8Document } from '../helpers/evidence/d8-doc.ts';
import { BASE_REPO, D8_DOCUMENT, generateRepos, measureToplevel } from './repos.ts';
import { SABOTAGES, type SabotageContext, type SabotageName } from './sabotage.ts';
import { LAB_DOMAIN, labPaths } from './state.ts';

describe('the lab D8 evidence document', () => {
  const gitUrl = 'http://127.0.0.1:8418';
  let labDir: string;
  let context: SabotageContext;
  const paths = () => labPaths(labDir);
  const instanceTree = () => join(paths().workDir, 'cc-ci-secrets');

  beforeAll(async () => {
    labDir = await mkdtemp(join(tmpdir(), 'accept-d8-doc-lab-'));
    await generateRepos(labPaths(labDir), LAB_DOMAIN, gitUrl, 'submodule');
    // A declared fork reads the lab's repos and nothing of a run; no host, so touching one throws.
    context = { labDir, domain: LAB_DOMAIN, gitUrl } as SabotageContext;
  }, 90_000);
  afterAll(async () => {
    await rm(labDir, { recursive: true, force: true });
  });

  /** The fork's document, and the toplevel a clean checkout of the fork builds. */
  async function forkOf(name: SabotageName): Promise<{ text: string; toplevel: string }> {
    const url = (await SABOTAGES[name].forkRepos!(context)).baseRepo!;
    const work = await mkdtemp(join(tmpdir(), 'accept-d8-doc-fork-'));
    try {
      await succeed('git', ['clone', '-q', join(paths().gitDir, url.slice(gitUrl.length + 1)), work]);
      return { text: await readFile(join(work, D8_DOCUMENT), 'utf8'), toplevel: (await measureToplevel(work, instanceTree())).toplevel };
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }

  it('is committed with the figures of the generated commit, and C5 finds it holds', async () => {
    const committed = (await succeed('git', ['show', `HEAD:${D8_DOCUMENT}`], { cwd: join(paths().gitDir, BASE_REPO) })).stdout;
    expect(committed).not.toMatch(/@D8_\w+@/);
    const measured = await measureToplevel(join(paths().workDir, 'cc-ci'), instanceTree());
    const doc = parseD8Document(committed, D8_DOCUMENT);
    expect(doc.static?.facts.get('toplevel')?.value).toBe(measured.toplevel);
    expect(doc.static?.facts.get('closure hash')?.value).toBe(measured.closureHash);
    expect(d8DocumentProblems(doc, { measuredToplevel: measured.toplevel })).toEqual([]);
  }, 60_000);

  it('c5-d8-doc-static-half-missing: C5 FAILs with the words of its cause', async () => {
    const { text, toplevel } = await forkOf('c5-d8-doc-static-half-missing');
    const problems = d8DocumentProblems(parseD8Document(text, D8_DOCUMENT), { measuredToplevel: toplevel });
    expect(problems.some((problem) => SABOTAGES['c5-d8-doc-static-half-missing'].cause.test(problem)), problems.join('; ')).toBe(true);
  }, 60_000);

  it('a fork that changes the system publishes its own static half, so that only the items it guards fail', async () => {
    const original = parseD8Document((await succeed('git', ['show', `HEAD:${D8_DOCUMENT}`], { cwd: join(paths().gitDir, BASE_REPO) })).stdout, D8_DOCUMENT);
    const { text, toplevel } = await forkOf('d7-badge-missing');
    expect(toplevel).not.toBe(original.static?.facts.get('toplevel')?.value);
    expect(d8DocumentProblems(parseD8Document(text, D8_DOCUMENT), { measuredToplevel: toplevel })).toEqual([]);
  }, 60_000);
});
