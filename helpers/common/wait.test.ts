import { afterEach, describe, expect, it } from 'vitest';
import { HarnessError } from './errors.ts';
import { forgetSecrets, registerSecret } from './redact.ts';
import { WaitTimeoutError, waitFor } from './wait.ts';

afterEach(() => forgetSecrets());

/** Runs waitFor and returns the WaitTimeoutError it rejects with. */
async function timeout(description: string, probe: () => Promise<unknown>, timeoutMs = 120): Promise<WaitTimeoutError> {
  const error = await waitFor(description, probe as () => Promise<false>, { timeoutMs, intervalMs: 10 }).then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(WaitTimeoutError);
  expect(error).toBeInstanceOf(HarnessError);
  return error as WaitTimeoutError;
}

describe('waitFor', () => {
  it("resolves with the probe's first truthy value", async () => {
    let calls = 0;
    const value = await waitFor('the third call', async () => (++calls >= 3 ? { port: 8443 } : false), { timeoutMs: 5000, intervalMs: 5 });
    expect(value).toEqual({ port: 8443 });
    expect(calls).toBe(3);
  });

  it('keeps waiting through {done:false} and thrown errors', async () => {
    let calls = 0;
    const value = await waitFor(
      'recovery',
      async () => {
        calls++;
        if (calls === 1) throw new Error('refused');
        if (calls === 2) return { done: false as const, saw: 'starting' };
        return 'running';
      },
      { timeoutMs: 5000, intervalMs: 5 },
    );
    expect(value).toBe('running');
  });

  it('times out naming the description, the waited duration and the last value returned', async () => {
    const error = await timeout('the API to answer', async () => 0);
    expect(error.message).toMatch(/^timed out after \d+ ms waiting for the API to answer; last saw: 0$/);
    const waited = Number(/after (\d+) ms/.exec(error.message)![1]);
    expect(waited).toBeGreaterThanOrEqual(120);
    expect(error.waitedMs).toBeGreaterThanOrEqual(120);
    expect(error.description).toBe('the API to answer');
    expect(error.verdict).toBe('ERROR');
  });

  it('reports what a {done:false, saw} probe saw last', async () => {
    let calls = 0;
    const error = await timeout('systemd to finish booting', async () => ({ done: false, saw: `starting (${++calls})` }));
    expect(error.message).toContain('waiting for systemd to finish booting');
    expect(error.message).toContain(`last saw: "starting (${calls})"`);
    expect(error.lastSeen).toBe(`"starting (${calls})"`);
  });

  it('reports structured {saw} values as JSON', async () => {
    const error = await timeout('units to settle', async () => ({ done: false, saw: { failed: ['nginx.service'] } }));
    expect(error.message).toContain('last saw: {"failed":["nginx.service"]}');
  });

  it('reports the message of the last error thrown', async () => {
    const error = await timeout('the socket', async () => {
      throw new Error('connect ECONNREFUSED 127.0.0.1:8443');
    });
    expect(error.message).toMatch(/timed out after \d+ ms waiting for the socket; last saw: error: connect ECONNREFUSED 127\.0\.0\.1:8443$/);
  });

  it('shortens a long last value', async () => {
    const error = await timeout('a quiet log', async () => ({ done: false, saw: 'x'.repeat(1000) }));
    expect(error.lastSeen.length).toBeLessThan(320);
    expect(error.lastSeen).toContain('…');
  });

  it('still calls the probe once when the timeout is zero', async () => {
    let calls = 0;
    await timeout('nothing', async () => (calls++, false), 0);
    expect(calls).toBe(1);
  });

  describe('never shows a registered secret', () => {
    const secret = 'drone-rpc-secret-7f3a9c';
    const probes: [string, () => Promise<unknown>][] = [
      ['in a {saw}', async () => ({ done: false, saw: `env DRONE_RPC_SECRET=${secret}` })],
      ['in a structured {saw}', async () => ({ done: false, saw: { env: { DRONE_RPC_SECRET: secret } } })],
      [
        'in a thrown error',
        async () => {
          throw new Error(`bad token ${secret}`);
        },
      ],
    ];

    it.each(probes)('%s', async (_how, probe) => {
      registerSecret(secret);
      const error = await timeout('drone to accept the runner', probe);
      expect(error.message).not.toContain(secret);
      expect(error.lastSeen).not.toContain(secret);
      expect(error.message).toContain('[REDACTED]');
    });

    it('when the secret spans lines (JSON-escaped in the message)', async () => {
      const multiline = 'user: ci-bot\npassword: hunter2hunter2';
      registerSecret(multiline);
      const error = await timeout('the registry login', async () => ({ done: false, saw: `config:\n${multiline}\n` }));
      expect(error.message).not.toContain('hunter2hunter2');
    });

    it('when the last value is cut short in the middle of the secret', async () => {
      const long = 'S'.repeat(6) + 'ecret-token-0123456789abcdef0123456789';
      registerSecret(long);
      const error = await timeout('a long line', async () => ({ done: false, saw: `${'.'.repeat(290)}${long}` }));
      expect(error.message).not.toContain(long.slice(0, 10));
    });

    it('in the description', async () => {
      registerSecret(secret);
      const error = await timeout(`a login with ${secret}`, async () => false);
      expect(error.message).not.toContain(secret);
    });
  });
});
