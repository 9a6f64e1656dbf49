import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DEFAULT_TIMING, reconnectDelay, ServerRotation } from '../../src/grpc/connection.js';

const timing = { ...DEFAULT_TIMING, reconnectMinMs: 100, reconnectMaxMs: 2000 };

describe('reconnectDelay', () => {
  it('doubles per failure up to the largest delay, with equal jitter (half fixed, half random)', () => {
    const low = (failures: number) => reconnectDelay(failures, timing, () => 0);
    const high = (failures: number) => reconnectDelay(failures, timing, () => 1);
    expect([1, 2, 3, 4, 5, 6, 10].map(high)).toEqual([100, 200, 400, 800, 1600, 2000, 2000]);
    expect([1, 2, 3, 4, 5, 6, 10].map(low)).toEqual([50, 100, 200, 400, 800, 1000, 1000]);
  });
});

describe('ServerRotation', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  /** A rotation whose attempts succeed only where `up` says, recording each attempt's time and server. */
  function rotation(servers: string[], up: (server: string, attempt: number) => boolean) {
    const attempts: [number, string][] = [];
    const r = new ServerRotation(
      servers,
      timing,
      async (server) => {
        attempts.push([Date.now(), server]);
        return up(server, attempts.length);
      },
      () => 1,
    );
    return { r, attempts };
  }

  it('tries at once, then the next server after each failure, waiting longer each time', async () => {
    const start = Date.now();
    const { r, attempts } = rotation(['a:1', 'b:1', 'c:1'], () => false);
    r.run();
    await vi.advanceTimersByTimeAsync(100 + 200 + 400 + 800 + 1600 + 2000);
    expect(attempts.map(([at, server]) => [at - start, server])).toEqual([
      [0, 'a:1'],
      [100, 'b:1'],
      [300, 'c:1'],
      [700, 'a:1'],
      [1500, 'b:1'],
      [3100, 'c:1'],
      [5100, 'a:1'],
    ]);
    r.stop();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(attempts).toHaveLength(7);
  });

  it('stops at the first success, and after a loss starts with the server after the one that answered', async () => {
    const { r, attempts } = rotation(['a:1', 'b:1', 'c:1'], (server) => server === 'b:1');
    r.run();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(attempts.map(([, s]) => s)).toEqual(['a:1', 'b:1']);
    expect(r.failures).toBe(0);
    // the connection to b was lost: c first, at once, and the backoff starts over
    const lostAt = Date.now();
    r.run();
    await vi.advanceTimersByTimeAsync(0);
    expect(attempts.at(-1)).toEqual([lostAt, 'c:1']);
    await vi.advanceTimersByTimeAsync(100 + 200);
    expect(attempts.slice(2).map(([at, s]) => [at - lostAt, s])).toEqual([
      [0, 'c:1'],
      [100, 'a:1'],
      [300, 'b:1'],
    ]);
    r.stop();
  });

  it('goes to the server it is told first (a ConnectResetRequest may name one)', async () => {
    const { r, attempts } = rotation(['a:1', 'b:1', 'c:1'], () => true);
    r.run('c:1');
    await vi.advanceTimersByTimeAsync(0);
    expect(attempts.map(([, s]) => s)).toEqual(['c:1']);
    r.run('not-in-the-list:1');
    await vi.advanceTimersByTimeAsync(0);
    expect(attempts.map(([, s]) => s)).toEqual(['c:1', 'a:1']);
  });

  it('keeps one series of attempts however often it is asked to run', async () => {
    const { r, attempts } = rotation(['a:1'], () => false);
    r.run();
    r.run();
    r.run();
    await vi.advanceTimersByTimeAsync(150);
    expect(attempts).toHaveLength(2);
    r.stop();
  });

  it('leaves the process free to exit while it waits (its timer is unref-ed)', async () => {
    const unref = vi.spyOn(globalThis, 'setTimeout');
    const { r } = rotation(['a:1'], () => false);
    r.run();
    await vi.advanceTimersByTimeAsync(0);
    const timer = unref.mock.results.at(-1)?.value as NodeJS.Timeout;
    expect(timer.hasRef()).toBe(false);
    r.stop();
    unref.mockRestore();
  });
});
