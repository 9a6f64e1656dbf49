import { type Instance, silentLogger } from '@lossless/core';
import type { Dispatcher } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { pickWeightedP2C } from '../../src/balancing/picker.js';
import {
  type AgeFacts,
  CLOCK_SKEW_TOLERANCE_MS,
  instanceAge,
  MAX_PROPAGATION_MS,
  warmupFactor,
} from '../../src/balancing/warmup.js';
import { ServiceTable } from '../../src/discovery/table.js';
import { balance, idleController } from '../../src/interceptor/balance.js';
import { instance, seeded, seedOf, TestRegistry } from '../helpers.js';

const WINDOW = 60_000;
const FLOOR = 0.1;
const HOUR = 3_600_000;

/** |got - expected| / expected < tolerance, with both numbers in the failure message. */
function expectShare(got: number, expected: number, tolerance: number, what: string): void {
  expect(
    Math.abs(got - expected) / expected,
    `${what}: share ${got.toFixed(4)}, expected ${expected.toFixed(4)}`,
  ).toBeLessThan(tolerance);
}

// The expected factors, written out: max(floor, (age / window)^(1 / aggression)), floor 0.1.
const POINTS: [aggression: number, fraction: number, factor: number][] = [
  [1, 0, 0.1],
  [1, 0.05, 0.1], // 0.05 is below the floor
  [1, 0.25, 0.25],
  [1, 0.5, 0.5],
  [1, 0.75, 0.75],
  [1, 1, 1],
  [2, 0, 0.1],
  [2, 0.25, 0.5],
  [2, 0.5, Math.SQRT1_2],
  [2, 0.75, 0.866_025],
  [2, 1, 1],
  [4, 0.0625, 0.5],
  [4, 0.5, 0.840_896],
];

describe('warmupFactor', () => {
  it.each(POINTS)('aggression %d at %d of the window: %d', (aggression, fraction, factor) => {
    expect(warmupFactor(fraction * WINDOW, WINDOW, { floor: FLOOR, aggression })).toBeCloseTo(factor, 5);
  });

  it('is 1 past the window, with no window, and never below the floor', () => {
    const curve = { floor: FLOOR, aggression: 1 };
    expect(warmupFactor(WINDOW * 10, WINDOW, curve)).toBe(1);
    expect(warmupFactor(Number.POSITIVE_INFINITY, WINDOW, curve)).toBe(1);
    expect(warmupFactor(0, 0, curve)).toBe(1);
    expect(warmupFactor(-5000, WINDOW, curve)).toBe(FLOOR);
    expect(warmupFactor(0, WINDOW, { floor: 0.3, aggression: 1 })).toBe(0.3);
  });
});

describe("a new instance's share ramps with its age (pickWeightedP2C, nothing in flight)", () => {
  // one warm instance and one new one of the same weight: the new one's share is f / (1 + f)
  it.each(POINTS)(
    'aggression %d at %d of the window: 10,000 picks within ±10 %% of factor %d',
    (aggression, fraction, factor) => {
      const f = warmupFactor(fraction * WINDOW, WINDOW, { floor: FLOOR, aggression });
      const candidates = [
        { weight: 100, inFlight: 0 },
        { weight: 100 * f, inFlight: 0 },
      ];
      const random = seeded(seedOf(`picker ${aggression} ${fraction}`));
      let newPicks = 0;
      for (let i = 0; i < 10_000; i++) if (pickWeightedP2C(candidates, random) === 1) newPicks++;
      expectShare(newPicks / 10_000, factor / (1 + factor), 0.1, 'new instance');
    },
  );
});

// ---------------------------------------------------------------------------------------------
// through the balance interceptor, with a fake dispatch that answers at once

interface Harness {
  readonly registry: TestRegistry;
  readonly table: ServiceTable;
  readonly clock: { now: number; wall: number };
  readonly dispatch: Dispatcher['dispatch'];
  /** Sends `n` requests and returns the share each origin got. */
  shares(n: number): Promise<Map<string, number>>;
}

const tables: ServiceTable[] = [];
afterEach(() => {
  for (const t of tables.splice(0)) t.close();
});

const WALL0 = 1_700_000_000_000;

