// One opossum circuit breaker per instance origin. An open circuit takes the instance out of
// rotation; after resetTimeoutMs one probe goes through (half-open) and a success closes it.
// The breakers share one timer for their rolling windows (opossum's rotateBucketController), and an
// origin's breaker is forgotten once the origin has left the registry: pod addresses change on every
// rollout, and a breaker per address ever seen would grow without bound.
//
// Requests do not go through opossum's fire(), which costs two promises, two clock reads and an
// argument copy per call (about 1.5 µs, more than the rest of the client): admit() asks the state,
// success() and failure() report the outcome through opossum's own events ('fire', 'success',
// 'failure'), which keep its rolling counts and close a half-open circuit; the rule that opens a
// circuit is opossum's, applied in failure(). The successes of a closed circuit (nearly every
// request) are not emitted one by one: two events with their argument lists and a latency entry
// each, per request. They are counted on the breaker and added to the current bucket of opossum's
// rolling window (its status.window) before anything reads it: the next failure, the next rotation.

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

/** opossum's breaker, with the successes not yet added to its rolling window. */
class Breaker extends CircuitBreaker<[Attempt], unknown> {
  unrecorded = 0;
}

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
  readonly #byOrigin = new Map<string, Breaker>();
  /** Half-open origins whose one probe is under way. */
  readonly #probing = new Set<string>();
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

  /**
   * May a request go to `origin` now? Yes when its circuit is closed; when it is half-open, yes for
   * one probe at a time. Creates the breaker on first use.
   */
  admit(origin: string): boolean {
    const breaker = this.#breakerOf(origin);
    if (breaker.closed) return true;
    if (!breaker.halfOpen || this.#probing.has(origin)) return false;
    this.#probing.add(origin);
    return true;
  }

  /** A request admitted to `origin` succeeded (closes a half-open circuit). */
  success(origin: string): void {
    const breaker = this.#byOrigin.get(origin);
    if (breaker === undefined) return;
    if (breaker.closed) {
      breaker.unrecorded++;
      return;
    }
    this.#probing.delete(origin);
    breaker.emit('fire');
    breaker.emit('success', undefined, 0);
  }

  /**
   * A request admitted to `origin` was abandoned by its caller before it had an outcome: nothing is
   * counted, and a half-open circuit's probe slot is free again for the next request.
   */
  abandoned(origin: string): void {
    this.#probing.delete(origin);
  }

  /**
   * A request admitted to `origin` failed: counted, and the circuit opens as opossum's own rule says
   * (enough requests in the window and a failure share above the threshold, or any failure of the
   * half-open probe), or at once after enough connection failures in a row.
   */
  failure(origin: string, error: Error & { code?: string }): void {
    const breaker = this.#byOrigin.get(origin);
    if (breaker === undefined) return;
    this.#probing.delete(origin);
    record(breaker);
    breaker.emit('fire');
    breaker.emit('failure', error, 0);
    if (this.#connectionFailure(origin, error.code)) return;
    const stats = breaker.stats;
    if (stats.fires < this.#options.volumeThreshold && !breaker.halfOpen) return;
    if ((stats.failures / stats.fires) * 100 > this.#options.errorThresholdPercentage || breaker.halfOpen)
      breaker.open();
  }

  /** The breaker of `origin`, created on first use (opossum's type stays out of the public API). */
  #breakerOf(origin: string): Breaker {
    return this.#byOrigin.get(origin) ?? this.#create(origin);
  }

  // (apart from #breakerOf: the closures here capture `origin`, and a function with such closures
  // allocates their context on every call, on every request's path)
  #create(origin: string): Breaker {
    const breaker = new Breaker((attempt: Attempt) => attempt(), {
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
      this.#bucketTimer = setInterval(() => {
        for (const b of this.#byOrigin.values()) record(b);
        this.#buckets.emit('rotate');
      }, bucketMs);
      this.#bucketTimer.unref();
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
    this.#probing.delete(origin);
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

  /** Counts connection failures in a row; true when it opened the circuit. */
  #connectionFailure(origin: string, code: string | undefined): boolean {
    if (this.#options.connectionFailures === 0 || code === undefined || !CONNECTION_FAILURES.has(code)) return false;
    const inARow = (this.#connectionFailures.get(origin) ?? 0) + 1;
    if (inARow < this.#options.connectionFailures) {
      this.#connectionFailures.set(origin, inARow);
      return false;
    }
    this.#connectionFailures.delete(origin);
    this.#byOrigin.get(origin)?.open();
    return true;
  }

  /** `origin` answered: its connection failures are no longer in a row. */
  answered(origin: string): void {
    if (this.#connectionFailures.size > 0) this.#connectionFailures.delete(origin);
  }

  /** True when `origin` must not get traffic now: open, or half-open with its probe under way. */
  isOpen(origin: string): boolean {
    const breaker = this.#byOrigin.get(origin);
    if (breaker === undefined || breaker.closed) return false;
    return !breaker.halfOpen || this.#probing.has(origin);
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
    this.#probing.clear();
    this.#stopTimer();
  }

  #stopTimer(): void {
    clearInterval(this.#bucketTimer);
    this.#bucketTimer = undefined;
  }
}

/** Adds the successes counted on `breaker` to the current bucket of its rolling window. */
function record(breaker: Breaker): void {
  if (breaker.unrecorded === 0) return;
  const bucket = breaker.status.window[0] as { fires: number; successes: number } | undefined;
  if (bucket !== undefined) {
    bucket.fires += breaker.unrecorded;
    bucket.successes += breaker.unrecorded;
  }
  breaker.unrecorded = 0;
}

function publishCircuit(origin: string, state: 'open' | 'half-open' | 'closed'): void {
  if (circuitChannel.hasSubscribers) circuitChannel.publish({ origin, state });
}
