import { afterEach, describe, expect, it, vi } from 'vitest';
import { ConfigError, HarnessError, SystemFailure } from './errors.ts';
import { forgetSecrets, registerSecret } from './redact.ts';
import { StateTimeoutError, WaitTimeoutError, waitFor, type WaitOptions } from './wait.ts';

afterEach(() => {
  forgetSecrets();
  vi.useRealTimers();
});

/** What waitFor rejects with (undefined if it resolved). */
function rejection(description: string, probe: () => Promise<unknown>, options: WaitOptions): Promise<unknown> {
  return waitFor(description, probe as () => Promise<false>, options).then(
    () => undefined,
    (caught: unknown) => caught,
  );
}

/** Runs waitFor and returns the WaitTimeoutError it rejects with. */
async function timeout(description: string, probe: () => Promise<unknown>, timeoutMs = 120): Promise<WaitTimeoutError> {
  const error = await rejection(description, probe, { timeoutMs, intervalMs: 10 });
  expect(error).toBeInstanceOf(WaitTimeoutError);
  expect(error).toBeInstanceOf(HarnessError);
  return error as WaitTimeoutError;
}

/** A socket error as Node raises it: transient by its code. */
function refused(message = 'connect ECONNREFUSED 127.0.0.1:8443'): Error {
  return Object.assign(new Error(message), { code: 'ECONNREFUSED' });
}