function harness(options: { aggression?: number; defaultWarmupMs?: number; seed?: number } = {}): Harness {
  const registry = new TestRegistry();
  const clock = { now: 5_000_000, wall: WALL0 };
  const table = new ServiceTable({ registry, logger: silentLogger, now: () => clock.now, refreshIntervalMs: 100 });
  tables.push(table);
  const counts = new Map<string, number>();
  const fake = ((opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler) => {
    const origin = String(opts.origin);
    counts.set(origin, (counts.get(origin) ?? 0) + 1);
    const controller = idleController();
    handler.onRequestStart?.(controller, {});
    handler.onResponseStart?.(controller, 200, {}, 'OK');
    handler.onResponseEnd?.(controller, {});
    return true;
  }) as Dispatcher['dispatch'];
  const dispatch = balance({
    table,
    breakers: undefined,
    markerHeader: 'x-lossless-offline',
    curve: { floor: FLOOR, aggression: options.aggression ?? 1 },
    defaultWarmupMs: options.defaultWarmupMs ?? WINDOW,
    serviceOf: (origin) => (origin === 'http://svc' ? 'svc' : undefined),
    now: () => clock.now,
    wallNow: () => clock.wall,
    random: seeded(options.seed ?? seedOf('balance')),
  })(fake);
  const caller: Dispatcher.DispatchHandler = {};
  return {
    registry,
    table,
    clock,
    dispatch,
    async shares(n) {
      await table.get('svc').ready;
      counts.clear();
      for (let i = 0; i < n; i++) dispatch({ origin: 'http://svc', path: '/', method: 'GET' }, caller);
      const total = [...counts.values()].reduce((a, b) => a + b, 0);
      expect(total, 'every request reached an instance').toBe(n);
      return new Map([...counts].map(([origin, c]) => [origin, c / n]));
    },
  };
}

function originOf(i: Instance): string {
  return `http://${i.ip}:${i.port}`;
}

/** Starts the table with `first` as its first list. */
async function start(h: Harness, first: Instance[]): Promise<void> {
  h.registry.listed = first;
  await h.table.get('svc').ready;
  expect(h.table.get('svc').endpoints.map((e) => e.instance.id)).toEqual(first.map((i) => i.id));
}

function advance(h: Harness, ms: number): void {
  h.clock.now += ms;
  h.clock.wall += ms;
}

