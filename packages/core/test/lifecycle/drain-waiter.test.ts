import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type DrainLoad, type DrainOutcome, DrainWaiter } from '../../src/lifecycle/drain-waiter.js';

// A stand-in for the in-flight tracker: requests arrive and finish when the test says so.
class FakeLoad implements DrainLoad {
  size = 0;
  lastArrival = Number.NEGATIVE_INFINITY;
  onIdle: (() => void) | undefined;
  arrive(): void {
    this.size++;
    this.lastArrival = Date.now();
  }
  finish(): void {
    this.size--;
    if (this.size === 0) this.onIdle?.();
  }
}

const timing = { quietWindowMs: 1000, minDrainMs: 0, maxDrainMs: 10_000 };

function track(waiter: DrainWaiter): { outcome: DrainOutcome | undefined; at: number | undefined } {
  const result: { outcome: DrainOutcome | undefined; at: number | undefined } = { outcome: undefined, at: undefined };
  void waiter.done.then((outcome) => {
    result.outcome = outcome;
    result.at = Date.now() - waiter.startedAt;
  });
  return result;
}

describe('DrainWaiter', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('ends one quiet window after the registry step settles when nothing is in flight', async () => {
    const load = new FakeLoad();
    const waiter = new DrainWaiter(timing, load, Date.now);
    const result = track(waiter);
    await vi.advanceTimersByTimeAsync(200);
    waiter.registrySettled();
    await vi.advanceTimersByTimeAsync(999);
    expect(result.outcome).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(result).toEqual({ outcome: 'idle', at: 1200 });
  });

  it('never ends before the registry step settled, however quiet it is', async () => {
    const load = new FakeLoad();
    const waiter = new DrainWaiter(timing, load, Date.now);
    const result = track(waiter);
    await vi.advanceTimersByTimeAsync(5000);
    expect(result.outcome).toBeUndefined();
    waiter.registrySettled();
    await vi.advanceTimersByTimeAsync(1000);
    expect(result.outcome).toBe('idle');
  });

  it('waits for the last in-flight request, then a quiet window from the last arrival', async () => {
    const load = new FakeLoad();
    load.arrive(); // t=0, a long request
    const waiter = new DrainWaiter(timing, load, Date.now);
    const result = track(waiter);
    waiter.registrySettled();
    await vi.advanceTimersByTimeAsync(3000);
    expect(result.outcome).toBeUndefined(); // still in flight
    load.finish(); // t=3000: last arrival was at 0, registry settled at 0: quiet for 3 s already
    await vi.advanceTimersByTimeAsync(0);
    expect(result).toEqual({ outcome: 'idle', at: 3000 });
  });

  it('restarts the quiet window on every new arrival', async () => {
    const load = new FakeLoad();
    const waiter = new DrainWaiter(timing, load, Date.now);
    const result = track(waiter);
    waiter.registrySettled();
    await vi.advanceTimersByTimeAsync(800);
    load.arrive(); // t=800
    load.finish();
    await vi.advanceTimersByTimeAsync(900); // t=1700: quiet since 800 for 900 ms
    expect(result.outcome).toBeUndefined();
    await vi.advanceTimersByTimeAsync(100); // t=1800
    expect(result).toEqual({ outcome: 'idle', at: 1800 });
  });

  it('counts the quiet window from the registry step when requests stopped before it settled', async () => {
    const load = new FakeLoad();
    const waiter = new DrainWaiter(timing, load, Date.now);
    const result = track(waiter);
    load.arrive();
    load.finish(); // t=0
    await vi.advanceTimersByTimeAsync(2500);
    waiter.registrySettled(); // t=2500: stale callers only learn of the removal now
    await vi.advanceTimersByTimeAsync(999);
    expect(result.outcome).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(result).toEqual({ outcome: 'idle', at: 3500 });
  });

  it('never ends before the minimum drain time', async () => {
    const load = new FakeLoad();
    const waiter = new DrainWaiter({ ...timing, minDrainMs: 4000 }, load, Date.now);
    const result = track(waiter);
    waiter.registrySettled();
    await vi.advanceTimersByTimeAsync(3999);
    expect(result.outcome).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(result).toEqual({ outcome: 'idle', at: 4000 });
  });

  it('ends at the maximum with requests still in flight', async () => {
    const load = new FakeLoad();
    load.arrive();
    const waiter = new DrainWaiter(timing, load, Date.now);
    const result = track(waiter);
    waiter.registrySettled();
    await vi.advanceTimersByTimeAsync(9999);
    expect(result.outcome).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(result).toEqual({ outcome: 'timeout', at: 10_000 });
  });

  it('ends at the maximum when traffic never stops, even if the registry step never settles', async () => {
    const load = new FakeLoad();
    const waiter = new DrainWaiter(timing, load, Date.now);
    const result = track(waiter);
    const steady = setInterval(() => {
      load.arrive();
      load.finish();
    }, 500);
    waiter.registrySettled();
    await vi.advanceTimersByTimeAsync(10_000);
    clearInterval(steady);
    expect(result).toEqual({ outcome: 'timeout', at: 10_000 });
  });

  it('ends at once when forced, and ignores what happens afterwards', async () => {
    const load = new FakeLoad();
    load.arrive();
    const waiter = new DrainWaiter(timing, load, Date.now);
    const result = track(waiter);
    await vi.advanceTimersByTimeAsync(10);
    waiter.force();
    await vi.advanceTimersByTimeAsync(0);
    expect(result).toEqual({ outcome: 'forced', at: 10 });
    waiter.registrySettled();
    load.finish();
    await vi.advanceTimersByTimeAsync(20_000);
    expect(result.outcome).toBe('forced');
    expect(load.onIdle).toBeUndefined();
  });

  it('holds at most two timers, whatever the traffic (no polling)', async () => {
    const load = new FakeLoad();
    const waiter = new DrainWaiter(timing, load, Date.now);
    waiter.registrySettled();
    for (let i = 0; i < 100; i++) {
      load.arrive();
      load.finish();
      await vi.advanceTimersByTimeAsync(5);
      expect(vi.getTimerCount()).toBeLessThanOrEqual(2);
    }
    waiter.force();
    expect(vi.getTimerCount()).toBe(0);
  });
});
