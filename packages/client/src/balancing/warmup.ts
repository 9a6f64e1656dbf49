// Warm-up weights: a new instance's share ramps from a floor to full over its warm-up window, so that
// a cold process is not handed full traffic at once (Envoy's slow start; Dubbo's and Sermant's
// warm-up). Pure functions, so that the curve is unit-tested with a fake clock.

export interface WarmupCurve {
  /** Share of its weight an instance gets at age 0, in (0, 1]. Envoy's min_weight_percent. Default 0.1. */
  readonly floor: number;
  /** 1 = linear; larger ramps faster early (Envoy's aggression: factor = (age/window)^(1/aggression)). Default 1. */
  readonly aggression: number;
}

/** Share of its weight an instance of age `ageMs` gets, given its warm-up window. */
export function warmupFactor(ageMs: number, windowMs: number, curve: WarmupCurve): number {
  if (!(windowMs > 0) || ageMs >= windowMs) return 1;
  const t = Math.max(ageMs, 0) / windowMs;
  return Math.max(curve.floor, t ** (1 / curve.aggression));
}

export interface AgeFacts {
  /** Monotonic ms when this consumer first saw this registration. */
  readonly firstSeen: number;
  /** True when the instance was in the first list this consumer received (seen at start-up, not arriving). */
  readonly initial: boolean;
  /** The provider's registration time (wall clock ms), when it gave one. */
  readonly registeredAt: number | undefined;
}

/** How far a provider's registration time may be ahead of our clock and still be believed, in ms. */
export const CLOCK_SKEW_TOLERANCE_MS = 5000;
/** How much older than our first sight a registration may plausibly be (propagation delay), in ms. */
export const MAX_PROPAGATION_MS = 30_000;

/**
 * The age of an instance for warm-up. It starts when this consumer first saw the registration, and
 * is bounded by the provider's own registration time when that clock is plausible:
 *   - seen arriving: first-sight age, plus the propagation delay the provider's time shows (at most
 *     MAX_PROPAGATION_MS, so a provider clock far behind cannot skip the warm-up);
 *   - in the first list: the provider's age when plausible, else already warm (a consumer starting
 *     up must not ramp instances that have served for hours).
 * A registration time in the future beyond CLOCK_SKEW_TOLERANCE_MS is not believed.
 */
export function instanceAge(facts: AgeFacts, now: number, wallNow: number): number {
  const seenAge = now - facts.firstSeen;
  const providerAge =
    facts.registeredAt !== undefined && facts.registeredAt <= wallNow + CLOCK_SKEW_TOLERANCE_MS
      ? Math.max(0, wallNow - facts.registeredAt)
      : undefined;
  if (facts.initial) return providerAge ?? Number.POSITIVE_INFINITY;
  if (providerAge === undefined) return seenAge;
  return seenAge + Math.min(Math.max(providerAge - seenAge, 0), MAX_PROPAGATION_MS);
}

export interface WarmupSubject extends AgeFacts {
  readonly instance: { readonly weight: number };
  readonly warmupMs: number | undefined;
}

/**
 * The weight each candidate gets now: its registry weight times its warm-up factor. Warm-up only
 * shifts traffic toward warm instances, so when every candidate is new none ramps (full weights).
 */
export function effectiveWeights(
  candidates: readonly WarmupSubject[],
  now: number,
  wallNow: number,
  defaultWindowMs: number,
  curve: WarmupCurve,
): number[] {
  const ages: number[] = [];
  let allNew = true;
  for (const c of candidates) {
    const age = instanceAge(c, now, wallNow);
    if (age >= (c.warmupMs ?? defaultWindowMs)) allNew = false;
    ages.push(age);
  }
  const weights: number[] = [];
  for (let i = 0; i < candidates.length; i++) {
    const c = candidates[i] as WarmupSubject;
    weights.push(
      allNew
        ? c.instance.weight
        : c.instance.weight * warmupFactor(ages[i] as number, c.warmupMs ?? defaultWindowMs, curve),
    );
  }
  return weights;
}
