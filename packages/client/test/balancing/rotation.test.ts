import { describe, expect, it } from 'vitest';
import { Rotation } from '../../src/balancing/rotation.js';
import type { Endpoint } from '../../src/discovery/table.js';
import { seeded, seedOf } from '../helpers.js';

const CURVE = { floor: 0.1, aggression: 1 };
const WINDOW = 60_000;
const NOW = 1_000_000;
const WALL = 1_700_000_000_000;

/** An endpoint warm long ago (in the first list, registered an hour before), unless told otherwise. */
function endpoint(
  i: number,
  o: { weight?: number; inFlight?: number; ageMs?: number; warmupMs?: number } = {},
): Endpoint {
  const arriving = o.ageMs !== undefined;
  return {
    instance: {
      service: 's',
      id: `i${i}`,
      ip: '127.0.0.1',
      port: 8000 + i,
      weight: o.weight ?? 100,
      enabled: true,
      healthy: true,
      metadata: {},
    },
    origin: `http://127.0.0.1:${8000 + i}`,
    key: `s/i${i}`,
    firstSeen: NOW - (o.ageMs ?? 0),
    initial: !arriving,
    registeredAt: arriving ? undefined : WALL - 3_600_000,
    warmupMs: o.warmupMs,
    inFlight: o.inFlight ?? 0,
  };
}

const rotation = (endpoints: Endpoint[]) => new Rotation(endpoints, NOW, WALL, WINDOW, CURVE);

/** A random source that returns `values` in order (and fails the test when it runs out). */
function sequence(...values: number[]): () => number {
  let i = 0;
  return () => {
    if (i >= values.length) throw new Error('the rotation drew more random numbers than expected');
    return values[i++] as number;
  };
}

function shares(r: Rotation, picks: number, label: string, skip?: (e: Endpoint) => boolean): number[] {
  const random = seeded(seedOf(label));
  const counts = r.endpoints.map(() => 0);
  for (let i = 0; i < picks; i++) {
    const index = r.pick(random, skip);
    expect(index).toBeGreaterThanOrEqual(0);
    counts[index] = (counts[index] as number) + 1;
  }
  return counts.map((c) => c / picks);
}

