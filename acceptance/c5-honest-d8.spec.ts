/**
 * C5 — the D8 evidence carries both halves, static and live, each with hashes and timestamps,
 * and no "infeasible by design" wording remains in what the system publishes.
 *
 * Two sources: the harness's own D8 record of this run (reports/evidence/d8.json), and the
 * D8 document the system publishes in its base repo (ACCEPT_D8_DOC, format in
 * helpers/docs/d8-document.ts). The published static half names the base repo's commit it
 * measured, which must be in the base repo's history. No commit can name itself, so that is an
 * earlier one: its toplevel is held to this run's build only when this run built that commit,
 * and otherwise the observation says which commit each side describes. Its live half is the
 * operators' record of their own live rebuild of a brand-new machine, made before the document
 * was published, so it cannot be this run's throwaway: it must be complete (instance, creation,
 * rebuild start and finish, exit code 0, toplevel, closure hash) and in order, and this run's
 * live rebuild is checked from d8.json.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';
import { d8DocumentProblems, namedCommit, parseD8Document, staticHalfScope } from '../helpers/docs/d8-document.ts';
import { commitInHistory } from '../helpers/git/index.ts';
import {
  attach,
  dodItem,
  observation,
  skipBecause,
  system,
  test,
  expectNone,
  useReproduction,
  observes,
  OPERATOR_SIDE,
  runHost,
  runningCcci,
} from './support/dod.ts';

/** The base repo's README and every Markdown document under docs/, as paths in the repo. */
async function publishedDocuments(dir: string, readmeFile: string): Promise<string[]> {
  const found = await readdir(join(dir, 'docs'), { recursive: true }).catch(() => [] as string[]);
  const docs = found.filter((file) => file.endsWith('.md')).map((file) => join('docs', file));
  const readme = await readFile(join(dir, readmeFile), 'utf8').then(
    () => [readmeFile],
    () => [],
  );
  return [...readme, ...docs.sort()];
}

const SLIPPED_BAR = /infeasible(\s+by\s+design)?|not\s+feasible|cannot\s+be\s+(done|performed)\s+by\s+design/i;

dodItem('C5', () => {
  useReproduction();

  test('the static half: a clean-checkout toplevel and closure hash, with a timestamp', async ({ reproduction, task }) => {
    observes(task, `${OPERATOR_SIDE} and ${runningCcci()}`);
    const half = reproduction.record.static;
    await attach('d8.json (static half)', half);
    expect(half.toplevel, 'the static half names no toplevel').toMatch(/^\/nix\/store\/[a-z0-9]{32}-/);
    expect(half.closureHash, 'the static half has no closure hash').toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(Number.isNaN(Date.parse(half.builtAt)), 'the static half has no timestamp').toBe(false);
    const running = reproduction.record.running;
    expect(
      reproduction.record.identical,
      `the static half does not hold on ${running.host}: clean-checkout ${half.toplevel} ≠ /run/current-system ${running.toplevel}`,
    ).toBe(true);
    observation(task, `static: ${half.toplevel} built ${half.builtAt}, closure ${half.closureHash.slice(0, 23)}…`);
  });

  test('the live half: a brand-new machine, its runbook, its rebuild exit code and the same toplevel', async ({ reproduction, task, skip }) => {
    observes(task, runHost());
    const live = reproduction.record.live;
    if (!live) skipBecause({ task, skip }, 'warm run: the live half needs a cold run that creates the machine');
    await attach('d8.json (live half)', live);
    expect(live.rebuildExitCode, `the live rebuild exited ${live.rebuildExitCode}`).toBe(0);
    expect(live.toplevel, `the live machine runs ${live.toplevel}, not the clean-checkout ${reproduction.record.static.toplevel}`).toBe(
      reproduction.record.static.toplevel,
    );
    observation(task, `live: ${live.instance} created ${live.createdAt}, ${live.runbook.steps.length} runbook steps, rebuild exit 0, same toplevel`);
  });

  test("the D8 evidence the system publishes has both halves with hashes and timestamps, names a commit of the base repo, holds for this run's build where it measured that commit, and every limitation is narrow and signed off", async ({
    baseRepo,
    reproduction,
    task,
  }) => {
    observes(task, OPERATOR_SIDE);
    const d8Doc = system().docs.d8Document;
    const text = await readFile(join(baseRepo.dir, d8Doc), 'utf8').catch(() => undefined);
    expect(text, `no D8 evidence document at ${d8Doc} in the base repo (ACCEPT_D8_DOC)`).toBeDefined();
    await attach(`${d8Doc} (published)`, text!);
    const doc = parseD8Document(text!, d8Doc);
    const named = namedCommit(doc);
    const expected = {
      measured: { toplevel: reproduction.built, commit: reproduction.record.static.commit },
      describedCommit: named && (await commitInHistory(baseRepo, named)),
    };
    expectNone(d8DocumentProblems(doc, expected), 'the published D8 evidence document does not hold');
    const limits = doc.limitations.length === 0 ? 'no limitations' : `${doc.limitations.length} signed-off limitation(s)`;
    observation(task, `${d8Doc}: ${staticHalfScope(doc, expected)}; live on ${doc.live!.facts.get('instance')!.value}; ${limits}`);
  });

  test('nothing the system publishes (its README and every document in the base repo) calls the live rebuild infeasible', async ({ baseRepo, task }) => {
    observes(task, OPERATOR_SIDE);
    const { d8Document: d8Doc, readme } = system().docs;
    expect(
      await readFile(join(baseRepo.dir, d8Doc), 'utf8').catch(() => undefined),
      `no D8 evidence document at ${d8Doc} in the base repo (ACCEPT_D8_DOC)`,
    ).toBeDefined();
    // The D8 document first: the observation names it where it is the one that slipped.
    const documents = [d8Doc, ...(await publishedDocuments(baseRepo.dir, readme)).filter((file) => file !== d8Doc)];
    const hits: string[] = [];
    for (const file of documents) {
      const text = await readFile(join(baseRepo.dir, file), 'utf8');
      text.split('\n').forEach((line, index) => {
        if (SLIPPED_BAR.test(line)) hits.push(`${file}:${index + 1}: ${line.trim()}`);
      });
    }
    expectNone(hits, 'what the system publishes still declares the live rebuild infeasible');
    observation(task, `no "infeasible" wording in ${documents.length} documents of the base repo (${d8Doc}, ${readme} and docs/)`);
  });
});
