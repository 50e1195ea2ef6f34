/**
 * The lab's system publishes a true D8 document (C5 reads it), and the sabotages that drop its
 * static half or make it name a commit from elsewhere are caught by C5's check with the words
 * their causes name. Builds with the local Nix,
 * as the lab's generator does.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { succeed } from '../helpers/common/exec.ts';
import { d8DocumentProblems, namedCommit, parseD8Document, staticHalfScope } from '../helpers/docs/d8-document.ts';
import { commitInHistory } from '../helpers/git/index.ts';
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

  /** The fork's document, its clone (the caller removes it), its HEAD, and the toplevel a clean checkout of it builds. */
  async function forkOf(name: SabotageName): Promise<{ text: string; toplevel: string; dir: string; commit: string }> {
    const url = (await SABOTAGES[name].forkRepos!(context)).baseRepo!;
    const dir = await mkdtemp(join(tmpdir(), 'accept-d8-doc-fork-'));
    await succeed('git', ['clone', '-q', join(paths().gitDir, url.slice(gitUrl.length + 1)), dir]);
    const commit = (await succeed('git', ['rev-parse', 'HEAD'], { cwd: dir })).stdout.trim();
    return { text: await readFile(join(dir, D8_DOCUMENT), 'utf8'), toplevel: (await measureToplevel(dir, instanceTree())).toplevel, dir, commit };
  }

  /** What C5 passes for a document in `repo` (a clone or bare repo), this run having built `commit` to `toplevel`. */
  async function expectations(doc: ReturnType<typeof parseD8Document>, repo: string, toplevel: string, commit: string) {
    const named = namedCommit(doc);
    return { measured: { toplevel, commit }, describedCommit: named && (await commitInHistory({ dir: repo }, named)) };
  }

  it("is committed after the commit it measured, names it, and C5 finds it holds: an older commit, so not compared with this run's build", async () => {
    const bare = join(paths().gitDir, BASE_REPO);
    const committed = (await succeed('git', ['show', `HEAD:${D8_DOCUMENT}`], { cwd: bare })).stdout;
    expect(committed).not.toMatch(/@D8_\w+@/);
    const parent = (await succeed('git', ['rev-parse', 'HEAD~1'], { cwd: bare })).stdout.trim();
    const head = (await succeed('git', ['rev-parse', 'HEAD'], { cwd: bare })).stdout.trim();
    const measured = await measureToplevel(join(paths().workDir, 'cc-ci'), instanceTree());
    const doc = parseD8Document(committed, D8_DOCUMENT);
    expect(doc.static?.facts.get('commit')?.value).toBe(parent);
    expect(doc.static?.facts.get('toplevel')?.value).toBe(measured.toplevel);
    expect(doc.static?.facts.get('closure hash')?.value).toBe(measured.closureHash);
    const expected = await expectations(doc, bare, measured.toplevel, head);
    expect(expected.describedCommit).toBe(parent);
    expect(d8DocumentProblems(doc, expected)).toEqual([]);
    expect(staticHalfScope(doc, expected)).toMatch(/: not compared$/);
  }, 60_000);

  it.each(['c5-d8-doc-static-half-missing', 'c5-d8-doc-names-unknown-commit'] as const)(
    '%s: C5 FAILs with the words of its cause',
    async (name) => {
      const { text, toplevel, dir, commit } = await forkOf(name);
      try {
        const doc = parseD8Document(text, D8_DOCUMENT);
        const problems = d8DocumentProblems(doc, await expectations(doc, dir, toplevel, commit));
        expect(
          problems.some((problem) => SABOTAGES[name].cause.test(problem)),
          problems.join('; '),
        ).toBe(true);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
    60_000,
  );
});
