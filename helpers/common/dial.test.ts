import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DialError, dial, parseSocksUrl, tlsPeer } from './dial.ts';
import { ConfigError, isTransient } from './errors.ts';
import { turnUntil } from './testing/event-loop.ts';
import { startFakeSocks, type FakeSocks } from './testing/fake-socks.ts';
import { rejectionOf } from './testing/rejection.ts';

let socks: FakeSocks;
let echo: net.Server;
let echoPort: number;

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as net.AddressInfo).port;
}

async function closedPort(): Promise<number> {
  const server = net.createServer();
  const port = await listen(server);
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const rejection = (promise: Promise<unknown>): Promise<DialError> => rejectionOf(promise, DialError);

/** Sends a line and reads the echo back, proving the stream reaches the echo server. */
async function roundTrip(socket: net.Socket): Promise<string> {
  const answer = new Promise<string>((resolve) => socket.once('data', (chunk: Buffer) => resolve(chunk.toString())));
  socket.write('ping');
  const text = await answer;
  socket.destroy();
  return text;
}

beforeAll(async () => {
  echo = net.createServer((socket) => socket.pipe(socket));
  [echoPort, socks] = await Promise.all([listen(echo), startFakeSocks()]);
});

afterAll(async () => {
  await Promise.all([socks?.close(), new Promise((resolve) => echo?.close(resolve))]);
});

describe('dial', () => {
  it('connects directly', async () => {
    expect(await roundTrip(await dial({ host: '127.0.0.1', port: echoPort, timeoutMs: 2000 }))).toBe('ping');
  });

  it('connects through the proxy, which is asked for the target', async () => {
    const before = socks.destinations.length;
    const socket = await dial({ host: '127.0.0.1', port: echoPort, socks: socks.url, timeoutMs: 2000 });
    expect(await roundTrip(socket)).toBe('ping');
    expect(socks.destinations.slice(before)).toEqual([`127.0.0.1:${echoPort}`]);
  });

  it('names the target and calls a refused direct connection transient', async () => {
    const port = await closedPort();
    const error = await rejection(dial({ host: '127.0.0.1', port, what: 'SSH at 127.0.0.1', targetSetting: 'MY_HOST', timeoutMs: 2000 }));
    expect(error.message).toBe(
      `could not reach SSH at 127.0.0.1 (MY_HOST): it refused the connection (ECONNREFUSED); is the service running and the port right?`,
    );
    expect([error.fault, error.target, error.setting, error.transient]).toEqual(['target-refused', `127.0.0.1:${port}`, 'MY_HOST', true]);
    expect(isTransient(error)).toBe(true);
  });

  it('names the proxy and its setting when the proxy refuses, and calls it final: no wait brings a dead proxy back', async () => {
    const port = await closedPort();
    const error = await rejection(
      dial({ host: 'git.lab.test', port: 22, socks: `socks5://u:secret@127.0.0.1:${port}`, socksSetting: 'MY_SOCKS', timeoutMs: 2000 }),
    );
    expect(error.message).toBe(
      `could not reach git.lab.test:22 through SOCKS5 proxy socks5://127.0.0.1:${port} (MY_SOCKS): the proxy refused the connection (ECONNREFUSED); is it running?`,
    );
    expect([error.fault, error.proxy, error.setting, error.transient]).toEqual(['proxy-refused', `socks5://127.0.0.1:${port}`, 'MY_SOCKS', false]);
  });

  it('gives the SOCKS reply code and its meaning when the proxy cannot reach the target', async () => {
    const port = await closedPort();
    const error = await rejection(dial({ host: '127.0.0.1', port, socks: socks.url, timeoutMs: 2000 }));
    expect(error.message).toBe(
      `could not reach 127.0.0.1:${port} through SOCKS5 proxy ${socks.url} (ACCEPT_SOCKS): ` +
        'the proxy could not connect to the target (SOCKS reply 5, connection refused by the target)',
    );
    expect([error.fault, error.transient]).toEqual(['target-refused', true]);
  });

  it('calls a SOCKS reply no retry can cure final', async () => {
    // The fake proxy answers 8 (address type not supported) for IPv6 destinations.
    const error = await rejection(dial({ host: '::1', port: 22, socks: socks.url, timeoutMs: 2000 }));
    expect(error.message).toMatch(
      /could not reach \[::1\]:22 through .*: the proxy could not connect to the target \(SOCKS reply 8, address type not supported\)$/,
    );
    expect([error.fault, error.setting, error.transient]).toEqual(['socks-reply', 'ACCEPT_SOCKS', false]);
  });

  it('times out after the one budget, shared by the connect and the handshake, when the proxy never answers', async () => {
    let greeted!: () => void;
    const greeting = new Promise<void>((resolve) => (greeted = resolve));
    const accepted: net.Socket[] = [];
    const silent = net.createServer((socket) => accepted.push(socket.once('data', () => greeted()).resume()));
    const port = await listen(silent);
    // Only the clock dial reads is fake; sockets stay real.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    try {
      let settled = false;
      const pending = rejection(dial({ host: '127.0.0.1', port: 22, socks: `socks5://127.0.0.1:${port}`, timeoutMs: 300 })).finally(() => (settled = true));
      // 100 ms of the budget go by while the TCP connect is under way.
      vi.advanceTimersByTime(100);
      await greeting;
      // The proxy has the SOCKS5 greeting and will never answer: only the 200 ms left may pass.
      await vi.advanceTimersByTimeAsync(199);
      expect(await turnUntil(() => settled)).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      expect(await turnUntil(() => settled)).toBe(true);
      const error = await pending;
      expect(error.message).toBe(
        `could not reach 127.0.0.1:22 through SOCKS5 proxy socks5://127.0.0.1:${port} (ACCEPT_SOCKS): timed out after 300 ms in the SOCKS5 handshake`,
      );
      expect([error.fault, error.transient]).toEqual(['timeout', false]);
    } finally {
      vi.useRealTimers();
      for (const socket of accepted) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it('calls an authentication refusal final and names the setting', async () => {
    // Accepts none of the offered methods (RFC 1928: X'FF').
    const picky = net.createServer((socket) => socket.once('data', () => socket.end(Buffer.from([5, 0xff]))));
    const port = await listen(picky);
    try {
      const error = await rejection(dial({ host: '127.0.0.1', port: 22, socks: `socks5://127.0.0.1:${port}`, timeoutMs: 2000 }));
      expect(error.message).toMatch(/: the proxy refused our authentication \(.*\); check the user and password in ACCEPT_SOCKS$/);
      expect([error.fault, error.transient]).toEqual(['proxy-auth', false]);
    } finally {
      await new Promise((resolve) => picky.close(resolve));
    }
  });

  it('refuses a proxy URL that is not socks5://, naming the setting, as final', async () => {
    const error = await rejection(dial({ host: '127.0.0.1', port: 22, socks: 'http://127.0.0.1:3128', socksSetting: 'MY_SOCKS', timeoutMs: 2000 }));
    expect(error.message).toBe('could not reach 127.0.0.1:22: MY_SOCKS: SOCKS proxy must be socks5://host:port; got protocol http:');
    expect([error.fault, error.setting, error.transient]).toEqual(['proxy-url', 'MY_SOCKS', false]);
  });

  it('reports an unresolvable name as DNS, not transient', async () => {
    const error = await rejection(dial({ host: 'no-such-host.invalid', port: 22, timeoutMs: 5000 }));
    expect(error.message).toMatch(/^could not reach no-such-host\.invalid:22: cannot resolve no-such-host\.invalid \((ENOTFOUND|EAI_AGAIN)\)$/);
    expect(error.fault).toBe('dns');
  });
});

describe('parseSocksUrl', () => {
  it('reads host, port and credentials, and keeps credentials out of the label', () => {
    expect(parseSocksUrl('socks5h://us%40er:p%3Ass@[::1]:1055')).toEqual({
      host: '::1',
      port: 1055,
      userId: 'us@er',
      password: 'p:ss',
      label: 'socks5h://[::1]:1055',
    });
    expect(parseSocksUrl('socks5://proxy.test').port).toBe(1080);
  });

  it('names the setting for something that is not a URL', () => {
    expect(() => parseSocksUrl('not a url', 'MY_SOCKS')).toThrow(ConfigError);
    expect(() => parseSocksUrl('not a url', 'MY_SOCKS')).toThrow(/^MY_SOCKS: SOCKS proxy "not a url" is not a URL/);
  });
});

describe('tlsPeer', () => {
  it('sends SNI for a DNS name only; an address is checked by host, without servername', () => {
    expect(tlsPeer('git.lab.test')).toEqual({ host: 'git.lab.test', servername: 'git.lab.test' });
    expect(tlsPeer('127.0.0.1')).toEqual({ host: '127.0.0.1' });
    expect(tlsPeer('::1')).toEqual({ host: '::1' });
    // A URL's hostname keeps the brackets of an IPv6 address.
    expect(tlsPeer('[fd42::1]')).toEqual({ host: 'fd42::1' });
    expect('servername' in tlsPeer('10.0.0.5')).toBe(false);
  });
});