describe('waitFor', () => {
  it("resolves with the probe's first truthy value", async () => {
    let calls = 0;
    const value = await waitFor('the third call', async () => (++calls >= 3 ? { port: 8443 } : false), { timeoutMs: 5000, intervalMs: 5 });
    expect(value).toEqual({ port: 8443 });
    expect(calls).toBe(3);
  });

  it('keeps waiting through {done:false} and transient errors', async () => {
    let calls = 0;
    const value = await waitFor(
      'recovery',
      async () => {
        calls++;
        if (calls === 1) throw refused();
        if (calls === 2) throw new HarnessError('Drone answered 503', { transient: true });
        if (calls === 3) return { done: false as const, saw: 'starting' };
        return 'running';
      },
      { timeoutMs: 5000, intervalMs: 5 },
    );
    expect(value).toBe('running');
  });

  it('with maxIntervalMs, pauses half again as long each time, up to the cap, and still keeps its deadline', async () => {
    vi.useFakeTimers();
    const calledAt: number[] = [];
    const pending = rejection(
      'a long build',
      async () => {
        calledAt.push(Date.now());
        return false;
      },
      { timeoutMs: 10_000, intervalMs: 400, maxIntervalMs: 2_000 },
    );
    await vi.advanceTimersByTimeAsync(10_000);
    expect(await pending).toBeInstanceOf(WaitTimeoutError);
    const pauses = calledAt.slice(1).map((at, index) => at - calledAt[index]!);
    expect(pauses.slice(0, 6)).toEqual([400, 600, 900, 1350, 2000, 2000]);
    // The last pause is cut to the deadline, and the last probe runs at it.
    expect(calledAt.at(-1)! - calledAt[0]!).toBe(10_000);
  });

  it('times out naming the description, the waited duration and the last value returned', async () => {
    // The fake clock moves only as the test says: the wait must give up exactly at its deadline.
    vi.useFakeTimers();
    const pending = timeout('the API to answer', async () => 0);
    await vi.advanceTimersByTimeAsync(120);
    const error = await pending;
    expect(error.message).toBe('timed out after 120 ms waiting for the API to answer; last saw: 0');
    expect(error.waitedMs).toBe(120);
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

  it('reports the message of the last transient error thrown', async () => {
    const error = await timeout('the socket', async () => {
      throw refused();
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
    await timeout(
      'nothing',
      async () => {
        calls++;
        return false;
      },
      0,
    );
    expect(calls).toBe(1);
  });

  describe("unbounded, with a heartbeat: a turn behind another process's lease", () => {
    it('waits past any deadline until the probe answers, saying every everyMs how long it has waited', async () => {
      vi.useFakeTimers();
      let free = false;
      const said: number[] = [];
      let value: string | undefined;
      const pending = waitFor('a free lab worker', async () => free && 'terraform-ci-2', {
        timeoutMs: 'unbounded',
        intervalMs: 250,
        heartbeat: { everyMs: 60_000, say: (waitedMs) => void said.push(waitedMs) },
      }).then((got) => (value = got));
      // An hour, and no timeout: only the probe ends it.
      await vi.advanceTimersByTimeAsync(3_600_000);
      expect(value).toBeUndefined();
      expect(said).toHaveLength(60);
      expect(said.slice(0, 3)).toEqual([60_000, 120_000, 180_000]);
      free = true;
      await vi.advanceTimersByTimeAsync(250);
      await pending;
      expect(value).toBe('terraform-ci-2');
      expect(said).toHaveLength(60);
    });

    it('still ends at once on an error a retry cannot cure', async () => {
      vi.useFakeTimers();
      let calls = 0;
      const outcome = rejection(
        'a lock',
        async () => {
          if (++calls < 3) return false;
          throw Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
        },
        { timeoutMs: 'unbounded', intervalMs: 10 },
      );
      await vi.advanceTimersByTimeAsync(20);
      expect(((await outcome) as Error).message).toBe('EACCES: permission denied');
      expect(calls).toBe(3);
    });

    it('awaits the heartbeat before the next probe, and ends on an error it throws', async () => {
      const events: string[] = [];
      const error = await rejection(
        'a lock held by pid 7',
        async () => {
          events.push('probe');
          return false;
        },
        {
          timeoutMs: 'unbounded',
          intervalMs: 1,
          heartbeat: {
            everyMs: 0,
            say: async () => {
              events.push('heartbeat');
              await new Promise((resolve) => setTimeout(resolve, 5));
              if (events.length >= 4) throw new Error('stderr closed');
              events.push('said');
            },
          },
        },
      );
      expect((error as Error).message).toBe('stderr closed');
      expect(events).toEqual(['probe', 'heartbeat', 'said', 'probe', 'heartbeat']);
    });

    it('with a deadline too: a heartbeat until it, then the timeout as ever', async () => {
      vi.useFakeTimers();
      const said: number[] = [];
      const pending = rejection('a port', async () => false, {
        timeoutMs: 1_000,
        intervalMs: 100,
        heartbeat: { everyMs: 300, say: (waitedMs) => void said.push(waitedMs) },
      });
      await vi.advanceTimersByTimeAsync(1_000);
      expect(await pending).toBeInstanceOf(WaitTimeoutError);
      expect(said).toEqual([300, 600, 900]);
    });
  });

  describe('ends at once on an error a retry cannot cure, rethrowing it as it is', () => {
    const fatal: [string, () => unknown][] = [
      ['a HarnessError', () => new HarnessError('Drone refused the token (401)')],
      ['a HarnessError subclass', () => new ConfigError('ACCEPT_SOCKS', 'not a socks5:// URL')],
      ['a SystemFailure the probe saw', () => new SystemFailure('ccci-drone.service failed')],
      ['a TypeError (a harness bug)', () => new TypeError("Cannot read properties of undefined (reading 'status')")],
      ['a plain Error with no transient code', () => new Error('certificate has expired')],
      [
        'an assertion error',
        () => {
          try {
            expect(1, 'one is two').toBe(2);
          } catch (caught) {
            return caught;
          }
        },
      ],
    ];

    it.each(fatal)('%s', async (_what, make) => {
      // A frozen clock: the wait can only have settled if it never slept, let alone reached its deadline.
      vi.useFakeTimers();
      const thrown = make();
      let calls = 0;
      let settled = false;
      const outcome = rejection(
        'something that will not come',
        async () => {
          calls++;
          throw thrown;
        },
        { timeoutMs: 60_000, intervalMs: 10, observes: 'system' },
      ).finally(() => (settled = true));
      // Runs pending promise callbacks only: the 10 ms retry sleep is not due yet.
      await vi.advanceTimersByTimeAsync(0);
      expect(settled).toBe(true);
      expect(vi.getTimerCount()).toBe(0);
      expect(await outcome).toBe(thrown);
      expect(calls).toBe(1);
    });

    it('after answers and transient errors too', async () => {
      let calls = 0;
      const error = await rejection(
        'a build',
        async () => {
          calls++;
          if (calls === 1) return { done: false as const, saw: 'running' };
          if (calls === 2) throw refused();
          throw new SystemFailure('build #7 was killed');
        },
        { timeoutMs: 60_000, intervalMs: 5, observes: 'system' },
      );
      expect(error).toBeInstanceOf(SystemFailure);
      expect((error as Error).message).toBe('build #7 was killed');
      expect(calls).toBe(3);
    });
  });

  describe("observing the system's state", () => {
    it('is a FAIL carrying the last state when it answered until the deadline', async () => {
      vi.useFakeTimers();
      let calls = 0;
      const pending = rejection('build #7 to finish', async () => ({ done: false as const, saw: `running (${++calls})` }), {
        timeoutMs: 80,
        intervalMs: 10,
        observes: 'system',
      });
      await vi.advanceTimersByTimeAsync(80);
      const error = await pending;
      expect(error).toBeInstanceOf(StateTimeoutError);
      expect(error).toBeInstanceOf(SystemFailure);
      expect(error).not.toBeInstanceOf(HarnessError);
      const state = error as StateTimeoutError;
      expect(state.verdict).toBe('FAIL');
      expect(state.description).toBe('build #7 to finish');
      expect(state.waitedMs).toBe(80);
      // A probe every 10 ms from 0 to 80 ms.
      expect(calls).toBe(9);
      expect(state.lastSeen).toBe('"running (9)"');
      expect(state).toMatchObject({ answers: 9, failures: 0, lastProbeFailed: false });
      expect(state.message).toBe('timed out after 80 ms waiting for build #7 to finish; last saw: "running (9)"');
    });

    it('keeps the last state, not the last error, and counts the failures', async () => {
      let calls = 0;
      const error = await rejection(
        'units to settle',
        async () => {
          if (++calls <= 2) return { done: false as const, saw: 'activating' };
          throw new HarnessError('systemctl: connection reset', { transient: true });
        },
        { timeoutMs: 80, intervalMs: 10, observes: 'system' },
      );
      expect(error).toBeInstanceOf(StateTimeoutError);
      const state = error as StateTimeoutError;
      expect(state.lastSeen).toBe('"activating"');
      expect(state).toMatchObject({ answers: 2, failures: calls - 2, lastFailure: 'systemctl: connection reset', lastProbeFailed: true });
      expect(state.message).toContain(`last saw: "activating" (${calls - 2} of ${calls} probes failed, the last with: systemctl: connection reset)`);
    });

    it('is still an ERROR naming the last failure when no probe ever answered', async () => {
      const error = await rejection(
        'build #7 to finish',
        async () => {
          throw new HarnessError('Drone answered 503', { transient: true });
        },
        { timeoutMs: 60, intervalMs: 10, observes: 'system' },
      );
      expect(error).toBeInstanceOf(WaitTimeoutError);
      expect(error).not.toBeInstanceOf(StateTimeoutError);
      expect((error as Error).message).toMatch(/last saw: error: Drone answered 503$/);
    });

    it('without the option, a timeout after answers stays an ERROR', async () => {
      const error = await timeout('a port', async () => ({ done: false, saw: 'closed' }), 40);
      expect(error).not.toBeInstanceOf(SystemFailure);
    });

    it('never shows a registered secret in the failure it counts', async () => {
      const secret = 'drone-token-5e2b7c';
      registerSecret(secret);
      let calls = 0;
      const error = (await rejection(
        'a build',
        async () => {
          if (++calls === 1) return { done: false as const, saw: 'running' };
          throw new HarnessError(`503 for Bearer ${secret}`, { transient: true });
        },
        // Long enough for a second call on a loaded machine: the failure must have been seen to be checked.
        { timeoutMs: 400, intervalMs: 10, observes: 'system' },
      )) as StateTimeoutError;
      expect(error.message).not.toContain(secret);
      expect(error.lastFailure, 'no failure was seen before the deadline').toBeDefined();
      expect(error.lastFailure).not.toContain(secret);
    });
  });

  describe('never shows a registered secret', () => {
    const secret = 'drone-rpc-secret-7f3a9c';
    const probes: [string, () => Promise<unknown>][] = [
      ['in a {saw}', async () => ({ done: false, saw: `env DRONE_RPC_SECRET=${secret}` })],
      ['in a structured {saw}', async () => ({ done: false, saw: { env: { DRONE_RPC_SECRET: secret } } })],
      [
        'in a thrown error',
        async () => {
          throw new HarnessError(`bad gateway for ${secret}`, { transient: true });
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
      const long = `${'S'.repeat(6)}ecret-token-0123456789abcdef0123456789`;
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
