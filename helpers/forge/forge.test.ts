import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HarnessError } from '../common/errors.ts';
import { fakeHttps, json, type FakeHttps } from '../https/testing/fake-https.ts';
import { ForgeClient, ForgeWriteRefused, realForgeWrites, type ForgeWriteScope } from './index.ts';

// A fake Gitea: alice (token a) is in coop-cloud, mallory (token m) is not.
const TOKENS: Record<string, string> = { 'token a': 'alice', 'token m': 'mallory' };
// Five open pulls on keycloak, newest first, paged as Gitea pages (Link under its ROOT_URL, not the address dialled).
const KEYCLOAK = [5, 4, 3, 2, 1].map((number) => ({ number, title: `Bump ${number}`, state: 'open' }));

function page(response: import('node:http').ServerResponse, url: URL, items: unknown[]): void {
  const number = Number(url.searchParams.get('page') ?? 1);
  const limit = Number(url.searchParams.get('limit') ?? 30);
  const next =
    number * limit < items.length ? { Link: `<https://git.elsewhere.test${url.pathname}?limit=${limit}&page=${number + 1}&state=open>; rel="next"` } : {};
  response.writeHead(200, { 'Content-Type': 'application/json', 'X-Total-Count': String(items.length), ...next });
  response.end(JSON.stringify(items.slice((number - 1) * limit, number * limit)));
}
const comments: Array<{ id: number; body: string; user: { id: number; login: string }; created_at: string }> = [];
let server: FakeHttps;
const branches = new Map<string, Map<string, string>>([['main', new Map([['README.md', '# probe\n']])]]);

beforeAll(async () => {
  server = await fakeHttps((request, response) => {
    const login = TOKENS[request.headers.authorization ?? ''];
    if (!login) return json(response, 401, { message: 'token is required' });
    const parsed = new URL(request.url ?? '', 'https://git.lab.test');
    const url = parsed.pathname;
    if (url === '/api/v1/user') return json(response, 200, { id: 1, login });
    const member = /^\/api\/v1\/orgs\/coop-cloud\/members\/(\w+)$/.exec(url);
    if (member && login !== 'alice') {
      response.writeHead(303, { Location: `/api/v1/orgs/coop-cloud/public_members/${member[1]}` });
      return response.end();
    }
    if (member) return json(response, member[1] === 'alice' ? 204 : 404);
    if (url === '/api/v1/repos/coop-cloud/custom-html/pulls' && parsed.searchParams.get('state') === 'open')
      return page(response, parsed, [{ number: 7, title: 'Bump', state: 'open' }]);
    if (url === '/api/v1/repos/coop-cloud/keycloak/pulls' && parsed.searchParams.get('state') === 'open') return page(response, parsed, KEYCLOAK);
    if (url === '/api/v1/repos/coop-cloud/custom-html/issues/7/comments') {
      if (request.method === 'POST') {
        const comment = { id: 100 + comments.length, body: JSON.parse(request.body).body, user: { id: 1, login }, created_at: '2026-01-01T00:00:00Z' };
        comments.push(comment);
        return json(response, 201, comment);
      }
      return json(response, 200, comments);
    }
    if (url === '/api/v1/orgs/coop-cloud/repos' && request.method === 'POST') {
      // Gitea's CreateOrgRepo for a member without a team that may create repos.
      return json(response, 403, { message: 'Given user is not allowed to create repository in organization.' });
    }
    // One branch with one file, as Gitea's contents API serves and makes them.
    const file = /^\/api\/v1\/repos\/coop-cloud\/probe\/contents\/(.+)$/.exec(url);
    if (file && request.method === 'GET') {
      const held = branches.get(parsed.searchParams.get('ref') ?? 'main')?.get(file[1]!);
      return held === undefined
        ? json(response, 404, { message: 'object does not exist' })
        : json(response, 200, { type: 'file', path: file[1], encoding: 'base64', content: Buffer.from(held).toString('base64') });
    }
    if (file && request.method === 'POST') {
      const body = JSON.parse(request.body) as { content: string; branch: string; new_branch?: string };
      if (body.new_branch && branches.has(body.new_branch)) return json(response, 422, { message: 'branch already exists' });
      const onto = body.new_branch ?? body.branch;
      branches.set(onto, new Map([...(branches.get(body.branch) ?? []), [file[1]!, Buffer.from(body.content, 'base64').toString('utf8')]]));
      return json(response, 201, { content: { path: file[1] }, commit: { sha: 'f'.repeat(40) } });
    }
    if (url === '/api/v1/repos/coop-cloud/nope') return json(response, 404, { message: 'repository does not exist' });
    if (url === '/api/v1/repos/coop-cloud/restarting/pulls') return json(response, 503, { message: 'Service Unavailable' });
    return json(response, 500, { message: 'boom' });
  });
});
afterAll(() => server.close());