describe('warm-up through the balance interceptor', () => {
  const BALANCE_POINTS = POINTS.filter(([a]) => a === 1 || a === 2);

  it.each(BALANCE_POINTS)(
    'aggression %d: a new instance at %d of its window gets factor %d of its weight (10,000 requests, ±10 %%)',
    async (aggression, fraction, factor) => {
      const h = harness({ aggression, seed: seedOf(`balance ${aggression} ${fraction}`) });
      const warm = instance('svc', 'warm', { port: 1001, registeredAt: WALL0 - HOUR });
      await start(h, [warm]);
      // the new instance registers now and this client sees it at once
      const fresh = instance('svc', 'fresh', { port: 1002, registeredAt: h.clock.wall });
      h.registry.push([warm, fresh]);
      advance(h, fraction * WINDOW);
      const got = await h.shares(10_000);
      expectShare(got.get(originOf(fresh)) ?? 0, factor / (1 + factor), 0.1, 'new instance');
      expectShare(got.get(originOf(warm)) ?? 0, 1 / (1 + factor), 0.1, 'warm instance');
    },
  );

  it("takes the window from the provider's lossless.warmup-ms over the client's default", async () => {
    const h = harness({ defaultWarmupMs: 60_000 });
    const warm = instance('svc', 'warm', { port: 1001 });
    await start(h, [warm]);
    const fresh = instance('svc', 'fresh', { port: 1002, registeredAt: h.clock.wall, warmupMs: 20_000 });
    h.registry.push([warm, fresh]);
    advance(h, 10_000); // half of its own window: factor 0.5 (with the default window it would be 1/6)
    const got = await h.shares(10_000);
    expectShare(got.get(originOf(fresh)) ?? 0, 0.5 / 1.5, 0.1, 'new instance');
    advance(h, 10_000); // its window is over
    const later = await h.shares(10_000);
    expectShare(later.get(originOf(fresh)) ?? 0, 0.5, 0.1, 'new instance after its window');
  });

  it('applies no ramp of its own when the provider ramps its registered weight (lossless.weight-ramp)', async () => {
    const h = harness();
    const warm = instance('svc', 'warm', { port: 1001, weight: 100 });
    await start(h, [warm]);
    // the provider registered at 10 % of its weight and raises it itself: that weight is the ramp
    const fresh = {
      ...instance('svc', 'fresh', { port: 1002, weight: 10, registeredAt: h.clock.wall }),
      metadata: { 'lossless.registered-at': String(h.clock.wall), 'lossless.weight-ramp': 'provider' },
    };
    h.registry.push([warm, fresh]);
    advance(h, WINDOW / 2); // a client ramp would make it 5 against 100
    const got = await h.shares(10_000);
    expectShare(got.get(originOf(fresh)) ?? 0, 10 / 110, 0.1, 'provider-ramped instance');
  });

  it('ramps the effective weight, not the share: weights multiply the factor', async () => {
    const h = harness();
    const warm = instance('svc', 'warm', { port: 1001, weight: 100 });
    await start(h, [warm]);
    const fresh = instance('svc', 'fresh', { port: 1002, weight: 300, registeredAt: h.clock.wall });
    h.registry.push([warm, fresh]);
    advance(h, WINDOW / 4); // factor 0.25: effective 75 against 100
    const got = await h.shares(10_000);
    expectShare(got.get(originOf(fresh)) ?? 0, 75 / 175, 0.1, 'new instance');
  });

  it('does not ramp when every instance is new: all appear together after the client started', async () => {
    const h = harness();
    await start(h, []); // the client started before any instance existed
    // different windows, so that ramping them would give different shares at the same age
    const all = [
      instance('svc', 'a', { port: 1001, registeredAt: h.clock.wall, warmupMs: 20_000 }),
      instance('svc', 'b', { port: 1002, registeredAt: h.clock.wall, warmupMs: 60_000 }),
      instance('svc', 'c', { port: 1003, registeredAt: h.clock.wall, warmupMs: 120_000 }),
    ];
    h.registry.push(all);
    advance(h, 10_000); // factors would be 0.5, 1/6, 1/12
    const got = await h.shares(9000);
    for (const i of all) expectShare(got.get(originOf(i)) ?? 0, 1 / 3, 0.1, `instance ${i.id}`);
  });

  it('ramps the others once one instance is past its window', async () => {
    const h = harness();
    await start(h, []);
    const all = [
      instance('svc', 'a', { port: 1001, registeredAt: h.clock.wall, warmupMs: 20_000 }),
      instance('svc', 'b', { port: 1002, registeredAt: h.clock.wall, warmupMs: 60_000 }),
      instance('svc', 'c', { port: 1003, registeredAt: h.clock.wall, warmupMs: 120_000 }),
    ];
    h.registry.push(all);
    advance(h, 30_000); // a is warm (1), b at 0.5, c at 0.25
    const got = await h.shares(10_000);
    expectShare(got.get(originOf(all[0] as Instance)) ?? 0, 1 / 1.75, 0.1, 'a');
    expectShare(got.get(originOf(all[1] as Instance)) ?? 0, 0.5 / 1.75, 0.1, 'b');
    expectShare(got.get(originOf(all[2] as Instance)) ?? 0, 0.25 / 1.75, 0.1, 'c');
  });

  it("treats an instance in the client's first list registered an hour ago as warm", async () => {
    const h = harness();
    const old = instance('svc', 'old', { port: 1001, registeredAt: h.clock.wall - HOUR });
    await start(h, [old]);
    const fresh = instance('svc', 'fresh', { port: 1002, registeredAt: h.clock.wall });
    h.registry.push([old, fresh]);
    // were `old` new too (age from this client's first sight), nothing would ramp: 50/50
    const got = await h.shares(10_000);
    expectShare(got.get(originOf(old)) ?? 0, 1 / 1.1, 0.1, 'old instance');
    expectShare(got.get(originOf(fresh)) ?? 0, 0.1 / 1.1, 0.1, 'new instance');
  });

  it('ignores a registration time more than 5 s in the future (an instance of the first list stays warm)', async () => {
    const h = harness();
    const warm = instance('svc', 'warm', { port: 1001, registeredAt: h.clock.wall - HOUR });
    const future = instance('svc', 'future', { port: 1002, registeredAt: h.clock.wall + 10 * 60_000 });
    await start(h, [warm, future]);
    // believed, the future time would make `future` brand new (the floor); ignored, it is warm
    const got = await h.shares(10_000);
    expectShare(got.get(originOf(future)) ?? 0, 0.5, 0.1, 'instance with a future registration');
  });

  it('believes a registration time less than 5 s in the future (age 0, the floor)', async () => {
    const h = harness();
    const warm = instance('svc', 'warm', { port: 1001, registeredAt: h.clock.wall - HOUR });
    const ahead = instance('svc', 'ahead', { port: 1002, registeredAt: h.clock.wall + 3000 });
    await start(h, [warm, ahead]);
    const got = await h.shares(10_000);
    expectShare(got.get(originOf(ahead)) ?? 0, 0.1 / 1.1, 0.1, 'instance a little ahead');
  });

  it('an arriving instance whose registration is far in the past skips at most MAX_PROPAGATION_MS of its ramp', async () => {
    const h = harness();
    const warm = instance('svc', 'warm', { port: 1001 });
    await start(h, [warm]);
    const stale = instance('svc', 'stale', { port: 1002, registeredAt: h.clock.wall - HOUR });
    h.registry.push([warm, stale]);
    // age 30 s of 60 s at first sight: factor 0.5 (skipping the whole ramp would give 1)
    const got = await h.shares(10_000);
    expectShare(got.get(originOf(stale)) ?? 0, 0.5 / 1.5, 0.1, 'at first sight');
    advance(h, 15_000); // 45 s: 0.75
    const later = await h.shares(10_000);
    expectShare(later.get(originOf(stale)) ?? 0, 0.75 / 1.75, 0.1, '15 s later');
  });

  it('keeps the age of a registration across list updates, and restarts it for a new registration', async () => {
    const h = harness();
    const warm = instance('svc', 'warm', { port: 1001 });
    await start(h, [warm]);
    const fresh = instance('svc', 'fresh', { port: 1002, registeredAt: h.clock.wall });
    h.registry.push([warm, fresh]);
    advance(h, WINDOW / 2);
    h.registry.push([warm, { ...fresh, weight: 100 }]); // same registration listed again
    const got = await h.shares(10_000);
    expectShare(got.get(originOf(fresh)) ?? 0, 0.5 / 1.5, 0.1, 'same registration');
    // it re-registers (a restart): the ramp starts over
    h.registry.push([warm, instance('svc', 'fresh', { port: 1002, registeredAt: h.clock.wall })]);
    const restarted = await h.shares(10_000);
    expectShare(restarted.get(originOf(fresh)) ?? 0, 0.1 / 1.1, 0.1, 'new registration');
  });
});

