// The instances of one service in rotation and the structure the balancer picks from. It is built
// when the list changes (a registry update, an ejection) or a warm-up step passes, never per request,
// so that a pick costs the same with 3 instances or 1000: two weighted draws by binary search over
// cumulative weights (one multiplication when every weight is equal), then the power-of-two-choices
// comparison (picker.ts) on requests in flight.
//
// Instances a request must not use (already tried by its retries, or in an open circuit) are skipped
// by drawing again: the draws then follow the weights of the instances left, exactly as a list
// filtered first would. After a few misses (most of the fleet skipped) it walks the list once.

import type { Endpoint } from '../discovery/table.js';
import { effectiveWeights, instanceAge, type WarmupCurve } from './warmup.js';

/** Draws that may miss before a pick walks the list. */
const DRAWS = 6;
/** A warm-up ramp is followed in this many steps per window (the weights are rebuilt at each). */
const STEPS_PER_WINDOW = 64;
/** Weights are not rebuilt more often than this while instances warm up, in ms. */
const MIN_STEP_MS = 10;

export class Rotation {
  /** The list this was built from (identity: a new list means a new rotation). */
  readonly endpoints: readonly Endpoint[];
  /** Effective weights: registry weight times warm-up factor. */
  readonly weights: Float64Array;
  /** Monotonic time after which the warm-up has moved on and the weights must be built again. */
  readonly validUntil: number;
  readonly #cumulative: Float64Array;
  readonly #total: number;
  /** True when every weight is the same positive number: a draw is one multiplication. */
  readonly #uniform: boolean;

  constructor(
    endpoints: readonly Endpoint[],
    now: number,
    wallNow: number,
    defaultWindowMs: number,
    curve: WarmupCurve,
  ) {
    this.endpoints = endpoints;
    const n = endpoints.length;
    const effective = effectiveWeights(endpoints, now, wallNow, defaultWindowMs, curve);
    this.weights = new Float64Array(n);
    this.#cumulative = new Float64Array(n);
    let total = 0;
    let uniform = n > 0;
    let step = Number.POSITIVE_INFINITY;
    for (let i = 0; i < n; i++) {
      const w = effective[i] as number;
      const e = endpoints[i] as Endpoint;
      this.weights[i] = w;
      total += Math.max(w, 0);
      this.#cumulative[i] = total;
      if (w !== this.weights[0] || !(w > 0)) uniform = false;
      // still in its window (ramping, or not yet because every instance is new): rebuild after a step
      const windowMs = e.warmupMs ?? defaultWindowMs;
      if (instanceAge(e, now, wallNow) < windowMs) step = Math.min(step, windowMs / STEPS_PER_WINDOW);
    }
    this.#total = total;
    this.#uniform = uniform;
    this.validUntil = step === Number.POSITIVE_INFINITY ? step : now + Math.max(step, MIN_STEP_MS);
  }

  /**
   * Index of the chosen endpoint, or -1 when none is usable: two weighted draws among those `skip`
   * lets through, and the one with fewer requests in flight per unit of weight (the first on a tie).
   */
  pick(random: () => number, skip: ((e: Endpoint) => boolean) | undefined): number {
    const a = this.#draw(random, skip);
    if (a < 0 || this.endpoints.length === 1) return a;
    const b = this.#draw(random, skip);
    if (b === a || b < 0) return a;
    const ea = this.endpoints[a] as Endpoint;
    const eb = this.endpoints[b] as Endpoint;
    return eb.inFlight / (this.weights[b] as number) < ea.inFlight / (this.weights[a] as number) ? b : a;
  }

  #draw(random: () => number, skip: ((e: Endpoint) => boolean) | undefined): number {
    if (!(this.#total > 0)) return -1;
    for (let tries = 0; tries < DRAWS; tries++) {
      const i = this.#uniform ? Math.floor(random() * this.endpoints.length) : this.#search(random() * this.#total);
      if (skip === undefined || !skip(this.endpoints[i] as Endpoint)) return i;
    }
    return this.#walk(random, skip);
  }

  /** The first index whose cumulative weight exceeds x (zero weights are never chosen). */
  #search(x: number): number {
    const c = this.#cumulative;
    let lo = 0;
    let hi = c.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((c[mid] as number) > x) hi = mid;
      else lo = mid + 1;
    }
    // floating point: x may round up to the total; step back over trailing zero weights
    while (lo > 0 && !((this.weights[lo] as number) > 0)) lo--;
    return lo;
  }

  /** A weighted draw among the endpoints `skip` lets through, by walking the list. */
  #walk(random: () => number, skip: ((e: Endpoint) => boolean) | undefined): number {
    let total = 0;
    for (let i = 0; i < this.endpoints.length; i++) {
      const w = this.weights[i] as number;
      if (w > 0 && !skip?.(this.endpoints[i] as Endpoint)) total += w;
    }
    if (!(total > 0)) return -1;
    let x = random() * total;
    let last = -1;
    for (let i = 0; i < this.endpoints.length; i++) {
      const w = this.weights[i] as number;
      if (!(w > 0) || skip?.(this.endpoints[i] as Endpoint)) continue;
      if (x < w) return i;
      x -= w;
      last = i;
    }
    return last;
  }
}
