import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Breakers } from '../../src/breaker/breakers.js';
import { createClient, type LosslessClient } from '../../src/client.js';
import { instance, seeded, seedOf, startServer, stopServer, TestRegistry, type TestServer, until } from '../helpers.js';

const ORIGIN = 'http://10.0.0.1:8080';

describe('Breakers (fake timers)', () => {
  let breakers: Breakers | undefined;

  afterEach(() => {
    breakers?.shutdown();
    breakers = undefined;
    vi.useRealTimers();
  });

  function setup(
    volumeThreshold = 4,
    resetTimeoutMs = 1000,
    rollingWindowMs = 10_000,
    connectionFailures = 5,
  ): Breakers {
    vi.useFakeTimers();
    breakers = new Breakers({
      errorThresholdPercentage: 50,
      volumeThreshold,
      resetTimeoutMs,
      rollingWindowMs,
      connectionFailures,
    });
    return breakers;
  }

  const failing = () => Promise.reject(new Error('boom'));
  const succeeding = () => Promise.resolve('ok');

  /** One request to `origin` through its breaker, as the breaker interceptor makes it: what it settled with. */
  async function fire(
    b: Breakers,
    action: () => Promise<unknown>,
    origin = ORIGIN,
  ): Promise<{ ok: boolean; code?: string }> {
    if (!b.admit(origin)) return { ok: false, code: 'EOPENBREAKER' };
    try {
      await action();
      b.success(origin);
      return { ok: true };
    } catch (error) {
      b.failure(origin, error as Error);
      return { ok: false, code: (error as { code?: string }).code };
    }
  }

  const connectionFailure = (code: string | undefined) => Object.assign(new Error(code ?? 'failed'), { code });

  it('is closed for an origin never used', () => {
    const b = setup();
    expect(b.isOpen(ORIGIN)).toBe(false);
    expect(b.state(ORIGIN)).toBe('closed');
  });

  it('opens after volumeThreshold failures, not before', async () => {
    const b = setup(4);
    for (let i = 1; i <= 3; i++) {
      expect(await fire(b, failing)).toEqual({ ok: false, code: undefined });
      expect(b.state(ORIGIN), `after ${i} failures`).toBe('closed');
      expect(b.isOpen(ORIGIN)).toBe(false);
    }
    await fire(b, failing);
    expect(b.state(ORIGIN)).toBe('open');
    expect(b.isOpen(ORIGIN)).toBe(true);
  });

  it('stays closed while the failure share is below errorThresholdPercentage', async () => {
    const b = setup(4);
    await fire(b, failing);
    for (let i = 0; i < 5; i++) await fire(b, succeeding);
    await fire(b, failing); // 2 of 7: 29 %
    expect(b.state(ORIGIN)).toBe('closed');
    await fire(b, failing);
    await fire(b, failing); // 4 of 9: 44 %
    expect(b.state(ORIGIN)).toBe('closed');
    await fire(b, failing); // 5 of 10: not above 50 %
    expect(b.state(ORIGIN)).toBe('closed');
    await fire(b, failing); // 6 of 11: 55 %
    expect(b.state(ORIGIN)).toBe('open');
  });

  it('counts only the rolling window', async () => {
    const b = setup(4, 1000, 1000);
    for (let i = 0; i < 3; i++) await fire(b, failing);
    vi.advanceTimersByTime(2000); // those three left the window
    await fire(b, failing);
    expect(b.state(ORIGIN)).toBe('closed');
  });

  it('counts successes in the window they happened in: they roll out with it', async () => {
    const b = setup(4, 1000, 1000, 0);
    for (let i = 0; i < 5; i++) await fire(b, succeeding);
    vi.advanceTimersByTime(1500); // those five left the window
    for (let i = 0; i < 3; i++) await fire(b, failing);
    expect(b.state(ORIGIN)).toBe('closed'); // 3 requests: below volumeThreshold
    await fire(b, failing); // 4 of 4 (with the five old successes it would be 4 of 9)
    expect(b.state(ORIGIN)).toBe('open');
  });

  it('fails fast while open without calling the action', async () => {
    const b = setup(1);
    await fire(b, failing);
    expect(b.isOpen(ORIGIN)).toBe(true);
    const action = vi.fn(succeeding);
    expect(await fire(b, action)).toEqual({ ok: false, code: 'EOPENBREAKER' });
    expect(action).not.toHaveBeenCalled();
  });

  it('goes half-open after resetTimeoutMs (isOpen false: one probe may pass); a successful probe closes it', async () => {
    const b = setup(1, 1000);
    await fire(b, failing);
    expect(b.state(ORIGIN)).toBe('open');
    vi.advanceTimersByTime(999);
    expect(b.state(ORIGIN)).toBe('open');
    expect(b.isOpen(ORIGIN)).toBe(true);
    vi.advanceTimersByTime(1);
    expect(b.state(ORIGIN)).toBe('half-open');
    expect(b.isOpen(ORIGIN)).toBe(false);
    const probe = vi.fn(succeeding);
    expect(await fire(b, probe)).toEqual({ ok: true });
    expect(probe).toHaveBeenCalledTimes(1);
    expect(b.state(ORIGIN)).toBe('closed');
    expect(b.isOpen(ORIGIN)).toBe(false);
  });

  it('lets one probe through while half-open, not two', async () => {
    const b = setup(1, 1000);
    await fire(b, failing);
    vi.advanceTimersByTime(1000);
    let finish!: () => void;
    const probe = fire(
      b,
      () =>
        new Promise<void>((resolve) => {
          finish = resolve;
        }),
    );
    const second = vi.fn(succeeding);
    expect(await fire(b, second)).toEqual({ ok: false, code: 'EOPENBREAKER' });
    expect(second).not.toHaveBeenCalled();
    expect(b.isOpen(ORIGIN), 'no pick while the probe is under way').toBe(true);
    finish();
    await probe;
    expect(b.state(ORIGIN)).toBe('closed');
  });

  it('lets the next probe through when the caller of the one under way gave up, and counts nothing for it', async () => {
    const b = setup(1, 1000);
    await fire(b, failing);
    vi.advanceTimersByTime(1000);
    expect(b.admit(ORIGIN)).toBe(true);
    expect(b.admit(ORIGIN), 'one probe at a time').toBe(false);
    b.abandoned(ORIGIN);
    expect(b.state(ORIGIN), 'an abandoned probe neither closes nor re-opens').toBe('half-open');
    expect(b.isOpen(ORIGIN)).toBe(false);
    expect(await fire(b, succeeding)).toEqual({ ok: true });
    expect(b.state(ORIGIN)).toBe('closed');
  });

  it('re-opens after a failed probe, and probes again after another resetTimeoutMs', async () => {
    const b = setup(1, 1000);
    await fire(b, failing);
    vi.advanceTimersByTime(1000);
    expect(b.state(ORIGIN)).toBe('half-open');
    await fire(b, failing);
    expect(b.state(ORIGIN)).toBe('open');
    expect(b.isOpen(ORIGIN)).toBe(true);
    vi.advanceTimersByTime(999);
    expect(b.isOpen(ORIGIN)).toBe(true);
    vi.advanceTimersByTime(1);
    expect(b.state(ORIGIN)).toBe('half-open');
    expect(await fire(b, succeeding)).toEqual({ ok: true });
    expect(b.state(ORIGIN)).toBe('closed');
  });

  it('keeps one circuit per origin', async () => {
    const b = setup(1);
    await fire(b, failing);
    expect(b.isOpen(ORIGIN)).toBe(true);
    expect(b.isOpen('http://10.0.0.2:8080')).toBe(false);
    expect(await fire(b, succeeding, 'http://10.0.0.2:8080')).toEqual({ ok: true });
    expect(b.size).toBe(2);
  });

  it('opens after 5 connection failures in a row, however many successes the window holds', async () => {
    const b = setup(4);
    for (let i = 0; i < 100; i++) await fire(b, succeeding);
    for (let i = 1; i <= 4; i++) {
      b.failure(ORIGIN, connectionFailure(i % 2 === 0 ? 'ECONNRESET' : 'ECONNREFUSED'));
      expect(b.state(ORIGIN), `after ${i} connection failures`).toBe('closed');
    }
    b.failure(ORIGIN, connectionFailure('ECONNREFUSED'));
    expect(b.state(ORIGIN)).toBe('open');
    vi.advanceTimersByTime(1000);
    expect(b.state(ORIGIN)).toBe('half-open');
  });

  it('counts only connection failures, and an answer breaks the row', async () => {
    const b = setup(4);
    for (let i = 0; i < 100; i++) await fire(b, succeeding);
    for (let i = 0; i < 4; i++) b.failure(ORIGIN, connectionFailure('ECONNREFUSED'));
    b.answered(ORIGIN);
    for (let i = 0; i < 4; i++) b.failure(ORIGIN, connectionFailure('ECONNREFUSED'));
    for (let i = 0; i < 10; i++) b.failure(ORIGIN, connectionFailure(i % 2 === 0 ? undefined : 'LOSSLESS_ERR_TIMEOUT'));
    expect(b.state(ORIGIN)).toBe('closed');
  });

  it.each([
    'ECONNREFUSED',
    'UND_ERR_CONNECT_TIMEOUT',
    'EHOSTUNREACH',
    'ENETUNREACH',
    'ECONNRESET',
    'UND_ERR_SOCKET',
    'EPIPE',
  ])('takes %s for a connection failure', async (code) => {
    const b = setup(4);
    for (let i = 0; i < 100; i++) await fire(b, succeeding);
    for (let i = 0; i < 5; i++) b.failure(ORIGIN, connectionFailure(code));
    expect(b.state(ORIGIN)).toBe('open');
  });

  it('counts failures anywhere in the rolling window, not only in its last bucket', async () => {
    const b = setup(4, 1000, 10_000, 0);
    for (let i = 0; i < 3; i++) await fire(b, failing);
    vi.advanceTimersByTime(5000); // half the window later: still in it
    await fire(b, failing);
    expect(b.state(ORIGIN)).toBe('open');
  });

  it('lets a probe through each time the circuit goes half-open again', async () => {
    const b = setup(1, 1000);
    await fire(b, failing);
    vi.advanceTimersByTime(1000);
    expect(await fire(b, succeeding)).toEqual({ ok: true }); // the probe closes it
    expect(b.state(ORIGIN)).toBe('closed');
    vi.advanceTimersByTime(20_000); // the earlier requests left the window
    await fire(b, failing);
    expect(b.state(ORIGIN)).toBe('open');
    vi.advanceTimersByTime(1000);
    expect(b.state(ORIGIN)).toBe('half-open');
    expect(b.isOpen(ORIGIN)).toBe(false);
    expect(b.admit(ORIGIN)).toBe(true);
    expect(b.admit(ORIGIN)).toBe(false); // one probe at a time
  });

  it('says whether any circuit is open, and forgets an origin that left with its open circuit', async () => {
    const b = setup(1);
    expect(b.anyOpen()).toBe(false);
    await fire(b, succeeding, 'http://10.0.0.2:8080');
    expect(b.anyOpen()).toBe(false);
    await fire(b, failing);
    expect(b.anyOpen()).toBe(true);
    b.forget(ORIGIN);
    expect(b.anyOpen()).toBe(false);
    expect(b.state(ORIGIN)).toBe('closed');
    expect(b.size).toBe(1);
    // back in the registry: a new circuit, closed, with a clean window
    expect(await fire(b, succeeding)).toEqual({ ok: true });
    expect(b.size).toBe(2);
  });

  it('shutdown() forgets every circuit and stops the shared timer', async () => {
    const b = setup(1);
    await fire(b, failing);
    await fire(b, succeeding, 'http://10.0.0.2:8080');
    expect(vi.getTimerCount()).toBeGreaterThan(0);
    b.shutdown();
    expect(b.size).toBe(0);
    expect(b.anyOpen()).toBe(false);
    expect(b.state(ORIGIN)).toBe('closed');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('takes the number in a row from breaker.connectionFailures; 0 turns the rule off', async () => {
    const two = setup(4, 1000, 10_000, 2);
    for (let i = 0; i < 100; i++) await fire(two, succeeding);
    two.failure(ORIGIN, connectionFailure('ECONNREFUSED'));
    expect(two.state(ORIGIN)).toBe('closed');
    two.failure(ORIGIN, connectionFailure('ECONNREFUSED'));
    expect(two.state(ORIGIN)).toBe('open');
    two.shutdown();
    const off = setup(4, 1000, 10_000, 0);
    for (let i = 0; i < 100; i++) await fire(off, succeeding);
    for (let i = 0; i < 50; i++) off.failure(ORIGIN, connectionFailure('ECONNREFUSED'));
    expect(off.state(ORIGIN)).toBe('closed');
  });
});

describe('circuits through createClient and real servers', () => {
  const servers: TestServer[] = [];
  const clients: LosslessClient[] = [];
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await Promise.all(servers.splice(0).map(stopServer));
  });

  const status =
    (code: number) =>
    (_req: IncomingMessage, res: ServerResponse): void => {
      res.statusCode = code;
      res.end(String(code));
    };

  async function failingService(resetTimeoutMs: number) {
    const started = await Promise.all([1, 2, 3].map(() => startServer(status(500))));
    servers.push(...started);
    const registry = new TestRegistry(started.map((s, i) => instance('svc', `s${i + 1}`, { port: s.port })));
    const client = createClient({
      registry,
      services: ['svc'],
      breaker: { volumeThreshold: 2, errorThresholdPercentage: 50, resetTimeoutMs },
      retry: { minDelayMs: 0, maxDelayMs: 0 },
      clock: { random: seeded(seedOf(expect.getState().currentTestName ?? 'breakers')) },
    });
    clients.push(client);
    const origins = started.map((s) => `http://127.0.0.1:${s.port}`);
    return { client, servers: started, origins };
  }

  /** Sends requests until every circuit is open; returns the statuses seen. */
  async function openAll(client: LosslessClient, origins: string[]): Promise<number[]> {
    const statuses: number[] = [];
    await until(async () => {
      if (origins.every((o) => client.circuit(o) === 'open')) return true;
      const res = await client.request('http://svc/');
      await res.body.text();
      statuses.push(res.statusCode);
      return false;
    }, 'every circuit to open');
    return statuses;
  }

  it('fails with LOSSLESS_ERR_ALL_CIRCUITS_OPEN, naming the instances, once every circuit is open', async () => {
    const { client, servers: list, origins } = await failingService(60_000);
    const statuses = await openAll(client, origins);
    expect(statuses.length).toBeGreaterThanOrEqual(6); // two failures per instance
    expect(statuses.every((s) => s === 500)).toBe(true); // a 500 is not retried
    const hits = list.map((s) => s.hits);
    const error = await client.request('http://svc/').then(
      () => undefined,
      (e: Error & { code?: string; service?: string; instances?: readonly string[] }) => e,
    );
    expect(error?.code).toBe('LOSSLESS_ERR_ALL_CIRCUITS_OPEN');
    expect(error?.message).toContain('"svc"');
    for (const id of ['s1', 's2', 's3']) expect(error?.message).toContain(id);
    expect([...(error?.instances ?? [])].sort()).toEqual(['s1', 's2', 's3']);
    expect(
      list.map((s) => s.hits),
      'nothing was sent',
    ).toEqual(hits);
  });

  it('takes an instance whose circuit is open out of rotation, the others still serve', async () => {
    const started = await Promise.all([startServer(status(500)), startServer(status(200)), startServer(status(200))]);
    servers.push(...started);
    const registry = new TestRegistry(started.map((s, i) => instance('svc', `s${i + 1}`, { port: s.port })));
    const client = createClient({
      registry,
      services: ['svc'],
      breaker: { volumeThreshold: 2, resetTimeoutMs: 60_000 },
      clock: { random: seeded(seedOf('one open')) },
    });
    clients.push(client);
    const bad = `http://127.0.0.1:${started[0]?.port}`;
    await until(async () => {
      if (client.circuit(bad) === 'open') return true;
      await (await client.request('http://svc/')).body.text();
      return false;
    }, 'the circuit of s1 to open');
    const hits = started[0]?.hits;
    for (let i = 0; i < 100; i++) {
      const res = await client.request('http://svc/');
      await res.body.text();
      expect(res.statusCode).toBe(200);
    }
    expect(started[0]?.hits, 'requests to the instance with an open circuit').toBe(hits);
  });

  it('brings instances back through a half-open probe once they answer again', async () => {
    const { client, servers: list, origins } = await failingService(200);
    await openAll(client, origins);
    for (const s of list) s.handler = status(200);
    await until(async () => {
      const res = await client.request('http://svc/').catch(() => undefined);
      await res?.body.text();
      return origins.every((o) => client.circuit(o) === 'closed');
    }, 'every circuit to close again');
    const res = await client.request('http://svc/');
    expect(await res.body.text()).toBe('200');
  });
});

