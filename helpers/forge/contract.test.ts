import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { driftedServices, SERVICES_DIR, startService, type RunningService } from '../common/testing/standins.ts';
import { FORGE_CONTRACT, httpForge, runForgeContract, type ForgeRole, type ForgeWorld } from './contract.ts';

const FILE_TEXT = 'print("ok 1 - contract")\n';
const WORLD: ForgeWorld = {
  org: 'coop-cloud',
  repo: 'custom-html',
  member: 'alice',
  outsider: 'mallory',
  openPulls: 3,
  commentedPull: 1,
  comments: 3,
  branch: 'contract-branch',
  file: 'tests/test_contract.py',
  fileText: FILE_TEXT,
};
const TOKENS: Record<ForgeRole, string> = { member: 'tok-alice', plainMember: 'tok-bob', outsider: 'tok-mallory', badToken: 'tok-nobody' };
const names = (which: string[]) => FORGE_CONTRACT.map((behaviour) => behaviour.name).filter((name) => which.some((part) => name.startsWith(part)));

// Gitea's answers, written from its API v1 source (routers/api/v1, services/context): a page's
// Link under ROOT_URL, X-Total-Count, newest-first pulls, an issue's comments whole, oldest first.
const ROOT = 'https://git.coopcloud.tech/api/v1/repos/coop-cloud/custom-html/pulls';
const user = (id: number, login: string) => ({ id, login, login_name: '', full_name: '', email: `${login}@noreply.git.coopcloud.tech`, username: login });
const pull = (number: number) => ({
  id: 4000 + number,
  url: `https://git.coopcloud.tech/coop-cloud/custom-html/pulls/${number}`,
  number,
  user: user(7, 'alice'),
  title: `Bump ${number}`,
  body: '',
  state: 'open',
  html_url: `https://git.coopcloud.tech/coop-cloud/custom-html/pulls/${number}`,
  head: { label: `bump-${number}`, ref: `bump-${number}`, sha: 'a'.repeat(40), repo_id: 12 },
  base: { label: 'main', ref: 'main', sha: 'b'.repeat(40), repo_id: 12 },
  created_at: `2026-11-0${number}T10:00:00Z`,
  updated_at: `2026-11-0${number}T10:00:00Z`,
});
const comment = (id: number, minute: number) => ({
  id,
  html_url: `https://git.coopcloud.tech/coop-cloud/custom-html/pulls/1#issuecomment-${id}`,
  pull_request_url: 'https://git.coopcloud.tech/coop-cloud/custom-html/pulls/1',
  issue_url: '',
  user: user(7, 'alice'),
  body: '!testme',
  created_at: `2026-11-01T10:0${minute}:00Z`,
  updated_at: `2026-11-01T10:0${minute}:00Z`,
});
type Recorded = { status: number; headers?: Record<string, string>; body?: unknown };
// routers/api/v1/repo/file.go (GetContents, CreateFile) and services/repository/files: a file's
// ContentsResponse with base64 content; a directory as its entries, content null.
const CONTENTS = 'https://git.coopcloud.tech/api/v1/repos/coop-cloud/custom-html/contents';
const contentsEntry = (path: string, text: string | undefined) => ({
  name: path.split('/').pop(),
  path,
  sha: 'c'.repeat(40),
  last_commit_sha: 'd'.repeat(40),
  type: 'file',
  size: text?.length ?? 26,
  encoding: text === undefined ? null : 'base64',
  content: text === undefined ? null : Buffer.from(text).toString('base64'),
  target: null,
  url: `${CONTENTS}/${path}?ref=contract-branch`,
  html_url: `https://git.coopcloud.tech/coop-cloud/custom-html/src/branch/contract-branch/${path}`,
  git_url: `https://git.coopcloud.tech/api/v1/repos/coop-cloud/custom-html/git/blobs/${'c'.repeat(40)}`,
  download_url: `https://git.coopcloud.tech/coop-cloud/custom-html/raw/branch/contract-branch/${path}`,
  submodule_git_url: null,
  _links: {},
});
const NOT_FOUND = { errors: ['object does not exist'], message: "The target couldn't be found.", url: 'https://git.coopcloud.tech/api/swagger' };
const RECORDED: Record<string, Recorded> = {
  'member GET /api/v1/repos/coop-cloud/custom-html/pulls?state=open&page=1&limit=2': {
    status: 200,
    headers: { Link: `<${ROOT}?limit=2&page=2&state=open>; rel="next",<${ROOT}?limit=2&page=2&state=open>; rel="last"`, 'X-Total-Count': '3' },
    body: [pull(3), pull(2)],
  },
  'member GET /api/v1/repos/coop-cloud/custom-html/pulls?state=open&page=2&limit=2': {
    status: 200,
    headers: { Link: `<${ROOT}?limit=2&page=1&state=open>; rel="first",<${ROOT}?limit=2&page=1&state=open>; rel="prev"`, 'X-Total-Count': '3' },
    body: [pull(1)],
  },
  'member GET /api/v1/repos/coop-cloud/custom-html/pulls?state=open&page=1&limit=50': {
    status: 200,
    headers: { 'X-Total-Count': '3' },
    body: [pull(3), pull(2), pull(1)],
  },
  'member GET /api/v1/repos/coop-cloud/custom-html/pulls/1': { status: 200, body: pull(1) },
  'member GET /api/v1/repos/coop-cloud/custom-html/issues/1/comments': {
    status: 200,
    headers: { 'X-Total-Count': '3' },
    body: [comment(901, 1), comment(902, 2), comment(905, 5)],
  },
  'member GET /api/v1/orgs/coop-cloud/members/alice': { status: 204 },
  'member GET /api/v1/orgs/coop-cloud/members/mallory': {
    status: 404,
    body: { errors: null, message: "The target couldn't be found.", url: 'https://git.coopcloud.tech/api/swagger' },
  },
  'outsider GET /api/v1/orgs/coop-cloud/members/alice': { status: 303, headers: { Location: '/api/v1/orgs/coop-cloud/public_members/alice' } },
  'plainMember POST /api/v1/orgs/coop-cloud/repos': {
    status: 403,
    body: { message: 'Given user is not allowed to create repository in organization.', url: 'https://git.coopcloud.tech/api/swagger' },
  },
  'member POST /api/v1/repos/coop-cloud/custom-html/pulls {"title":"contract: head is base","head":"main","base":"main"}': {
    status: 422,
    body: { message: 'Invalid PullRequest: There are no changes between the head and the base', url: 'https://git.coopcloud.tech/api/swagger' },
  },
  'member POST /api/v1/repos/coop-cloud/custom-html/pulls {"title":"contract: no such head","head":"contract-no-such-branch","base":"main"}': {
    status: 404,
    body: NOT_FOUND,
  },
  'member GET /api/v1/repos/coop-cloud/custom-html/contents/tests/test_contract.py?ref=contract-branch': {
    status: 200,
    body: contentsEntry('tests/test_contract.py', FILE_TEXT),
  },
  'member GET /api/v1/repos/coop-cloud/custom-html/contents/tests?ref=contract-branch': {
    status: 200,
    body: [contentsEntry('tests/test_app.py', undefined), contentsEntry('tests/test_contract.py', undefined)],
  },
  'member GET /api/v1/repos/coop-cloud/custom-html/contents/tests/contract-no-such-file.py?ref=contract-branch': { status: 404, body: NOT_FOUND },
  'member POST /api/v1/repos/coop-cloud/custom-html/contents/tests/contract-again.py': {
    status: 422,
    body: { message: 'branch already exists [name: contract-branch]', url: 'https://git.coopcloud.tech/api/swagger' },
  },
};