describe('Rotation', () => {
  it('picks nothing from an empty list or one whose weights are all 0', () => {
    expect(rotation([]).pick(sequence(), undefined)).toBe(-1);
    expect(rotation([endpoint(0, { weight: 0 }), endpoint(1, { weight: 0 })]).pick(sequence(), undefined)).toBe(-1);
  });

  it('draws once when there is one instance, and only that one', () => {
    expect(rotation([endpoint(0)]).pick(sequence(0.99), undefined)).toBe(0);
  });

  it('draws two instances and keeps the one with fewer requests in flight per unit of weight', () => {
    const r = rotation([endpoint(0, { inFlight: 4 }), endpoint(1, { inFlight: 1 }), endpoint(2, { inFlight: 9 })]);
    // equal weights: index = floor(random * 3)
    expect(r.pick(sequence(0.1, 0.5), undefined)).toBe(1); // 0 (4) against 1 (1): 1
    expect(r.pick(sequence(0.5, 0.1), undefined)).toBe(1); // 1 (1) against 0 (4): 1
    expect(r.pick(sequence(0.9, 0.1), undefined)).toBe(0); // 2 (9) against 0 (4): 0
    // a tie keeps the first drawn
    const tie = rotation([endpoint(0, { inFlight: 2 }), endpoint(1, { inFlight: 2 })]);
    expect(tie.pick(sequence(0.9, 0.1), undefined)).toBe(1);
    expect(tie.pick(sequence(0.1, 0.9), undefined)).toBe(0);
  });

  it('compares in-flight counts per unit of weight, not raw', () => {
    // 0: 3 in flight for weight 300 (0.01 per unit); 1: 1 for weight 50 (0.02 per unit)
    const r = rotation([endpoint(0, { weight: 300, inFlight: 3 }), endpoint(1, { weight: 50, inFlight: 1 })]);
    // cumulative 300, 350: x = random * 350; 0.9 -> 315 (index 1), 0.1 -> 35 (index 0)
    expect(r.pick(sequence(0.9, 0.1), undefined)).toBe(0);
    expect(r.pick(sequence(0.1, 0.9), undefined)).toBe(0);
  });

  it('keeps the first when the second draw lands on it', () => {
    const r = rotation([endpoint(0, { inFlight: 5 }), endpoint(1)]);
    expect(r.pick(sequence(0.2, 0.3), undefined)).toBe(0);
  });

  it('draws by weight: the boundaries of the cumulative weights', () => {
    // weights 100, 300, 100: cumulative 100, 400, 500
    const r = rotation([endpoint(0), endpoint(1, { weight: 300 }), endpoint(2)]);
    const draw = (x: number) => r.pick(sequence(x, x), undefined); // both draws alike: the first is kept
    expect(draw(0)).toBe(0);
    expect(draw(99.999 / 500)).toBe(0);
    expect(draw(100 / 500)).toBe(1);
    expect(draw(399.999 / 500)).toBe(1);
    expect(draw(400 / 500)).toBe(2);
    expect(draw(0.999999)).toBe(2);
  });

  it('never draws an instance of weight 0, even where the random number rounds up to the total', () => {
    const r = rotation([endpoint(0), endpoint(1, { weight: 0 }), endpoint(2), endpoint(3, { weight: 0 })]);
    for (const x of [0, 0.25, 0.49999, 0.5, 0.75, 0.99999, 1]) {
      const i = r.pick(sequence(x, x), undefined);
      expect([0, 2], `random ${x}`).toContain(i);
    }
  });

  it('follows the weights over many picks, and evens out equal ones', () => {
    const weighted = shares(rotation([endpoint(0, { weight: 100 }), endpoint(1, { weight: 300 })]), 20_000, 'w');
    expect(weighted[1]).toBeGreaterThan(0.6);
    const even = shares(rotation([endpoint(0), endpoint(1), endpoint(2), endpoint(3)]), 20_000, 'even');
    for (const s of even) expect(s).toBeCloseTo(0.25, 1);
  });

  it('skips what it is told to, drawing again, and walks the list once the draws keep missing', () => {
    const eps = [endpoint(0), endpoint(1), endpoint(2), endpoint(3)];
    const r = rotation(eps);
    const onlyTwo = (e: Endpoint) => e.key !== 's/i2';
    // six draws miss (all on 0), then the walk: one random number over the one left; the same for
    // the second choice, which lands on the same instance
    const missThenWalk = [0, 0, 0, 0, 0, 0, 0.5];
    expect(r.pick(sequence(...missThenWalk, ...missThenWalk), onlyTwo)).toBe(2);
    // a hit on the third draw, then the second draw (a hit at once)
    const notFirst = (e: Endpoint) => e.key === 's/i0';
    expect(r.pick(sequence(0, 0, 0.3, 0.8), notFirst)).toBe(1);
    // every instance skipped: -1
    expect(r.pick(sequence(0, 0, 0, 0, 0, 0), () => true)).toBe(-1);
  });

  it('shares the picks by weight among the instances left when most are skipped', () => {
    const eps = [endpoint(0), endpoint(1), endpoint(2, { weight: 100 }), endpoint(3, { weight: 300 }), endpoint(4)];
    const left = new Set(['s/i2', 's/i3']);
    const s = shares(rotation(eps), 20_000, 'skip', (e) => !left.has(e.key));
    expect((s[0] as number) + (s[1] as number) + (s[4] as number)).toBe(0);
    expect(s[3]).toBeGreaterThan(0.6);
    expect(s[2]).toBeGreaterThan(0.1);
  });

  it('walks past instances of weight 0 and skipped ones, by weight', () => {
    // weights 0, 100, 200, 100; skipped: 3. Walk over 1 (100) and 2 (200): x = random * 300
    const r = rotation([
      endpoint(0, { weight: 0 }),
      endpoint(1),
      endpoint(2, { weight: 200, inFlight: 4 }),
      endpoint(3),
    ]);
    const skip = (e: Endpoint) => e.key === 's/i3';
    const miss = [0.99, 0.99, 0.99, 0.99, 0.99, 0.99]; // every draw lands on 3
    // both choices walk: the first to x, the second to y; both land alike, so the first is kept
    const walk = (x: number) => r.pick(sequence(...miss, x, ...miss, x), skip);
    expect(walk(0.1)).toBe(1); // 30 < 100
    expect(walk(0.5)).toBe(2); // 150: past 1, 50 < 200
    expect(walk(0.9999999)).toBe(2);
    // the two choices differ (2 first, then 1): 1 has fewer in flight per unit of weight (0 against 4/200)
    expect(r.pick(sequence(...miss, 0.9, ...miss, 0.1), skip)).toBe(1);
  });

  it('walks by the weights of what is left: the weight of a skipped instance does not count, boundaries exact', () => {
    // weights 100, 300, 100, 100; skipped: 3 (the draws all land on it). Walk over 0, 1, 2: total 500
    const r = rotation([endpoint(0), endpoint(1, { weight: 300 }), endpoint(2), endpoint(3)]);
    const skip = (e: Endpoint) => e.key === 's/i3';
    const miss = [0.99, 0.99, 0.99, 0.99, 0.99, 0.99];
    const walk = (x: number) => r.pick(sequence(...miss, x, ...miss, x), skip);
    expect(walk(0.19)).toBe(0); // 95 < 100 (counting 3's weight, 114 would not be)
    expect(walk(0.2)).toBe(1); // 100 exactly: not below 0's 100, the next one
    expect(walk(0.79)).toBe(1); // 395: past 0 (100), 295 < 300
    expect(walk(0.81)).toBe(2); // 405: past 0 and 1, 5 < 100
  });

  it('gives a new instance a small share next to warm ones, and every new instance its full weight', () => {
    const r = rotation([endpoint(0), endpoint(1, { ageMs: 0 })]);
    expect(r.weights[0]).toBe(100);
    expect(r.weights[1]).toBeCloseTo(10); // the floor: 0.1 of its weight
    const allNew = rotation([endpoint(0, { ageMs: 0 }), endpoint(1, { ageMs: 1000 })]);
    expect([...allNew.weights]).toEqual([100, 100]);
  });

  it('is valid until the next warm-up step, and for ever once every instance is warm', () => {
    expect(rotation([endpoint(0), endpoint(1)]).validUntil).toBe(Number.POSITIVE_INFINITY);
    // a 60 s window in 64 steps: rebuilt after 937.5 ms
    expect(rotation([endpoint(0), endpoint(1, { ageMs: 1000 })]).validUntil).toBe(NOW + WINDOW / 64);
    // the shortest window decides; never more often than every 10 ms
    expect(rotation([endpoint(0), endpoint(1, { ageMs: 0, warmupMs: 6400 })]).validUntil).toBe(NOW + 100);
    expect(rotation([endpoint(0), endpoint(1, { ageMs: 0, warmupMs: 64 })]).validUntil).toBe(NOW + 10);
    // an instance exactly at the end of its window is warm
    expect(rotation([endpoint(0), endpoint(1, { ageMs: 640, warmupMs: 640 })]).validUntil).toBe(
      Number.POSITIVE_INFINITY,
    );
    // an instance past its window does not count, even when its window is short
    expect(rotation([endpoint(0), endpoint(1, { ageMs: 700, warmupMs: 640 })]).validUntil).toBe(
      Number.POSITIVE_INFINITY,
    );
  });

  it('treats equal weights as uniform only when they are equal and positive', () => {
    // equal: index = floor(random * n), one multiplication
    const equal = rotation([endpoint(0, { weight: 50 }), endpoint(1, { weight: 50 }), endpoint(2, { weight: 50 })]);
    expect(equal.pick(sequence(0.34, 0.34), undefined)).toBe(1);
    // unequal: by cumulative weights (50, 150, 200): 0.34 * 200 = 68 -> index 1; 0.8 * 200 = 160 -> 2
    const unequal = rotation([endpoint(0, { weight: 50 }), endpoint(1, { weight: 100 }), endpoint(2, { weight: 50 })]);
    expect(unequal.pick(sequence(0.8, 0.8), undefined)).toBe(2);
    expect(unequal.pick(sequence(0.2, 0.2), undefined)).toBe(0);
    // a first weight of 0 makes no uniform rotation, whatever follows
    const zeroFirst = rotation([endpoint(0, { weight: 0 }), endpoint(1, { weight: 0 }), endpoint(2)]);
    expect(zeroFirst.pick(sequence(0.1, 0.1), undefined)).toBe(2);
  });
});
