import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HarnessError } from '../common/errors.ts';
import { fakeHttps, json, type FakeHttps } from '../https/test-fixtures.ts';
import { ForgeClient } from './index.ts';

// A fake Gitea: alice (token a) is in coop-cloud, mallory (token m) is not.
const TOKENS: Record<string, string> = { 'token a': 'alice', 'token m': 'mallory' };
const comments: Array<{ id: number; body: string; user: { id: number; login: string }; created_at: string }> = [];
let server: FakeHttps;

beforeAll(async () => {
  server = await fakeHttps((request, response) => {
    const login = TOKENS[request.headers.authorization ?? ''];
    if (!login) return json(response, 401, { message: 'token is required' });
    const url = request.url ?? '';
    if (url === '/api/v1/user') return json(response, 200, { id: 1, login });
    const member = /^\/api\/v1\/orgs\/coop-cloud\/members\/(\w+)$/.exec(url);
    if (member) return json(response, member[1] === 'alice' ? 204 : 404);
    if (url === '/api/v1/repos/coop-cloud/custom-html/pulls?state=open') return json(response, 200, [{ number: 7, title: 'Bump', state: 'open' }]);
    if (url === '/api/v1/repos/coop-cloud/custom-html/issues/7/comments') {
      if (request.method === 'POST') {
        const comment = { id: 100 + comments.length, body: JSON.parse(request.body).body, user: { id: 1, login }, created_at: '2026-01-01T00:00:00Z' };
        comments.push(comment);
        return json(response, 201, comment);
      }
      return json(response, 200, comments);
    }
    if (url === '/api/v1/repos/coop-cloud/nope') return json(response, 404, { message: 'repository does not exist' });
    if (url === '/api/v1/repos/coop-cloud/restarting/pulls?state=open') return json(response, 503, { message: 'Service Unavailable' });
    return json(response, 500, { message: 'boom' });
  });
});
afterAll(() => server.close());

const client = (token: string) => new ForgeClient('https://git.lab.test', token, { ca: server.ca, dial: () => ({ host: '127.0.0.1', port: server.port }) }, 'a test token');

describe('ForgeClient', () => {
  it('sends `Authorization: token …` and reads the user', async () => {
    expect((await client('a').me()).login).toBe('alice');
    expect(server.seen.at(-1)?.headers.authorization).toBe('token a');
  });

  it('reads membership from 204 and 404', async () => {
    expect(await client('a').isMember('coop-cloud', 'alice')).toBe(true);
    expect(await client('a').isMember('coop-cloud', 'mallory')).toBe(false);
  });

  it('lists open pulls, posts and lists comments', async () => {
    const [pull] = await client('a').openPulls('coop-cloud', 'custom-html');
    const posted = await client('m').comment('coop-cloud', 'custom-html', pull!.number, '!testme');
    expect(posted).toMatchObject({ body: '!testme', user: { login: 'mallory' } });
    expect(JSON.parse(server.seen.at(-1)!.body)).toEqual({ body: '!testme' });
    expect((await client('a').comments('coop-cloud', 'custom-html', 7)).map((comment) => comment.id)).toContain(posted.id);
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
