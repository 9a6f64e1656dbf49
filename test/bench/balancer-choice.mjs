// Why weighted power-of-two-choices (P2C) and not smooth weighted round robin (SWRR): a seeded
// discrete-event simulation of one client spreading open-loop traffic over three instances, one of
// which turns slow (a GC pause, a noisy neighbour, a cold cache). Same arrivals, same service times,
// only the picking differs. Also checks that with nothing in flight P2C's shares equal the weights
// (what the warm-up curve needs).
//
//   node test/bench/balancer-choice.mjs [--json FILE]

import { writeFileSync } from 'node:fs';
import { pickWeightedP2C } from '@lossless/client/internal';
import { flags } from './report.mjs';

const args = flags({ json: { type: 'string' } }, 'Usage: node test/bench/balancer-choice.mjs [--json FILE]');

function prng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** SWRR (nginx): every pick adds each weight to its current value, takes the largest, subtracts the total. */
function swrr(weights) {
  const current = weights.map(() => 0);
  const total = weights.reduce((a, b) => a + b, 0);
  return () => {
    let best = 0;
    for (let i = 0; i < weights.length; i++) {
      current[i] += weights[i];
      if (current[i] > current[best]) best = i;
    }
    current[best] -= total;
    return best;
  };
}

/**
 * Instances with `workers` parallel workers and exponential service times (mean `meanMs`, one instance
 * `slowFactor` times slower); Poisson arrivals at `load` of the healthy capacity. Returns latencies.
 */
function simulate(
  pickerName,
  { requests = 200_000, workers = 4, meanMs = 5, slowFactor = 3, load = 0.5, seed = 42 } = {},
) {
  const random = prng(seed);
  const pickRandom = prng(seed + 1);
  const means = [meanMs, meanMs, meanMs * slowFactor];
  const capacity = (3 * workers) / meanMs; // requests per ms if all were fast
  const rate = capacity * load;
  const inFlight = [0, 0, 0];
  const busyUntil = means.map(() => new Array(workers).fill(0)); // per worker: free at
  const latencies = new Float64Array(requests);
  const share = [0, 0, 0];
  const round = swrr([1, 1, 1]);
  // completions are computed on arrival: FIFO per instance, first free worker
  const completions = []; // [time, instance] min-heap by time
  const push = (item) => {
    completions.push(item);
    let i = completions.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (completions[p][0] <= completions[i][0]) break;
      [completions[p], completions[i]] = [completions[i], completions[p]];
      i = p;
    }
  };
  const pop = () => {
    const top = completions[0];
    const last = completions.pop();
    if (completions.length > 0) {
      completions[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < completions.length && completions[l][0] < completions[m][0]) m = l;
        if (r < completions.length && completions[r][0] < completions[m][0]) m = r;
        if (m === i) break;
        [completions[m], completions[i]] = [completions[i], completions[m]];
        i = m;
      }
    }
    return top;
  };
  let now = 0;
  for (let n = 0; n < requests; n++) {
    now += -Math.log(1 - random()) / rate;
    while (completions.length > 0 && completions[0][0] <= now) inFlight[pop()[1]]--;
    const i =
      pickerName === 'swrr'
        ? round()
        : pickWeightedP2C(
            inFlight.map((f) => ({ weight: 1, inFlight: f })),
            pickRandom,
          );
    share[i]++;
    const service = -Math.log(1 - random()) * means[i];
    const workersOf = busyUntil[i];
    let w = 0;
    for (let k = 1; k < workers; k++) if (workersOf[k] < workersOf[w]) w = k;
    const start = Math.max(now, workersOf[w]);
    const done = start + service;
    workersOf[w] = done;
    inFlight[i]++;
    push([done, i]);
    latencies[n] = done - now;
  }
  const sorted = latencies.sort();
  const at = (q) => Math.round(sorted[Math.floor(q * (sorted.length - 1))] * 100) / 100;
  return {
    picker: pickerName,
    mean: Math.round((sorted.reduce((a, b) => a + b, 0) / sorted.length) * 100) / 100,
    p50: at(0.5),
    p99: at(0.99),
    p999: at(0.999),
    shareToSlow: Math.round((share[2] / requests) * 1000) / 10,
  };
}

function weightShares() {
  const random = prng(9);
  const weights = [100, 50, 10];
  const counts = [0, 0, 0];
  const n = 100_000;
  for (let k = 0; k < n; k++)
    counts[
      pickWeightedP2C(
        weights.map((w) => ({ weight: w, inFlight: 0 })),
        random,
      )
    ]++;
  const total = weights.reduce((a, b) => a + b, 0);
  return weights.map((w, i) => ({
    weight: w,
    expected: Math.round((w / total) * 1000) / 10,
    observed: Math.round((counts[i] / n) * 1000) / 10,
  }));
}

const results = ['swrr', 'p2c'].map((p) => simulate(p));
const shares = weightShares();
console.log(
  'One instance of three 3× slower; 4 workers each; Poisson arrivals at 50 % of healthy capacity; 200,000 requests.',
);
console.log('picker  mean ms   p50 ms   p99 ms  p99.9 ms  % to the slow instance');
for (const r of results)
  console.log(
    `${r.picker.padEnd(6)} ${String(r.mean).padStart(8)} ${String(r.p50).padStart(8)} ${String(r.p99).padStart(8)} ${String(r.p999).padStart(9)} ${String(r.shareToSlow).padStart(10)}`,
  );
console.log('\nP2C shares with nothing in flight (weights 100/50/10), 100,000 picks:');
for (const s of shares) console.log(`  weight ${s.weight}: expected ${s.expected} %, observed ${s.observed} %`);
if (args.json)
  writeFileSync(
    args.json,
    `${JSON.stringify({ results, shares, node: process.version, date: new Date().toISOString() }, null, 2)}\n`,
  );