async function fixtureForge(recorded: Record<string, Recorded>): Promise<{ url: string; close(): Promise<void> }> {
  const roles = new Map(Object.entries(TOKENS).map(([role, token]) => [`token ${token}`, role]));
  const server = http.createServer(async (request, response) => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const sent = Buffer.concat(chunks).toString('utf8');
    const role = roles.get(request.headers.authorization ?? '');
    // A request's answer by who asks, what and where; where one place answers by body, with the body.
    const key = `${role} ${request.method} ${request.url}`;
    const answer: Recorded =
      !role || role === 'badToken'
        ? { status: 401, body: { message: 'user does not exist [uid: 0, name: ]', url: 'https://git.coopcloud.tech/api/swagger' } }
        : (recorded[`${key} ${sent}`] ?? recorded[key] ?? { status: 404, body: { message: 'not recorded' } });
    const body = answer.body === undefined ? '' : JSON.stringify(answer.body);
    response.writeHead(answer.status, { ...(body ? { 'Content-Type': 'application/json;charset=utf-8' } : {}), ...answer.headers });
    response.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

/** The lab's forge stand-in from `dir`, holding WORLD: its seeded pull #1, two more, and three comments on #1. */
async function standinForge(dir: string): Promise<RunningService & { secrets: string; cleanup(): Promise<void> }> {
  const tmp = await mkdtemp(join(tmpdir(), 'accept-forge-contract-'));
  await mkdir(join(tmp, 'secrets'));
  await writeFile(join(tmp, 'secrets', 'alice_token'), `${TOKENS.member}\n`);
  await writeFile(join(tmp, 'secrets', 'bob_token'), `${TOKENS.plainMember}\n`);
  await writeFile(join(tmp, 'secrets', 'mallory_token'), `${TOKENS.outsider}\n`);
  await writeFile(join(tmp, 'enrolled'), `# enrolled recipes\n${WORLD.repo}\n`);
  const service = await startService(
    dir,
    'forge.py',
    (port) => [
      '--port',
      String(port),
      '--state',
      join(tmp, 'state', 'forge.json'),
      '--url',
      `http://127.0.0.1:${port}`,
      '--org',
      WORLD.org,
      '--members',
      `${WORLD.member}=alice_token,bob=bob_token`,
      '--creators',
      WORLD.member,
      '--outsiders',
      `${WORLD.outsider}=mallory_token`,
      '--recipes',
      join(tmp, 'enrolled'),
    ],
    { CCCI_SECRETS_DIR: join(tmp, 'secrets') },
    '/api/v1/version',
  );
  const ask = httpForge(service.url, TOKENS);
  const commit = (path: string, text: string, newBranch: string) =>
    ask({
      as: 'member',
      method: 'POST',
      path: `/repos/${WORLD.org}/${WORLD.repo}/contents/${path}`,
      body: { content: Buffer.from(text).toString('base64'), message: 'contract', branch: 'main', new_branch: newBranch },
    });
  expect((await commit(WORLD.file, WORLD.fileText, WORLD.branch)).status).toBe(201);
  for (const head of ['contract-2', 'contract-3']) {
    expect((await commit(`notes/${head}.md`, `${head}\n`, head)).status).toBe(201);
    expect(
      (await ask({ as: 'member', method: 'POST', path: `/repos/${WORLD.org}/${WORLD.repo}/pulls`, body: { title: head, head, base: 'main' } })).status,
    ).toBe(201);
  }
  for (let i = 0; i < WORLD.comments; i++) {
    expect(
      (
        await ask({
          as: 'member',
          method: 'POST',
          path: `/repos/${WORLD.org}/${WORLD.repo}/issues/${WORLD.commentedPull}/comments`,
          body: { body: `comment ${i}` },
        })
      ).status,
    ).toBe(201);
  }
  return {
    ...service,
    secrets: join(tmp, 'secrets'),
    cleanup: async () => {
      await service.stop();
      await rm(tmp, { recursive: true, force: true });
    },
  };
}

describe('the forge contract, against real-shaped fixtures', () => {
  let fixture: Awaited<ReturnType<typeof fixtureForge>>;
  beforeAll(async () => (fixture = await fixtureForge(RECORDED)));
  afterAll(() => fixture.close());

  it('holds every behaviour', async () => {
    expect(await runForgeContract(httpForge(fixture.url, TOKENS), WORLD)).toEqual([]);
  });

  it('is never run against a real forge: it writes', () => {
    expect(() => httpForge('https://git.coopcloud.tech', TOKENS)).toThrow(/local fakes only/);
  });

  it('takes the redirect of an older Gitea (302) as well', async () => {
    const older = await fixtureForge({
      ...RECORDED,
      'outsider GET /api/v1/orgs/coop-cloud/members/alice': { status: 302, headers: { Location: '/api/v1/orgs/coop-cloud/public_members/alice' } },
    });
    try {
      expect(await runForgeContract(httpForge(older.url, TOKENS), WORLD)).toEqual([]);
    } finally {
      await older.close();
    }
  });
});

describe('the forge contract, against the lab stand-in (lab/base/services/forge.py)', () => {
  let forge: Awaited<ReturnType<typeof standinForge>>;
  beforeAll(async () => (forge = await standinForge(SERVICES_DIR)));
  afterAll(() => forge?.cleanup());

  it('holds every behaviour', async () => {
    expect(await runForgeContract(httpForge(forge.url, TOKENS), WORLD), forge.log().slice(-2000)).toEqual([]);
  });

  it("is read whole by the lab bridge's forge_list, and its redirect is no verdict for is_member", async () => {
    // The bridge as a client of this stand-in, with a page of 2 so that the pulls span pages.
    const script = [
      'import json, sys, types',
      `sys.path.insert(0, ${JSON.stringify(SERVICES_DIR)})`,
      'import bridge',
      `bridge.ARGS = types.SimpleNamespace(forge=${JSON.stringify(forge.url)}, forge_token_secret="alice_token", org="${WORLD.org}")`,
      'bridge.PAGE = 2',
      `pulls = bridge.forge_list("/repos/${WORLD.org}/${WORLD.repo}/pulls?state=open")`,
      `comments = bridge.forge_list("/repos/${WORLD.org}/${WORLD.repo}/issues/${WORLD.commentedPull}/comments")`,
      'member = bridge.is_member("mallory")',
      'bridge.ARGS.forge_token_secret = "mallory_token"',
      'try:\n    bridge.is_member("alice")\n    outsider = "answered"\nexcept RuntimeError as error:\n    outsider = str(error)',
      'print(json.dumps({"pulls": [pulls[0], [p["number"] for p in pulls[1]]], "comments": [comments[0], len(comments[1])], "member": member, "outsider": outsider}))',
    ].join('\n');
    const out = await new Promise<string>((resolve, reject) =>
      execFile(
        'python3',
        ['-c', script],
        { env: { ...process.env, CCCI_SECRETS_DIR: forge.secrets, PYTHONDONTWRITEBYTECODE: '1' }, cwd: tmpdir() },
        (error, stdout, stderr) => (error ? reject(new Error(`${error.message}: ${stderr}`)) : resolve(stdout)),
      ),
    );
    const seen = JSON.parse(out) as { pulls: [number, number[]]; comments: [number, number]; member: boolean; outsider: string };
    expect(seen.pulls).toEqual([200, [3, 2, 1]]);
    expect(seen.comments).toEqual([200, WORLD.comments]);
    expect(seen.member).toBe(false);
    expect(seen.outsider).toMatch(/membership of alice unknown: the forge token's user is not a member or admin of coop-cloud/);
  });

  it("opens a pull from a branch a commit made, whose head sha is that commit's", async () => {
    const ask = httpForge(forge.url, TOKENS);
    const made = await ask({
      as: 'member',
      method: 'POST',
      path: `/repos/${WORLD.org}/${WORLD.repo}/contents/tests/test_enrol.py`,
      body: { content: Buffer.from('print("ok 1")\n').toString('base64'), message: 'enrol', branch: 'main', new_branch: 'accept/enrol-x' },
    });
    expect(made.status).toBe(201);
    const sha = (made.body as { commit: { sha: string } }).commit.sha;
    const answer = await ask({
      as: 'member',
      method: 'POST',
      path: `/repos/${WORLD.org}/${WORLD.repo}/pulls`,
      body: { title: 'Enrol', head: 'accept/enrol-x', base: 'main' },
    });
    expect(answer.status).toBe(201);
    expect(answer.body).toMatchObject({ head: { ref: 'accept/enrol-x', sha }, base: { ref: 'main' } });
    const seeded = await ask({ as: 'member', method: 'GET', path: `/repos/${WORLD.org}/${WORLD.repo}/contents/tests/test_enrol.py?ref=${sha}` });
    expect(seeded.status).toBe(200);
    expect(
      await ask({
        as: 'outsider',
        method: 'POST',
        path: `/repos/${WORLD.org}/${WORLD.repo}/contents/tests/x.py`,
        body: { content: '', branch: 'main', new_branch: 'x' },
      }),
    ).toMatchObject({ status: 403 });
  });
});

describe('the forge contract catches a stand-in that drifts', () => {
  const drifts: Array<{ drift: string; patches: Array<[string, string]>; broken: string[] }> = [
    {
      drift: 'membership answered to anyone, without the redirect',
      patches: [['        if self.login not in members:\n', '        if False:\n']],
      broken: names(['membership: an outsider asking']),
    },
    {
      drift: 'any member may create repos in the org',
      patches: [['self.login not in ARGS.creators:', 'self.login not in STORE.data["orgs"].get(org, []):']],
      broken: names(['repos: a member without create rights']),
    },
    {
      drift: 'pulls from a head that is no branch',
      patches: [['        if missing:\n', '        if False:\n']],
      broken: names(['pulls: one whose head branch does not exist']),
    },
    {
      drift: 'lists unpaginated',
      patches: [['self.send(200, items[(page - 1) * limit: page * limit], headers=headers)', 'self.send(200, items)']],
      broken: names(['pulls: a first page', 'pulls: the last page']),
    },
  ];

  it.each(drifts)('reports exactly what broke: $drift', async ({ patches, broken }) => {
    const copy = await driftedServices('forge.py', patches);
    const forge = await standinForge(copy.dir);
    try {
      const found = await runForgeContract(httpForge(forge.url, TOKENS), WORLD);
      expect(broken.length).toBeGreaterThan(0);
      expect(found.map((behaviour) => behaviour.name)).toEqual(broken);
      for (const behaviour of found) expect(behaviour.differences.length).toBeGreaterThan(0);
    } finally {
      await forge.cleanup();
      await copy.remove();
    }
  });
});