describe('instanceAge', () => {
  const NOW = 9_000_000; // monotonic
  const WALL = WALL0;
  const arriving = (seenAgo: number, registeredAt?: number): AgeFacts => ({
    firstSeen: NOW - seenAgo,
    initial: false,
    registeredAt,
  });
  const initial = (registeredAt?: number): AgeFacts => ({ firstSeen: NOW, initial: true, registeredAt });

  it('has the documented constants', () => {
    expect(CLOCK_SKEW_TOLERANCE_MS).toBe(5000);
    expect(MAX_PROPAGATION_MS).toBe(30_000);
  });

  it.each<[string, AgeFacts, number]>([
    ['arriving, no registration time, just seen', arriving(0), 0],
    ['arriving, no registration time, seen 12 s ago', arriving(12_000), 12_000],
    ['arriving, registered when first seen', arriving(12_000, WALL - 12_000), 12_000],
    ['arriving, 3 s propagation delay', arriving(2000, WALL - 5000), 5000],
    ['arriving, registered an hour ago, just seen: capped', arriving(0, WALL - HOUR), MAX_PROPAGATION_MS],
    ['arriving, registered an hour ago, seen 10 s ago', arriving(10_000, WALL - HOUR), 10_000 + MAX_PROPAGATION_MS],
    ['arriving, provider clock behind our sight', arriving(10_000, WALL - 2000), 10_000],
    ['arriving, provider clock 4 s ahead (tolerated)', arriving(10_000, WALL + 4000), 10_000],
    ['arriving, provider clock a minute ahead (ignored)', arriving(10_000, WALL + 60_000), 10_000],
    ['first list, no registration time: warm', initial(), Number.POSITIVE_INFINITY],
    ['first list, registered an hour ago', initial(WALL - HOUR), HOUR],
    ['first list, registered 10 s ago: still ramps', initial(WALL - 10_000), 10_000],
    ['first list, 3 s in the future: believed, age 0', initial(WALL + 3000), 0],
    ['first list, exactly the tolerance in the future: believed', initial(WALL + CLOCK_SKEW_TOLERANCE_MS), 0],
    ['first list, beyond the tolerance: ignored, warm', initial(WALL + CLOCK_SKEW_TOLERANCE_MS + 1), Infinity],
    ['first list, a minute in the future: ignored, warm', initial(WALL + 60_000), Number.POSITIVE_INFINITY],
  ])('%s', (_, facts, expected) => {
    expect(instanceAge(facts, NOW, WALL)).toBe(expected);
  });
});
