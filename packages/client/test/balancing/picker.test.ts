import { describe, expect, it } from 'vitest';
import { type Candidate, pickWeightedP2C } from '../../src/balancing/picker.js';
import { seeded, seedOf } from '../helpers.js';

/** A random source that returns `values` in order (and fails the test when it runs out). */
function sequence(...values: number[]): () => number {
  let i = 0;
  return () => {
    if (i >= values.length) throw new Error('the picker drew more random numbers than expected');
    return values[i++] as number;
  };
}

function shares(candidates: readonly Candidate[], picks: number, label: string): number[] {
  const random = seeded(seedOf(label));
  const counts = candidates.map(() => 0);
  for (let i = 0; i < picks; i++) {
    const index = pickWeightedP2C(candidates, random);
    expect(index).toBeGreaterThanOrEqual(0);
    counts[index] = (counts[index] as number) + 1;
  }
  return counts.map((c) => c / picks);
}

describe('pickWeightedP2C', () => {
  it.each<[string, Candidate[]]>([
    ['no candidate', []],
    ['one candidate of weight 0', [{ weight: 0, inFlight: 0 }]],
    [
      'only zero weights',
      [
        { weight: 0, inFlight: 0 },
        { weight: 0, inFlight: 3 },
        { weight: 0, inFlight: 0 },
      ],
    ],
  ])('returns -1 for %s', (_, candidates) => {
    expect(pickWeightedP2C(candidates, seeded(seedOf('none')))).toBe(-1);
  });

  it('returns the only candidate whatever the random source and its load', () => {
    const random = seeded(seedOf('single'));
    for (let i = 0; i < 100; i++) expect(pickWeightedP2C([{ weight: 3, inFlight: 50 }], random)).toBe(0);
    expect(pickWeightedP2C([{ weight: 1, inFlight: 0 }], () => 0.999_999)).toBe(0);
  });

  it('never picks a candidate of weight 0 among others', () => {
    const candidates = [
      { weight: 0, inFlight: 0 },
      { weight: 1, inFlight: 100 },
      { weight: 0, inFlight: 0 },
    ];
    const random = seeded(seedOf('zero weight'));
    for (let i = 0; i < 1000; i++) expect(pickWeightedP2C(candidates, random)).toBe(1);
    // the edges of the random range too
    expect(pickWeightedP2C(candidates, sequence(0, 0.999_999_999))).toBe(1);
  });

  it.each<[string, number[]]>([
    ['2:3:5', [2, 3, 5]],
    ['1:1:1:1', [1, 1, 1, 1]],
    ['10:30', [10, 30]],
  ])('with nothing in flight, shares follow the weights %s (10,000 seeded picks, ±5 %%)', (label, weights) => {
    const candidates = weights.map((weight) => ({ weight, inFlight: 0 }));
    const total = weights.reduce((a, b) => a + b, 0);
    const got = shares(candidates, 10_000, label);
    weights.forEach((w, i) => {
      const expected = w / total;
      expect(Math.abs((got[i] as number) - expected) / expected, `share of candidate ${i}`).toBeLessThan(0.05);
    });
  });

  it('keeps the first draw on a tie (equal load per weight)', () => {
    const candidates = [
      { weight: 1, inFlight: 2 },
      { weight: 1, inFlight: 2 },
    ];
    expect(pickWeightedP2C(candidates, sequence(0.1, 0.9))).toBe(0);
    expect(pickWeightedP2C(candidates, sequence(0.9, 0.1))).toBe(1);
  });

  it('of the two drawn, keeps the one with fewer requests in flight', () => {
    const candidates = [
      { weight: 1, inFlight: 5 },
      { weight: 1, inFlight: 0 },
    ];
    expect(pickWeightedP2C(candidates, sequence(0.1, 0.9))).toBe(1);
    expect(pickWeightedP2C(candidates, sequence(0.9, 0.1))).toBe(1);
    // both draws land on the busy one: it is the only choice
    expect(pickWeightedP2C(candidates, sequence(0.1, 0.2))).toBe(0);
  });

  it('compares load per unit of weight, not absolute load', () => {
    // 4 in flight on weight 10 (0.4 per unit) beats 1 in flight on weight 1 (1 per unit)
    const candidates = [
      { weight: 1, inFlight: 1 },
      { weight: 10, inFlight: 4 },
    ];
    expect(pickWeightedP2C(candidates, sequence(0.01, 0.5))).toBe(1);
    expect(pickWeightedP2C(candidates, sequence(0.5, 0.01))).toBe(1);
  });

  it('steers traffic away from a loaded instance: P(busy) is P(both draws busy)', () => {
    // equal weights, one busy: the busy one is picked only when both draws land on it (1/4)
    const got = shares(
      [
        { weight: 1, inFlight: 5 },
        { weight: 1, inFlight: 0 },
      ],
      10_000,
      'busy',
    );
    expect(Math.abs((got[0] as number) - 0.25) / 0.25).toBeLessThan(0.05);
    expect(Math.abs((got[1] as number) - 0.75) / 0.75).toBeLessThan(0.05);
  });
});
