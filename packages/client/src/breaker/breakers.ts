// One opossum circuit breaker per instance origin. An open circuit takes the instance out of
// rotation; after resetTimeoutMs opossum lets one probe through (half-open) and closes on success.

import CircuitBreaker from 'opossum';

export interface BreakerOptions {
  /** Failure percentage over the rolling window that opens the circuit. Default 50. */
  readonly errorThresholdPercentage: number;
  /** Requests in the window before the circuit may open at all. Default 10. */
  readonly volumeThreshold: number;
  /** How long an open circuit stays open before a probe, in ms. Default 5000. */
  readonly resetTimeoutMs: number;
  /** Length of the rolling window, in ms. Default 10000. */
  readonly rollingWindowMs: number;
}

type Attempt = () => Promise<unknown>;

export class Breakers {
  readonly #options: BreakerOptions;
  readonly #byOrigin = new Map<string, CircuitBreaker<[Attempt], unknown>>();

  constructor(options: BreakerOptions) {
    this.#options = options;
  }

  /** The breaker of `origin`, created on first use. */
  of(origin: string): CircuitBreaker<[Attempt], unknown> {
    let breaker = this.#byOrigin.get(origin);
    if (breaker === undefined) {
      breaker = new CircuitBreaker((attempt: Attempt) => attempt(), {
        // lossless has its own overall timeout: no timer per call
        timeout: false,
        errorThresholdPercentage: this.#options.errorThresholdPercentage,
        volumeThreshold: this.#options.volumeThreshold,
        resetTimeout: this.#options.resetTimeoutMs,
        rollingCountTimeout: this.#options.rollingWindowMs,
        rollingCountBuckets: 10,
        // no latency list per call, no snapshot every bucket: nothing reads them, and opossum sorts
        // the whole window's latencies for each snapshot and on every failure
        rollingPercentilesEnabled: false,
        enableSnapshots: false,
        name: origin,
      });
      this.#byOrigin.set(origin, breaker);
    }
    return breaker;
  }

  /** True when `origin` must not get traffic now: open and not yet due for its half-open probe. */
  isOpen(origin: string): boolean {
    const breaker = this.#byOrigin.get(origin);
    return breaker?.opened === true && !breaker.halfOpen;
  }

  state(origin: string): 'closed' | 'open' | 'half-open' {
    const breaker = this.#byOrigin.get(origin);
    if (breaker === undefined || breaker.closed) return 'closed';
    return breaker.halfOpen ? 'half-open' : 'open';
  }

  shutdown(): void {
    for (const breaker of this.#byOrigin.values()) breaker.shutdown();
    this.#byOrigin.clear();
  }
}