const client = (token: string, writes: ForgeWriteScope = { kind: 'stand-in' }, pageSize?: number) =>
  new ForgeClient('https://git.lab.test', token, { ca: server.ca, dial: () => ({ host: '127.0.0.1', port: server.port }) }, 'a test token', writes, pageSize);

describe('ForgeClient', () => {
  it('sends `Authorization: token …` and reads the user', async () => {
    expect((await client('a').me()).login).toBe('alice');
    expect(server.seen.at(-1)?.headers.authorization).toBe('token a');
  });

  it('reads membership from 204 and 404', async () => {
    expect(await client('a').isMember('coop-cloud', 'alice')).toBe(true);
    expect(await client('a').isMember('coop-cloud', 'mallory')).toBe(false);
  });

  it('will not read a redirect as "not a member": it names the token that cannot tell', async () => {
    const asked = client('m').isMember('coop-cloud', 'alice');
    await expect(asked).rejects.toBeInstanceOf(HarnessError);
    await expect(client('m').isMember('coop-cloud', 'alice')).rejects.toThrow(
      /will not say whether alice is a member of coop-cloud: the token from a test token belongs to a user who is not a member \(nor an admin\) of coop-cloud.*303 to \/api\/v1\/orgs\/coop-cloud\/public_members\/alice/,
    );
  });

  it('reads every page of a list, by page number, until no rel="next"', async () => {
    const before = server.seen.length;
    expect((await client('a', { kind: 'stand-in' }, 2).openPulls('coop-cloud', 'keycloak')).map((pull) => pull.number)).toEqual([5, 4, 3, 2, 1]);
    expect(server.seen.slice(before).map((request) => request.url)).toEqual(
      [1, 2, 3].map((n) => `/api/v1/repos/coop-cloud/keycloak/pulls?state=open&page=${n}&limit=2`),
    );
    // A page shorter than the limit ends the list too; the default asks Gitea's largest page.
    expect(await client('a').openPulls('coop-cloud', 'keycloak')).toHaveLength(5);
    expect(server.seen.at(-1)?.url).toBe('/api/v1/repos/coop-cloud/keycloak/pulls?state=open&page=1&limit=50');
  });

  it('lists open pulls, posts and lists comments', async () => {
    const [pull] = await client('a').openPulls('coop-cloud', 'custom-html');
    const posted = await client('m').comment('coop-cloud', 'custom-html', pull!.number, '!testme');
    expect(posted).toMatchObject({ body: '!testme', user: { login: 'mallory' } });
    expect(JSON.parse(server.seen.at(-1)!.body)).toEqual({ body: '!testme' });
    expect((await client('a').comments('coop-cloud', 'custom-html', 7)).map((comment) => comment.id)).toContain(posted.id);
  });

  it('names the token and the right it lacks when the forge will not let it create a repo (403), as a harness error', async () => {
    const refused = client('a').createOrgRepo('coop-cloud', 'accept-probe');
    await expect(refused).rejects.toBeInstanceOf(HarnessError);
    await expect(refused).rejects.toThrow(
      'the forge will not let the user of the token from a test token create coop-cloud/accept-probe (403): give that user a team in coop-cloud with "Create repositories", or create coop-cloud/accept-probe beforehand',
    );
  });

  it('tells a missing repo from an error', async () => {
    expect(await client('a').repoExists('coop-cloud', 'nope')).toBe(false);
    await expect(client('a').repoExists('coop-cloud', 'other')).rejects.toThrow(/answered 500/);
  });

  it('names where a refused token came from, as a harness error no retry cures', async () => {
    const refused = client('wrong').me();
    await expect(refused).rejects.toBeInstanceOf(HarnessError);
    await expect(refused).rejects.toMatchObject({ transient: false });
    await expect(client('wrong').me()).rejects.toThrow(/refused the token from a test token/);
  });

  it('reads a gateway answer as transient, and any other unexpected status as final', async () => {
    const busy = client('a').openPulls('coop-cloud', 'restarting');
    await expect(busy).rejects.toThrow(/answered 503 on GET \/repos\/coop-cloud\/restarting\/pulls/);
    await expect(busy).rejects.toMatchObject({ transient: true });
    await expect(client('a').repoExists('coop-cloud', 'other')).rejects.toMatchObject({ transient: false });
  });
});

