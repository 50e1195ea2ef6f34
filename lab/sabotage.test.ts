/**
 * The catalogue holds together without a lab: every declared edit still finds what it breaks
 * (an edit that no longer applies would break nothing, and only the 45-minute matrix would
 * notice), every fork is published under its sabotage's name, and names and causes are sound.
 */
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exec, succeed } from '../helpers/common/exec.ts';
import { outcomeProblem, runListEntry } from '../helpers/dashboard/outcome.ts';
import { describeUnit, type UnitProperties } from '../helpers/systemd/index.ts';
import { BASE_REPO, generateRepos, INSTANCE_REPO } from './repos.ts';
import { cleanUpSabotage, describeSabotage, forkUrl, parseSabotage, SABOTAGES, type SabotageContext, type SabotageName } from './sabotage.ts';
import { editedText } from './sabotage-edits.ts';
import { LAB_DOMAIN, labPaths } from './state.ts';

const BASE = join(import.meta.dirname, 'base');
const ALL = Object.entries(SABOTAGES) as Array<[SabotageName, (typeof SABOTAGES)[SabotageName]]>;

async function templateText(file: string): Promise<string | undefined> {
  return readFile(join(BASE, file), 'utf8').catch(() => undefined);
}

describe('declared base-repo edits', () => {
  it.each(ALL.filter(([, sabotage]) => sabotage.baseFork))('%s applies to the lab/base templates', async (name, { baseFork }) => {
    const texts = new Map<string, string | undefined>();
    for (const edit of baseFork!.edits) {
      if (!texts.has(edit.file)) texts.set(edit.file, await templateText(edit.file));
      // Throws naming the sabotage, the file and the text it no longer finds.
      texts.set(edit.file, editedText(name, edit, texts.get(edit.file)));
    }
    for (const [file, text] of texts) expect(text, `${name} leaves ${file} unchanged`).not.toBe(await templateText(file));
  });

  it('every fork leaves its Python stand-ins valid Python', async () => {
    // A stand-in that no longer parses breaks the whole service: the row would read as a crash, not as the one wrong answer it plants.
    const edited: Record<string, string> = {};
    for (const [name, { baseFork }] of ALL) {
      const texts = new Map<string, string | undefined>();
      for (const edit of baseFork?.edits ?? [])
        texts.set(edit.file, editedText(name, edit, texts.has(edit.file) ? texts.get(edit.file) : await templateText(edit.file)));
      for (const [file, text] of texts) if (file.endsWith('.py') && text !== undefined) edited[`${name}: ${file}`] = text;
    }
    expect(Object.keys(edited).length).toBeGreaterThan(10);
    // One interpreter for all of them: each start costs about a second here.
    const check =
      'import ast, json, sys\nfor where, text in json.load(sys.stdin).items():\n    try:\n        ast.parse(text)\n    except SyntaxError as error:\n        print("%s: line %s: %s" % (where, error.lineno, error.msg))\n';
    const parsed = await exec('python3', ['-c', check], { input: JSON.stringify(edited) });
    expect(parsed.exitCode, parsed.stderr).toBe(0);
    expect(parsed.stdout.trim().split('\n').filter(Boolean)).toEqual([]);
  });

  it('every declared fork has the hook that publishes it', () => {
    expect(ALL.filter(([, sabotage]) => sabotage.baseFork && !sabotage.forkRepos).map(([name]) => name)).toEqual([]);
  });
});

describe('forks of generated lab repos', () => {
  const gitUrl = 'http://127.0.0.1:8418';
  let labDir: string;
  let context: SabotageContext;
  const git = async (bare: string, args: string[]) => (await succeed('git', args, { cwd: bare })).stdout;
  const commits = async (bare: string) => Number((await git(bare, ['rev-list', '--count', 'HEAD'])).trim());

  beforeAll(async () => {
    labDir = await mkdtemp(join(tmpdir(), 'accept-sabotage-lab-'));
    // The layout that needs no Nix; the input layout differs only in flake.nix, which no sabotage edits.
    await generateRepos(labPaths(labDir), LAB_DOMAIN, gitUrl, 'submodule');
    const noHost = new Proxy(
      {},
      {
        get: () => {
          throw new Error('a fork must not touch the host');
        },
      },
    );
    context = {
      labDir,
      domain: LAB_DOMAIN,
      gitUrl,
      project: 'terraform-ci',
      host: noHost as SabotageContext['host'],
      recordedHost: noHost as SabotageContext['host'],
      production: noHost as SabotageContext['host'],
      markChanged: () => Promise.reject(new Error('a fork must not touch a lab machine')),
    };
  }, 60_000);
  afterAll(async () => {
    await rm(labDir, { recursive: true, force: true });
  });

  // One test: the forks run one after another on 2 cores anyway, and it keeps the run in seconds.
  it('every sabotage that forks publishes, under its own name, commits on top of the generated repo', async () => {
    const gitDir = labPaths(labDir).gitDir;
    for (const [name, sabotage] of ALL) {
      if (!sabotage.forkRepos) continue;
      const forks = await sabotage.forkRepos(context);
      const published = Object.entries(forks);
      expect(published.length, `${name} forks nothing`).toBeGreaterThan(0);
      for (const [key, url] of published) {
        const repo = key === 'baseRepo' ? BASE_REPO : INSTANCE_REPO;
        expect(url, `${name}'s ${key}`).toBe(forkUrl(gitUrl, name, repo));
        const bare = join(gitDir, url!.slice(gitUrl.length + 1));
        expect(await commits(bare), `${name}'s fork of ${repo} adds no commit`).toBeGreaterThan(await commits(join(gitDir, repo)));
      }
      if (sabotage.baseFork?.machineRuns) {
        const runbook = await git(join(gitDir, forks.baseRepo!.slice(gitUrl.length + 1)), ['show', 'HEAD:docs/install.md']);
        expect(runbook, `${name}: the machine must clone the fork`).toContain(`git clone --recursive ${forks.baseRepo} /root/cc-ci`);
      }
    }
  }, 120_000);
});

