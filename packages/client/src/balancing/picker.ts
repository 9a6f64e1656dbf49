// Weighted power-of-two-choices: draw two candidates with probability proportional to their
// effective weight, keep the one with fewer requests in flight per unit of weight (the first on a
// tie). With nothing in flight each instance's share is exactly its weight share, which is what the
// warm-up curve needs; under load it steers away from slow instances, which smooth weighted round
// robin does not (docs/benchmarks.md has the measurement).

export interface Candidate {
  readonly weight: number;
  readonly inFlight: number;
}

/** Index of the chosen candidate, or -1 when none has a positive weight. */
export function pickWeightedP2C(candidates: readonly Candidate[], random: () => number = Math.random): number {
  const n = candidates.length;
  if (n === 0) return -1;
  if (n === 1) return (candidates[0] as Candidate).weight > 0 ? 0 : -1;
  let total = 0;
  for (let i = 0; i < n; i++) total += (candidates[i] as Candidate).weight;
  if (!(total > 0)) return -1;
  const a = draw(candidates, total, random());
  const b = draw(candidates, total, random());
  if (a === b) return a;
  const ca = candidates[a] as Candidate;
  const cb = candidates[b] as Candidate;
  return cb.inFlight / cb.weight < ca.inFlight / ca.weight ? b : a;
}

function draw(candidates: readonly Candidate[], total: number, r: number): number {
  let x = r * total;
  for (let i = 0; i < candidates.length; i++) {
    const w = (candidates[i] as Candidate).weight;
    if (x < w) return i;
    x -= w;
  }
  // floating point: the last one with a positive weight
  for (let i = candidates.length - 1; i >= 0; i--) if ((candidates[i] as Candidate).weight > 0) return i;
  return 0;
}
