// One opossum circuit breaker per instance origin. An open circuit takes the instance out of
// rotation; after resetTimeoutMs opossum lets one probe through (half-open) and closes on success.
// The breakers share one timer for their rolling windows (opossum's rotateBucketController), and an
// origin's breaker is forgotten once the origin has left the registry: pod addresses change on every
// rollout, and a breaker per address ever seen would grow without bound.

import { EventEmitter } from 'node:events';
import CircuitBreaker from 'opossum';
import { circuitChannel } from '../channels.js';

export interface BreakerOptions {
  /** Failure percentage over the rolling window that opens the circuit. Default 50. */
  readonly errorThresholdPercentage: number;
  /** Requests in the window before the circuit may open at all. Default 10. */
  readonly volumeThreshold: number;
  /** How long an open circuit stays open before a probe, in ms. Default 5000. */
  readonly resetTimeoutMs: number;
  /** Length of the rolling window, in ms. Default 10000. */
  readonly rollingWindowMs: number;
  /** Connection failures in a row that open the circuit at once; 0 turns the rule off. Default 5. */
  readonly connectionFailures: number;
}

type Attempt = () => Promise<unknown>;

/**
 * An origin's circuit, as the breaker interceptor uses it. (opossum's CircuitBreaker, kept out of the
 * public types: a user of @lossless/client needs neither opossum's types nor @types/opossum.)
 */
export interface Circuit {
  /** Runs the attempt, or rejects at once without running it while the circuit is open. */
  fire(attempt: () => Promise<unknown>): Promise<unknown>;
}

/** Buckets of a rolling window. */
const BUCKETS = 10;

// Connection failures in a row (refused, reset, unreachable, connect timeout) open the circuit at
// once (options.connectionFailures): the instance is gone (a crashed process), and the failure share
// alone would wait until the failures outnumber the successes still in the rolling window, while every
// request sent there needs a retry. Envoy's outlier detection ejects after 5 consecutive
// local-origin failures too.
const CONNECTION_FAILURES = new Set([
  'ECONNREFUSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ECONNRESET',
  'UND_ERR_SOCKET',
  'EPIPE',
]);

export class Breakers {
  readonly #options: BreakerOptions;
  readonly #byOrigin = new Map<string, CircuitBreaker<[Attempt], unknown>>();
  /** Connection failures in a row, per origin. */
  readonly #connectionFailures = new Map<string, number>();
  /** Origins whose circuit is open or half-open: when none is, a pick checks no circuit. */
  readonly #notClosed = new Set<string>();
  /** Emits 'rotate' for every breaker's rolling window: one timer for all of them. */
  readonly #buckets = new EventEmitter().setMaxListeners(0);
  #bucketTimer: NodeJS.Timeout | undefined;

  constructor(options: BreakerOptions) {
    this.#options = options;
  }

  /** The breaker of `origin`, created on first use. */
  of(origin: string): Circuit {
    let breaker = this.#byOrigin.get(origin);
    if (breaker === undefined) {
      breaker = new CircuitBreaker((attempt: Attempt) => attempt(), {
        // lossless has its own overall timeout: no timer per call
        timeout: false,
        errorThresholdPercentage: this.#options.errorThresholdPercentage,
        volumeThreshold: this.#options.volumeThreshold,
        resetTimeout: this.#options.resetTimeoutMs,
        rollingCountTimeout: this.#options.rollingWindowMs,
        rollingCountBuckets: BUCKETS,
        // no latency list per call, no snapshot every bucket: nothing reads them, and opossum sorts
        // the whole window's latencies for each snapshot and on every failure
        rollingPercentilesEnabled: false,
        enableSnapshots: false,
        rotateBucketController: this.#buckets,
        name: origin,
      });
      breaker.on('open', () => {
        this.#notClosed.add(origin);
        publishCircuit(origin, 'open');
      });
      breaker.on('halfOpen', () => publishCircuit(origin, 'half-open'));
      breaker.on('close', () => {
        this.#notClosed.delete(origin);
        publishCircuit(origin, 'closed');
      });
      this.#byOrigin.set(origin, breaker);
      if (this.#bucketTimer === undefined) {
        const bucketMs = Math.max(1, Math.floor(this.#options.rollingWindowMs / BUCKETS));
        this.#bucketTimer = setInterval(() => this.#buckets.emit('rotate'), bucketMs);
        this.#bucketTimer.unref();
      }
    }
    return breaker;
  }

  /** The origin left the registry: its breaker goes (a new one starts closed if it ever comes back). */
  forget(origin: string): void {
    const breaker = this.#byOrigin.get(origin);
    if (breaker === undefined) return;
    breaker.shutdown();
    this.#byOrigin.delete(origin);
    this.#notClosed.delete(origin);
    this.#connectionFailures.delete(origin);
    if (this.#byOrigin.size === 0) this.#stopTimer();
  }

  /** Breakers held now (one per origin in use). */
  get size(): number {
    return this.#byOrigin.size;
  }

  /** True when some circuit is open or half-open. */
  anyOpen(): boolean {
    return this.#notClosed.size > 0;
  }

  /** An attempt on `origin` failed: counts connection failures in a row, and opens the circuit after enough. */
  failed(origin: string, code: string | undefined): void {
    if (this.#options.connectionFailures === 0 || code === undefined || !CONNECTION_FAILURES.has(code)) return;
    const inARow = (this.#connectionFailures.get(origin) ?? 0) + 1;
    if (inARow < this.#options.connectionFailures) {
      this.#connectionFailures.set(origin, inARow);
      return;
    }
    this.#connectionFailures.delete(origin);
    this.#byOrigin.get(origin)?.open();
  }

  /** `origin` answered: its connection failures are no longer in a row. */
  answered(origin: string): void {
    if (this.#connectionFailures.size > 0) this.#connectionFailures.delete(origin);
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
    this.#connectionFailures.clear();
    this.#notClosed.clear();
    this.#stopTimer();
  }

  #stopTimer(): void {
    clearInterval(this.#bucketTimer);
    this.#bucketTimer = undefined;
  }
}

function publishCircuit(origin: string, state: 'open' | 'half-open' | 'closed'): void {
  if (circuitChannel.hasSubscribers) circuitChannel.publish({ origin, state });
}