describe('parseSabotage', () => {
  it('returns a known name', () => {
    expect(parseSabotage('c4-oneshot-stopped')).toBe('c4-oneshot-stopped');
    expect(parseSabotage(undefined)).toBeUndefined();
  });

  it('refuses an unknown name, naming the variable and the known ones; a property of every object is not a sabotage', () => {
    expect(() => parseSabotage('c4-oneshot')).toThrow(/ACCEPT_LAB_SABOTAGE: unknown sabotage "c4-oneshot"; known: c1-domain-in-base-history, /);
    expect(() => parseSabotage('toString')).toThrow(/unknown sabotage "toString"/);
  });
});

describe('the catalogue', () => {
  it('guards every D item with at least one sabotage', () => {
    const guarded = new Set(ALL.flatMap(([, sabotage]) => sabotage.guards));
    expect(['D1', 'D2', 'D3', 'D4', 'D5', 'D6', 'D7', 'D8', 'D9', 'D10'].filter((item) => !guarded.has(item))).toEqual([]);
  });

  it("no cause is named by the sabotage's own announcement, which the run's output also holds", () => {
    expect(ALL.filter(([name, sabotage]) => sabotage.cause.test(describeSabotage(name))).map(([name]) => name)).toEqual([]);
  });

  it('c4-oneshot-stopped: its cause names the stopped unit in the state C4 reports, not the lines of a passing run', () => {
    const unit = (ActiveState: string, SubState: string): UnitProperties => ({
      unit: 'ccci-reconcile-dashboard.service',
      Id: 'ccci-reconcile-dashboard.service',
      LoadState: 'loaded',
      ActiveState,
      SubState,
      Result: 'success',
      ExecMainStatus: '0',
      ExecMainExitTimestampMonotonic: '52000000',
      Type: 'oneshot',
      RemainAfterExit: 'yes',
      Job: '',
    });
    const { cause, guards } = SABOTAGES['c4-oneshot-stopped'];
    expect(guards).toEqual(['C4']);
    expect(cause.test(describeUnit(unit('inactive', 'dead')))).toBe(true);
    expect(cause.test(describeUnit(unit('active', 'exited')))).toBe(false);
    expect(cause.test('switch-to-configuration: starting ccci-reconcile-dashboard.service')).toBe(false);
  });
});

describe('the sabotages that answer "yes" every time', () => {
  // Each cause is the line the spec writes when it sees that answer; built here with the spec's own readers.
  it('d7-dashboard-shows-every-run-passing: the run list that calls a failed run a success', () => {
    const entry = runListEntry('<table><tr><td><a href="/runs/2/">#2</a></td><td>custom-html</td><td>success</td></tr></table>', '/runs/2/')!;
    const line = `the run list's entry for build #2 (failure) reads "${entry}": ${outcomeProblem(entry, 'failing')}`;
    expect(SABOTAGES['d7-dashboard-shows-every-run-passing'].cause.test(line), line).toBe(true);
    const honest = runListEntry('<table><tr><td><a href="/runs/2/">#2</a></td><td>custom-html</td><td>failure</td></tr></table>', '/runs/2/')!;
    expect(outcomeProblem(honest, 'failing')).toBeUndefined();
  });

  it('d7-bridge-reports-every-run-passed: the PR comment that says "passed" of a failed run', () => {
    const body = 'cc-ci build #2 of custom-html passed (failure): https://ci.lab.test/runs/2/ (Drone: https://drone.ci.lab.test/coop-cloud/cc-ci/2)';
    const line = `the outcome comment of failing build #2 (failure) on coop-cloud/custom-html#3: ${outcomeProblem(body, 'failing')}: ${body}`;
    expect(SABOTAGES['d7-bridge-reports-every-run-passed'].cause.test(line), line).toBe(true);
    expect(outcomeProblem(body.replace('passed', 'failed'), 'failing')).toBeUndefined();
  });

  it('d1-hook-any-signature and d6-rotation-keeps-old-webhook-hmac guard the refusing side only', () => {
    expect(SABOTAGES['d1-hook-any-signature'].cause.test('an unsigned /hook was accepted (HTTP 200)')).toBe(false);
    expect(SABOTAGES['d1-hook-any-signature'].cause.test('a /hook signed with another key was accepted (HTTP 200)')).toBe(true);
    expect(
      SABOTAGES['d6-rotation-keeps-old-webhook-hmac'].cause.test(
        'after rotating webhook_hmac and rebuilding, a webhook signed with the old value was still accepted (HTTP 200)',
      ),
    ).toBe(true);
    expect(SABOTAGES['d6-rotation-keeps-old-webhook-hmac'].guards).toEqual(['D6']);
  });
});

describe('cleanUpSabotage', () => {
  it("removes only this sabotage's forks: another run may be using its own", async () => {
    const labDir = await mkdtemp(join(tmpdir(), 'accept-sabotage-clean-'));
    try {
      const dir = join(labPaths(labDir).gitDir, 'sabotage');
      for (const fork of ['d7-badge-missing-cc-ci.git', 'd9-runbook-not-linked-cc-ci.git']) await mkdir(join(dir, fork), { recursive: true });
      await cleanUpSabotage(labDir, 'd7-badge-missing');
      expect(await readdir(dir)).toEqual(['d9-runbook-not-linked-cc-ci.git']);
    } finally {
      await rm(labDir, { recursive: true, force: true });
    }
  });
});
