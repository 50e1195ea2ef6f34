import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fakeHttps, json, type FakeHttps } from '../https/testing/fake-https.ts';
import { Apex, signBody, svgProblem } from './index.ts';

const BADGE =
  '<svg xmlns="http://www.w3.org/2000/svg" width="90" height="20"><title>n8n: passing</title><rect width="90" height="20"/><g><text x="5" y="14">passing</text></g></svg>';

describe('svgProblem', () => {
  it('accepts a well-formed badge, with or without an XML declaration', () => {
    expect(svgProblem(BADGE)).toBeUndefined();
    expect(svgProblem(`<?xml version="1.0"?>\n${BADGE}\n`)).toBeUndefined();
  });

  it.each([
    ['<html><body>no badge</body></html>', /does not start with an <svg>/],
    ['<svg width="1"></svg>', /namespace/],
    [BADGE.replace('</g>', ''), /closes <g>|never closed/],
    [`${BADGE}<svg xmlns="http://www.w3.org/2000/svg"></svg>`, /after the root/],
    ['<svg xmlns="http://www.w3.org/2000/svg"><text>a < b</text></svg>', /malformed/],
  ])('rejects %s', (text, reason) => {
    expect(svgProblem(text)).toMatch(reason);
  });
});

describe('Apex', () => {
  let server: FakeHttps;
  beforeAll(async () => {
    server = await fakeHttps((request, response) => json(response, request.headers['x-gitea-signature'] ? 200 : 401, {}));
  });
  afterAll(() => server.close());

  it('signs as Gitea does: hex HMAC-SHA256 of the body', () => {
    expect(signBody('{"a":1}', 'k')).toBe(createHmac('sha256', 'k').update('{"a":1}').digest('hex'));
  });

  it('posts /hook with the event and the signature, or without one', async () => {
    const apex = new Apex('https://lab.test', { ca: server.ca, dial: () => ({ host: '127.0.0.1', port: server.port }) });
    expect((await apex.hook('{}', 'abc', 'push', 'd-1')).status).toBe(200);
    expect(server.seen.at(-1)?.headers).toMatchObject({ 'x-gitea-event': 'push', 'x-gitea-delivery': 'd-1', 'x-gitea-signature': 'abc' });
    expect((await apex.hook('{}', undefined, 'push')).status).toBe(401);
    expect(server.seen.at(-1)?.url).toBe('/hook');
  });
});