describe('ForgeClient writes only where its scope allows, refusing before any request', () => {
  const writesSeen = () => server.seen.filter((request) => request.method !== 'GET').length;
  const tryEveryWrite = (forge: ForgeClient) => [
    forge.comment('coop-cloud', 'custom-html', 7, '!testme'),
    forge.createPull('coop-cloud', 'custom-html', { title: 't', head: 'h', base: 'main' }),
    forge.createOrgRepo('coop-cloud', 'accept-probe'),
  ];

  it('with no probe repo, sends no write at all, and says which setting to give', async () => {
    const before = writesSeen();
    const results = await Promise.allSettled(tryEveryWrite(client('a', realForgeWrites(undefined))));
    for (const result of results) {
      expect(result.status).toBe('rejected');
      const error = (result as PromiseRejectedResult).reason;
      expect(error).toBeInstanceOf(ForgeWriteRefused);
      expect(error).toBeInstanceOf(HarnessError);
      expect(error.message).toMatch(/ACCEPT_FORGE_PROBE_REPO=owner\/name/);
    }
    expect(writesSeen() - before, 'no request that writes left the harness').toBe(0);
  });

  it("with a probe repo, comments there, and refuses a recipe's real PRs and any new repo", async () => {
    const probe = client('a', realForgeWrites('coop-cloud/custom-html'));
    const before = writesSeen();
    await expect(probe.comment('coop-cloud', 'custom-html', 7, '!testme')).resolves.toMatchObject({ body: '!testme' });
    expect(writesSeen() - before).toBe(1);
    await expect(probe.comment('coop-cloud', 'keycloak', 7, '!testme')).rejects.toThrow(
      /a comment on coop-cloud\/keycloak is outside the probe repo coop-cloud\/custom-html \(ACCEPT_FORGE_PROBE_REPO\): the harness never writes to a recipe's real PRs/,
    );
    await expect(probe.createOrgRepo('coop-cloud', 'accept-probe')).rejects.toThrow(/would create a repo on the real forge/);
    expect(writesSeen() - before, 'only the probe comment was sent').toBe(1);
  });
});

describe('a branch holding one file (D4, D5)', () => {
  const forgeAs = (scope: ForgeWriteScope) => client('a', scope);
  const change = { branch: 'accept/x', from: 'main', path: 'tests/test_x.py', text: 'print("ok 1")\n', message: 'x' };

  it('is made from main with one commit, then found as it is by a rerun', async () => {
    const forge = forgeAs({ kind: 'probe', repo: 'coop-cloud/probe' });
    expect(await forge.branchWithFile('coop-cloud', 'probe', change)).toBe('made');
    expect(await forge.fileAt('coop-cloud', 'probe', change.path, change.branch)).toBe(change.text);
    expect(await forge.fileAt('coop-cloud', 'probe', change.path, 'main')).toBeUndefined();
    expect(await forge.branchWithFile('coop-cloud', 'probe', change)).toBe('found');
  });

  it('is an error when the branch holds other text there: a rerun must not test what it did not write', async () => {
    await expect(forgeAs({ kind: 'stand-in' }).branchWithFile('coop-cloud', 'probe', { ...change, text: 'print("other")\n' })).rejects.toThrow(
      /already has a branch accept\/x whose tests\/test_x.py is not the harness's/,
    );
  });

  it('is refused before any request outside the probe repo', async () => {
    const before = server.seen.length;
    await expect(
      forgeAs({ kind: 'probe', repo: 'coop-cloud/elsewhere' }).branchWithFile('coop-cloud', 'probe', { ...change, branch: 'accept/y' }),
    ).rejects.toThrow(ForgeWriteRefused);
    expect(server.seen.slice(before).filter((request) => request.method !== 'GET')).toEqual([]);
  });
});
