import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HarnessError } from '../common/errors.ts';
import { fakeHttps, json, type FakeHttps } from '../https/test-fixtures.ts';
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
  stages: [{ number: 1, name: 'install', status: 'success', exit_code: 0, started: 11, stopped: 15, steps: [{ number: 1, name: 'deploy', status: 'success', exit_code: 0, started: 11, stopped: 14 }] }],
};

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
    if (url.startsWith('/api/repos/coop-cloud/cc-ci/builds?')) return json(response, 200, [{ ...BUILD, stages: undefined }]);
    if (url === '/api/repos/coop-cloud/cc-ci/builds/3') return json(response, 200, BUILD);
    if (url === '/api/repos/coop-cloud/cc-ci/builds/3/logs/1/1') return json(response, 200, [{ pos: 0, out: 'one\n', time: 0 }, { pos: 1, out: 'two\n', time: 1 }]);
    return json(response, 404, { message: 'Not Found' });
  });
});
afterAll(() => server.close());

const client = (token = 't') => new DroneClient('https://drone.lab.test', 'coop-cloud/cc-ci', token, { ca: server.ca, dial: () => ({ host: '127.0.0.1', port: server.port }) }, 'a test token');

describe('DroneClient', () => {
  it('lists builds with their params, sending `Authorization: Bearer …`', async () => {
    const [build] = await client().builds(10);
    expect(build).toMatchObject({ number: 3, params: { RECIPE: 'n8n' } });
    expect(server.seen.at(-1)).toMatchObject({ url: '/api/repos/coop-cloud/cc-ci/builds?page=1&per_page=10' });
    expect(server.seen.at(-1)?.headers.authorization).toBe('Bearer t');
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
    await expect(forbidden).rejects.toThrow(/forbids GET \/repos\/coop-cloud\/cc-ci\/builds\?page=1&per_page=50 to the token from a test token \(403\)/);
    await expect(forbidden).rejects.toMatchObject({ transient: false });
    const busy = client().build(4);
    await expect(busy).rejects.toThrow(/answered 503 on GET \/repos\/coop-cloud\/cc-ci\/builds\/4/);
    await expect(busy).rejects.toMatchObject({ transient: true });
    // Any other unexpected answer is not retried either.
    await expect(client().build(9)).rejects.toMatchObject({ transient: false });
  });
});