describe('Breakers at fleet scale (pod addresses change on every rollout)', () => {
  it('share one timer for every rolling window, and forget an origin with its breaker', () => {
    const intervals = vi.spyOn(globalThis, 'setInterval');
    const cleared = vi.spyOn(globalThis, 'clearInterval');
    const b = new Breakers({
      errorThresholdPercentage: 50,
      volumeThreshold: 10,
      resetTimeoutMs: 5000,
      rollingWindowMs: 10_000,
      connectionFailures: 5,
    });
    for (let i = 0; i < 1000; i++) b.admit(`http://10.0.${i >> 8}.${i & 255}:8080`);
    expect(b.size).toBe(1000);
    // one interval for all of them (opossum would start one per breaker)
    expect(intervals).toHaveBeenCalledTimes(1);
    const shared = intervals.mock.results[0]?.value;
    for (let i = 0; i < 1000; i++) b.forget(`http://10.0.${i >> 8}.${i & 255}:8080`);
    expect(b.size).toBe(0);
    expect(cleared).toHaveBeenCalledWith(shared);
    b.shutdown();
    intervals.mockRestore();
    cleared.mockRestore();
  });

  it('still rotates the shared window: failures older than the window no longer count', async () => {
    vi.useFakeTimers();
    const b = new Breakers({
      errorThresholdPercentage: 50,
      volumeThreshold: 4,
      resetTimeoutMs: 1000,
      rollingWindowMs: 1000,
      connectionFailures: 0,
    });
    try {
      const fail = () => {
        b.admit(ORIGIN);
        b.failure(ORIGIN, new Error('boom'));
      };
      for (let i = 0; i < 3; i++) fail();
      await vi.advanceTimersByTimeAsync(1500); // the three failures rolled out of the window
      fail();
      expect(b.state(ORIGIN)).toBe('closed');
    } finally {
      b.shutdown();
      vi.useRealTimers();
    }
  });
});
