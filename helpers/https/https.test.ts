import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { HarnessError } from '../common/errors.ts';
import { turnUntil } from '../common/testing/event-loop.ts';
import { warningsDuring } from '../common/testing/warnings.ts';
import { dialDomainAt, httpsRequest, isRetryableStatus, jsonBody } from './index.ts';
import { startFakeSocks, type FakeSocks } from '../common/testing/fake-socks.ts';
import { fakeHttps, json, type FakeHttps } from './testing/fake-https.ts';

let server: FakeHttps;
let socks: FakeSocks;

/** /restarting answers 503 this many more times, then 200, as a service does while a rebuild restarts it. */
let restarting = 0;
/** How many 502s /down has given: each carries its number. */
let gatewayAnswers = 0;

beforeAll(async () => {
  server = await fakeHttps((request, response) => {
    if (request.url === '/restarting' && restarting-- > 0) return json(response, 503, { message: 'Service Unavailable' });
    if (request.url === '/down') return json(response, 502, { message: 'Bad Gateway', answer: ++gatewayAnswers });
    json(response, request.url === '/missing' ? 404 : 200, { path: request.url, body: request.body });
  });
  socks = await startFakeSocks();
});
afterAll(async () => {
  await server.close();
  await socks.close();
});

describe('httpsRequest', () => {
  const direct = () => ({ ca: server.ca, dial: dialDomainAt('lab.test', { host: '127.0.0.1', port: server.port }) });

  it('with settleMs, rides out a service that answers 503 while it restarts', async () => {
    restarting = 2;
    expect((await httpsRequest({ ...direct(), settleMs: 5000 }, 'https://lab.test/restarting')).status).toBe(200);
    restarting = 2;
    // Without it, the caller sees the gateway's answer at once.
    expect((await httpsRequest(direct(), 'https://lab.test/restarting')).status).toBe(503);
  });

  it('with settleMs, asks again every 500 ms through the window, then hands back the last gateway answer', async () => {
    gatewayAnswers = 0;
    // The wait's clock and sleeps are fake, so the window passes only as the test says; sockets stay real.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    try {
      let settled = false;
      const pending = httpsRequest({ ...direct(), settleMs: 1000 }, 'https://lab.test/down').finally(() => (settled = true));
      /** Until the n-th 502 came back and the wait sleeps before asking again. */
      const sleepingAfter = async (answers: number): Promise<void> => {
        await turnUntil(() => gatewayAnswers === answers && vi.getTimerCount() === 1);
        expect([gatewayAnswers, vi.getTimerCount(), settled], `after answer ${answers}: answers given, timers pending, settled`).toEqual([answers, 1, false]);
      };
      await sleepingAfter(1);
      await vi.advanceTimersByTimeAsync(500);
      await sleepingAfter(2);
      // At 1000 ms the third answer is the last: the window is over.
      await vi.advanceTimersByTimeAsync(500);
      const response = await pending;
      expect(response.status).toBe(502);
      expect(jsonBody(response)).toMatchObject({ answer: 3 });
      expect(gatewayAnswers).toBe(3);
    } finally {
      vi.useRealTimers();
    }
  });

  it('with settleMs, never retries a refusal of the proxy', async () => {
    // On a frozen clock a retry would sleep for ever: settling at all proves there was none.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    try {
      let outcome: { error: unknown } | undefined;
      // The handler is attached at once: a rejection left unhandled while the loop turns is an error of its own.
      void httpsRequest({ ...direct(), socks: 'socks5://127.0.0.1:9', settleMs: 30_000 }, 'https://lab.test/').then(
        () => (outcome = { error: undefined }),
        (error: unknown) => (outcome = { error }),
      );
      expect(await turnUntil(() => outcome !== undefined)).toBe(true);
      expect(outcome!.error).toMatchObject({ transient: false });
      expect(String((outcome!.error as Error).message)).toMatch(/the proxy refused the connection/);
    } finally {
      vi.useRealTimers();
    }
  });

  it('dials a name under the domain at the given endpoint, through the proxy, with that name as SNI and Host', async () => {
    const transport = { socks: socks.url, ca: server.ca, dial: dialDomainAt('lab.test', { host: '127.0.0.1', port: server.port }) };
    const response = await httpsRequest(transport, 'https://git.lab.test/api/v1/version?x=1');
    expect(response.status).toBe(200);
    expect(jsonBody(response)).toEqual({ path: '/api/v1/version?x=1', body: '' });
    expect(socks.destinations.at(-1)).toBe(`127.0.0.1:${server.port}`);
    expect(server.seen.at(-1)).toMatchObject({ host: 'git.lab.test', servername: 'git.lab.test' });
  });

  it('dials an IP address without SNI (no DEP0123) and still checks the certificate against that address', async () => {
    const byAddress = await fakeHttps((_request, response) => json(response, 200, { ok: true }), { ipSan: true });
    try {
      let response: Awaited<ReturnType<typeof httpsRequest>> | undefined;
      const warnings = await warningsDuring(async () => {
        response = await httpsRequest({ ca: byAddress.ca }, `https://127.0.0.1:${byAddress.port}/`);
      });
      expect(warnings).not.toContain('DEP0123');
      expect(response?.status).toBe(200);
      expect(byAddress.seen.at(-1)?.servername).toBeUndefined();
    } finally {
      await byAddress.close();
    }
    // A certificate without that address is refused as before: verification is by the address.
    await expect(httpsRequest({ ca: server.ca }, `https://127.0.0.1:${server.port}/`)).rejects.toThrow(
      /ERR_TLS_CERT_ALTNAME_INVALID|IP: 127\.0\.0\.1 is not in the cert's list/,
    );
  });

  it('sends a body and returns non-2xx answers instead of throwing', async () => {
    const transport = { ca: server.ca, dial: dialDomainAt('lab.test', { host: '127.0.0.1', port: server.port }) };
    const posted = await httpsRequest(transport, 'https://lab.test/hook', { method: 'POST', body: '{"a":1}', headers: { 'X-Test': 'yes' } });
    expect(jsonBody(posted)).toEqual({ path: '/hook', body: '{"a":1}' });
    expect(server.seen.at(-1)?.headers['x-test']).toBe('yes');
    expect((await httpsRequest(transport, 'https://lab.test/missing')).status).toBe(404);
  });

  it('dials other names by themselves', () => {
    const dial = dialDomainAt('lab.test', { host: '127.0.0.1', port: 1 });
    expect(dial('LAB.test')).toEqual({ host: '127.0.0.1', port: 1 });
    expect(dial('drone.lab.test')).toBeDefined();
    expect(dial('git.coopcloud.tech')).toBeUndefined();
    expect(dial('evillab.test')).toBeUndefined();
  });

  it('never trusts a certificate outside the given roots', async () => {
    const other = await fakeHttps((_request, response) => json(response, 200, {}));
    try {
      const transport = { ca: other.ca, dial: () => ({ host: '127.0.0.1', port: server.port }) };
      await expect(httpsRequest(transport, 'https://lab.test/')).rejects.toThrow(/self[- ]signed|unable to verify|DEPTH_ZERO|certificate/i);
    } finally {
      await other.close();
    }
  });

  it('refuses plain http and says when nobody answers', async () => {
    await expect(httpsRequest({ ca: server.ca }, 'http://lab.test/')).rejects.toBeInstanceOf(HarnessError);
    await expect(httpsRequest({ ca: server.ca, dial: () => ({ host: '127.0.0.1', port: 1 }) }, 'https://lab.test/')).rejects.toThrow(
      /^could not reach 127\.0\.0\.1:1: it refused the connection \(ECONNREFUSED\)/,
    );
  });

  describe('marks only the failures a retry may cure as transient', () => {
    const failure = (promise: Promise<unknown>) =>
      promise.then(
        () => expect.unreachable('it answered'),
        (error: unknown) => error as HarnessError,
      );
    // Port 1 on loopback: nothing listens there.
    const nowhere = () => ({ host: '127.0.0.1', port: 1 });

    it('a destination refusing, directly or through the proxy: transient', async () => {
      for (const transport of [
        { ca: server.ca, dial: nowhere },
        { socks: socks.url, ca: server.ca, dial: nowhere },
      ]) {
        const error = await failure(httpsRequest(transport, 'https://drone.lab.test/api/user'));
        expect(error).toBeInstanceOf(HarnessError);
        expect(error.transient, error.message).toBe(true);
      }
    });

    it('the proxy itself down: final, naming the proxy', async () => {
      const error = await failure(httpsRequest({ socks: 'socks5://127.0.0.1:1', ca: server.ca, dial: nowhere }, 'https://drone.lab.test/api/user'));
      expect(error.message).toContain('through SOCKS5 proxy');
      expect(error.message).toContain('ECONNREFUSED');
      expect(error.transient).toBe(false);
    });

    it('a certificate outside the roots: final', async () => {
      const other = await fakeHttps((_request, response) => json(response, 200, {}));
      try {
        const error = await failure(httpsRequest({ ca: other.ca, dial: () => ({ host: '127.0.0.1', port: server.port }) }, 'https://lab.test/'));
        expect(error.transient).toBe(false);
      } finally {
        await other.close();
      }
    });

    it('gateway statuses 502, 503 and 504 only', () => {
      expect([500, 502, 503, 504, 401, 403, 404].filter(isRetryableStatus)).toEqual([502, 503, 504]);
    });
  });

  it('names the body when it is not JSON', () => {
    expect(() => jsonBody({ url: 'https://lab.test/x', status: 200, headers: {}, body: Buffer.from('<html>'), text: '<html>' })).toThrow(/not JSON: <html>/);
  });
});
