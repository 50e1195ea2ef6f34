import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HarnessError } from '../common/errors.ts';
import { fakeHttps, json, type FakeHttps } from '../https/testing/fake-https.ts';
import { DroneClient } from './index.ts';

let server: FakeHttps;
// Drone's own shape: stages and steps end with `stopped`.
const BUILD = {
  number: 3,
  status: 'success',
  params: { RECIPE: 'n8n', COMMENT_ID: '9' },
  created: 10,
  started: 11,
  finished: 20,
  stages: [
    {
      number: 1,
      name: 'install',
      status: 'success',
      exit_code: 0,
      started: 11,
      stopped: 15,
      steps: [{ number: 1, name: 'deploy', status: 'success', exit_code: 0, started: 11, stopped: 14 }],
    },
  ],
};

// 130 builds, newest first: two pages of 100, or six of 25.
const LISTED = Array.from({ length: 130 }, (_, i) => ({ ...BUILD, stages: undefined, number: 130 - i, created: 2000 - i }));
const listRequests = () => server.seen.filter((seen) => seen.url?.includes('/builds?')).map((seen) => seen.url);

beforeAll(async () => {
  server = await fakeHttps((request, response) => {
    if (request.url === '/') {
      response.writeHead(200, { 'Content-Type': 'text/html' });
      return response.end('<!doctype html><title>Drone</title>');
    }
    if (request.headers.authorization === 'Bearer reader-elsewhere') return json(response, 403, { message: 'Forbidden' });
    if (request.headers.authorization !== 'Bearer t') return json(response, 401, { message: 'Unauthorized' });
    const url = request.url ?? '';
    if (url === '/api/repos/coop-cloud/cc-ci/builds/4') return json(response, 503, { message: 'Service Unavailable' });
    if (url.startsWith('/api/repos/coop-cloud/cc-ci/builds?')) {
      // As Drone's handler: per_page outside 1..100 is 25, page 0 and 1 are the first, no Link header.
      const query = new URL(url, 'https://drone.lab.test').searchParams;
      let limit = Number(query.get('per_page'));
      if (!(limit >= 1 && limit <= 100)) limit = 25;
      const offset = Math.max(0, (Number(query.get('page')) || 1) - 1) * limit;
      return json(response, 200, LISTED.slice(offset, offset + limit));
    }
    if (url === '/api/repos/coop-cloud/cc-ci/builds/3') return json(response, 200, BUILD);
    if (url === '/api/repos/coop-cloud/cc-ci/builds/3/logs/1/1')
      return json(response, 200, [
        { pos: 0, out: 'one\n', time: 0 },
        { pos: 1, out: 'two\n', time: 1 },
      ]);
    return json(response, 404, { message: 'Not Found' });
  });
});
afterAll(() => server.close());

const client = (token = 't') =>
  new DroneClient(
    'https://drone.lab.test',
    'coop-cloud/cc-ci',
    token,
    { ca: server.ca, dial: () => ({ host: '127.0.0.1', port: server.port }) },
    'a test token',
  );

describe('DroneClient', () => {
  it('lists builds with their params, one page of 100 unless asked, sending `Authorization: Bearer …`', async () => {
    const builds = await client().builds();
    expect(builds).toHaveLength(100);
    expect(builds[0]).toMatchObject({ number: 130, params: { RECIPE: 'n8n' } });
    expect(server.seen.at(-1)).toMatchObject({ url: '/api/repos/coop-cloud/cc-ci/builds?page=1&per_page=100' });
    expect(server.seen.at(-1)?.headers.authorization).toBe('Bearer t');
  });

  it("pages on to the list's end, a short page, and never asks more than Drone's 100 a page (it would answer 25)", async () => {
    const before = listRequests().length;
    const builds = await client().builds({ atMost: 1000 });
    expect(builds.map((build) => build.number)).toEqual(LISTED.map((build) => build.number));
    expect(listRequests().slice(before)).toEqual([
      '/api/repos/coop-cloud/cc-ci/builds?page=1&per_page=100',
      '/api/repos/coop-cloud/cc-ci/builds?page=2&per_page=100',
    ]);
  });

  it('stops at the page where `enough` holds, and at `atMost`', async () => {
    let before = listRequests().length;
    const found = await client().builds({ atMost: 1000, enough: (listed) => listed.some((build) => build.number === 80) });
    expect(found.at(-1)?.number).toBe(31);
    expect(listRequests().length - before).toBe(1);
    before = listRequests().length;
    const few = await client().builds({ atMost: 30 });
    expect(few.map((build) => build.number)).toEqual(LISTED.slice(0, 30).map((build) => build.number));
    expect(listRequests().slice(before)).toEqual(['/api/repos/coop-cloud/cc-ci/builds?page=1&per_page=30']);
  });

  it("reads a build's stages and steps, with Drone's `stopped` as `finished`", async () => {
    const build = await client().build(3);
    expect(build.stages?.[0]).toMatchObject({ name: 'install', started: 11, finished: 15 });
    expect(build.stages?.[0]?.steps[0]).toMatchObject({ name: 'deploy', exit_code: 0, finished: 14 });
  });

  it('joins a step log, and has none for a step without one', async () => {
    expect(await client().log(3, 1, 1)).toBe('one\ntwo\n');
    expect(await client().log(3, 1, 2)).toBeUndefined();
  });

  it('fetches the UI without a token, and names a refused one', async () => {
    expect((await client('none').ui()).status).toBe(200);
    await expect(client('wrong').builds()).rejects.toBeInstanceOf(HarnessError);
    await expect(client('wrong').build(3)).rejects.toThrow(/refused the token from a test token/);
  });

  it('reads 401 and 403 as final, a gateway answer as transient', async () => {
    await expect(client('wrong').builds()).rejects.toMatchObject({ transient: false });
    const forbidden = client('reader-elsewhere').builds();
    await expect(forbidden).rejects.toThrow(/forbids GET \/repos\/coop-cloud\/cc-ci\/builds\?page=1&per_page=100 to the token from a test token \(403\)/);
    await expect(forbidden).rejects.toMatchObject({ transient: false });
    const busy = client().build(4);
    await expect(busy).rejects.toThrow(/answered 503 on GET \/repos\/coop-cloud\/cc-ci\/builds\/4/);
    await expect(busy).rejects.toMatchObject({ transient: true });
    // Any other unexpected answer is not retried either.
    await expect(client().build(9)).rejects.toMatchObject({ transient: false });
  });
});
