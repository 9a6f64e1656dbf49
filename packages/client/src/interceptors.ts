// The client as three undici interceptors, composed on one Agent (outermost first):
//   retry   - attempts on other instances, only what is safe to retry, bounded by attempts, a
//             budget, backoff with jitter (p-retry), the caller's abort and an overall timeout;
//   balance - turns `http://<service>/...` into an instance of the service (discovery + warm-up
//             weighted power-of-two-choices), counts requests in flight, and ejects an instance
//             the moment a response carries the offline marker;
//   breaker - one opossum circuit per instance origin.
// Each works alone: without `balance`, `retry` retries on the same origin and `breaker` guards any
// origin.

import pRetry from 'p-retry';
import type { Dispatcher } from 'undici';
import { pickWeightedP2C } from './balancing/picker.js';
import { effectiveWeights, type WarmupCurve } from './balancing/warmup.js';
import type { Breakers } from './breaker/breakers.js';
import { markerChannel, pickChannel, retryChannel } from './channels.js';
import type { Endpoint, ServiceTable } from './discovery/table.js';
import {
  AllCircuitsOpenError,
  CircuitOpenError,
  NoInstanceError,
  RequestTimeoutError,
  RetryBudgetExhaustedError,
} from './errors.js';
import { type LegacyHandler, toLegacy } from './handler.js';
import { isReplayable, isRetryable, type RetryBudget } from './retry/policy.js';

type DispatchFn = Dispatcher['dispatch'];
type Interceptor = (dispatch: DispatchFn) => DispatchFn;
type Opts = Dispatcher.DispatchOptions & { [kAttempt]?: AttemptContext; [kSent]?: () => void };

/** Carried in the dispatch options from `retry` to `balance`: which instances this request tried. */
export const kAttempt = Symbol('lossless.attempt');
/**
 * Carried in the dispatch options of one attempt: called when the request was written. undici's
 * compose() drops `onRequestSent` between interceptors, so the innermost one reports it this way.
 */
export const kSent = Symbol('lossless.sent');

export interface AttemptContext {
  readonly service: string;
  readonly tried: string[];
  readonly excluded: Set<string>;
}

// ---------------------------------------------------------------------------------------------
// balance

export interface BalanceDeps {
  readonly table: ServiceTable;
  readonly breakers: Breakers | undefined;
  readonly markerHeader: string;
  readonly curve: WarmupCurve;
  readonly defaultWarmupMs: number;
  readonly serviceOf: (origin: string) => string | undefined;
  readonly now: () => number;
  readonly wallNow: () => number;
  readonly random: () => number;
}

export function balance(deps: BalanceDeps): Interceptor {
  return (dispatch) => (opts: Opts, handler) => {
    const service = deps.serviceOf(String(opts.origin));
    if (service === undefined) return dispatch(opts, handler);
    const state = deps.table.get(service);
    if (state.loaded) return route(deps, dispatch, service, opts, handler);
    state.ready.then(() => route(deps, dispatch, service, opts, handler));
    return true;
  };
}

function route(
  deps: BalanceDeps,
  dispatch: DispatchFn,
  service: string,
  opts: Opts,
  handler: Dispatcher.DispatchHandler,
): boolean {
  const legacy = toLegacy(handler);
  const endpoints = deps.table.get(service).endpoints;
  const ctx = opts[kAttempt];
  const candidates: Endpoint[] = [];
  let openCircuits = 0;
  for (const e of endpoints) {
    if (ctx?.excluded.has(e.key)) continue;
    if (deps.breakers?.isOpen(e.origin)) {
      openCircuits++;
      continue;
    }
    candidates.push(e);
  }
  const effective = effectiveWeights(candidates, deps.now(), deps.wallNow(), deps.defaultWarmupMs, deps.curve);
  const weights: { weight: number; inFlight: number }[] = [];
  for (let i = 0; i < candidates.length; i++)
    weights.push({ weight: effective[i] as number, inFlight: (candidates[i] as Endpoint).inFlight });
  const index = pickWeightedP2C(weights, deps.random);
  if (index < 0) {
    const error =
      openCircuits > 0 && candidates.length === 0
        ? new AllCircuitsOpenError(
            service,
            endpoints.filter((e) => deps.breakers?.isOpen(e.origin)).map((e) => e.instance.id),
          )
        : new NoInstanceError(service, ctx?.tried ?? []);
    legacy.onError?.(error);
    return true;
  }
  const endpoint = candidates[index] as Endpoint;
  ctx?.tried.push(endpoint.instance.id);
  ctx?.excluded.add(endpoint.key);
  if (pickChannel.hasSubscribers) {
    const weight = (weights[index] as { weight: number }).weight;
    pickChannel.publish({
      service,
      instance: endpoint.instance.id,
      origin: endpoint.origin,
      weight,
      warmupFactor: endpoint.instance.weight > 0 ? weight / endpoint.instance.weight : 1,
      inFlight: endpoint.inFlight,
      attempt: ctx?.tried.length ?? 1,
    });
  }
  endpoint.inFlight++;
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    endpoint.inFlight--;
  };
  const marker = deps.markerHeader;
  return dispatch({ ...opts, origin: endpoint.origin }, {
    onConnect: (abort: (err?: Error) => void, context?: object) => legacy.onConnect?.(abort, context),
    onRequestSent: () => {
      opts[kSent]?.();
      legacy.onRequestSent?.();
    },
    onBodySent: (chunk: unknown) => legacy.onBodySent?.(chunk),
    onHeaders: (status: number, raw: Buffer[], resume: () => void, text: string) => {
      if (hasHeader(raw, marker)) {
        if (markerChannel.hasSubscribers)
          markerChannel.publish({ service, instance: endpoint.instance.id, origin: endpoint.origin, status });
        deps.table.eject(service, endpoint.key, endpoint.origin);
      }
      return legacy.onHeaders?.(status, raw, resume, text) ?? true;
    },
    onData: (chunk: Buffer) => legacy.onData?.(chunk) ?? true,
    onComplete: (trailers: Buffer[]) => {
      release();
      legacy.onComplete?.(trailers);
    },
    onError: (error: Error) => {
      release();
      legacy.onError?.(error);
    },
    onUpgrade: (status: number, raw: Buffer[], socket: unknown) => {
      release();
      legacy.onUpgrade?.(status, raw, socket);
    },
  } as unknown as Dispatcher.DispatchHandler);
}

// ---------------------------------------------------------------------------------------------
// breaker

export function breaker(breakers: Breakers, markerHeader: string): Interceptor {
  return (dispatch) => (opts: Opts, handler) => {
    const origin = String(opts.origin);
    const legacy = toLegacy(handler);
    const circuit = breakers.of(origin);
    let reached = false;
    circuit
      .fire(
        () =>
          new Promise<void>((resolve, reject) => {
            reached = true;
            let status = 0;
            let marked = false;
            dispatch(opts, {
              onConnect: (abort: (err?: Error) => void, context?: object) => legacy.onConnect?.(abort, context),
              onRequestSent: () => {
                opts[kSent]?.();
                legacy.onRequestSent?.();
              },
              onBodySent: (chunk: unknown) => legacy.onBodySent?.(chunk),
              onHeaders: (s: number, raw: Buffer[], resume: () => void, text: string) => {
                breakers.answered(origin);
                status = s;
                marked = hasHeader(raw, markerHeader);
                return legacy.onHeaders?.(s, raw, resume, text) ?? true;
              },
              onData: (chunk: Buffer) => legacy.onData?.(chunk) ?? true,
              onComplete: (trailers: Buffer[]) => {
                legacy.onComplete?.(trailers);
                // a 5xx is a failure of the instance, except the marked 503 of one going offline
                if (status >= 500 && !(status === 503 && marked)) reject(new Error(`HTTP ${status}`));
                else resolve();
              },
              onError: (error: Error & { code?: string }) => {
                // a circuit that must open opens before the error is passed on (and retried)
                breakers.failed(origin, error.code);
                legacy.onError?.(error);
                reject(error);
              },
              onUpgrade: (s: number, raw: Buffer[], socket: unknown) => {
                legacy.onUpgrade?.(s, raw, socket);
                resolve();
              },
            } as unknown as Dispatcher.DispatchHandler);
          }),
      )
      .catch(() => {
        // failures were already passed on; only an open circuit (nothing sent) is reported here
        if (!reached) legacy.onError?.(new CircuitOpenError(origin));
      });
    return true;
  };
}

// ---------------------------------------------------------------------------------------------
// retry

export interface RetryDeps {
  readonly attempts: number;
  readonly budget: RetryBudget;
  readonly minDelayMs: number;
  readonly maxDelayMs: number;
  readonly timeoutMs: number;
  readonly idempotencyHeader: string;
  readonly markerHeader: string;
  readonly serviceOf: (origin: string) => string | undefined;
}

export function retry(deps: RetryDeps): Interceptor {
  return (dispatch) => (opts: Opts, handler) => {
    deps.budget.onRequest();
    new RetryRun(deps, dispatch, opts, toLegacy(handler)).start();
    return true;
  };
}

interface AttemptFailure extends Error {
  retryable?: boolean;
  budgetTaken?: boolean;
  /** The request was never written: retrying it adds no load to any provider, so it spends no budget. */
  unsent?: boolean;
}

class RetryRun {
  readonly #deps: RetryDeps;
  readonly #dispatch: DispatchFn;
  readonly #opts: Opts;
  readonly #upstream: LegacyHandler;
  readonly #ctx: AttemptContext;
  /** Created on first use: most requests never abort nor retry. */
  #stopController: AbortController | undefined;
  readonly #replayable: boolean;
  readonly #idempotent: boolean;
  #currentAbort: ((reason?: Error) => void) | undefined;
  #committed = false;
  #finished = false;
  #attempts = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(deps: RetryDeps, dispatch: DispatchFn, opts: Opts, upstream: LegacyHandler) {
    this.#deps = deps;
    this.#dispatch = dispatch;
    this.#upstream = upstream;
    const origin = String(opts.origin);
    this.#ctx = { service: deps.serviceOf(origin) ?? origin, tried: [], excluded: new Set() };
    this.#opts = { ...opts, [kAttempt]: this.#ctx };
    this.#replayable = isReplayable(opts.body);
    this.#idempotent = hasIdempotencyKey(opts.headers, deps.idempotencyHeader);
  }

  get #stop(): AbortController {
    this.#stopController ??= new AbortController();
    return this.#stopController;
  }

  #stopped(): boolean {
    return this.#stopController?.signal.aborted === true;
  }

  start(): void {
    this.#upstream.onConnect?.((reason?: Error) => this.#abort(reason ?? new Error('aborted')), {});
    if (this.#deps.timeoutMs > 0) {
      this.#timer = setTimeout(
        () => this.#abort(new RequestTimeoutError(this.#ctx.service, this.#deps.timeoutMs, this.#ctx.tried)),
        this.#deps.timeoutMs,
      );
      this.#timer.unref();
    }
    if (this.#stopped()) return; // aborted by the caller in onConnect: #abort answered already
    // the first attempt runs outside p-retry, which costs an options copy, validation and an async
    // loop per call; only a failed first attempt enters it (as its attempt 1, so that shouldRetry,
    // the budget and the backoff are unchanged)
    this.#attempt().then(
      () => {},
      (first: Error) => this.#retry(first),
    );
  }

  #retry(first: Error): void {
    let calls = 0;
    pRetry(() => (calls++ === 0 ? Promise.reject(first) : this.#attempt()), {
      retries: this.#deps.attempts - 1,
      minTimeout: this.#deps.minDelayMs,
      maxTimeout: this.#deps.maxDelayMs,
      factor: 2,
      randomize: true,
      signal: this.#stop.signal,
      shouldRetry: ({ error }) => {
        const failure = error as AttemptFailure;
        if (failure.retryable !== true || this.#stopped()) return false;
        if (failure.budgetTaken === true || failure.unsent === true || this.#deps.budget.tryAcquire()) {
          if (retryChannel.hasSubscribers)
            retryChannel.publish({
              service: this.#ctx.service,
              attempt: this.#attempts,
              tried: [...this.#ctx.tried],
              reason: (error as Error & { code?: string }).code ?? error.message,
            });
          return true;
        }
        throw new RetryBudgetExhaustedError(this.#ctx.service, this.#ctx.tried, error);
      },
    }).then(
      // committed: the response streams to the caller; the overall timeout still covers its body
      () => {},
      (error: Error) => this.#fail(this.#stopped() ? (this.#stop.signal.reason as Error) : error),
    );
  }

  #abort(reason: Error): void {
    if (this.#finished) return;
    if (this.#committed) {
      this.#currentAbort?.(reason);
      return;
    }
    this.#stop.abort(reason);
    this.#currentAbort?.(reason);
    // nothing may be connected yet (waiting for the registry's first list, or in a backoff): answer now
    this.#fail(reason);
  }

  #fail(error: Error): void {
    clearTimeout(this.#timer);
    if (this.#finished || this.#committed) return;
    this.#finished = true;
    this.#upstream.onError?.(error);
  }

  /** One attempt: resolves once the response is handed to the caller, rejects when it failed before. */
  #attempt(): Promise<void> {
    this.#attempts++;
    return new Promise<void>((resolve, reject) => {
      let sent = false;
      let discard = false;
      let discarded: AttemptFailure | undefined;
      const fail = (error: AttemptFailure): void => {
        this.#currentAbort = undefined;
        reject(error);
      };
      const method = this.#opts.method;
      const markSent = (): void => {
        sent = true;
      };
      const attemptOpts: Opts = { ...this.#opts, [kSent]: markSent };
      this.#dispatch(attemptOpts, {
        onConnect: (abort: (err?: Error) => void) => {
          this.#currentAbort = abort;
          if (this.#stopped()) abort(this.#stop.signal.reason as Error);
        },
        onRequestSent: markSent,
        onHeaders: (status: number, raw: Buffer[], resume: () => void, text: string) => {
          if (this.#finished) return false;
          if (status === 503 && hasHeader(raw, this.#deps.markerHeader) && this.#mayRetryNow()) {
            // the instance is going offline and did not handle it: read the answer away, try elsewhere
            discard = true;
            discarded = Object.assign(new Error(`HTTP 503 with ${this.#deps.markerHeader} from a draining instance`), {
              retryable: true,
              budgetTaken: true,
            });
            return true;
          }
          this.#committed = true;
          resolve();
          return this.#upstream.onHeaders?.(status, raw, resume, text) ?? true;
        },
        onData: (chunk: Buffer) => (discard ? true : (this.#upstream.onData?.(chunk) ?? true)),
        onComplete: (trailers: Buffer[]) => {
          if (discard) {
            fail(discarded as AttemptFailure);
            return;
          }
          this.#finished = true;
          clearTimeout(this.#timer);
          this.#upstream.onComplete?.(trailers);
        },
        onError: (error: Error & { code?: string }) => {
          if (this.#committed) {
            this.#finished = true;
            clearTimeout(this.#timer);
            this.#upstream.onError?.(error);
            return;
          }
          const failure = error as AttemptFailure;
          failure.unsent = !sent;
          failure.retryable =
            this.#replayable &&
            isRetryable({ method, hasIdempotencyKey: this.#idempotent, phase: sent ? 'sent' : 'not-sent', error });
          fail(failure);
        },
        onUpgrade: (status: number, raw: Buffer[], socket: unknown) => {
          this.#committed = true;
          this.#finished = true;
          resolve();
          this.#upstream.onUpgrade?.(status, raw, socket);
        },
      } as unknown as Dispatcher.DispatchHandler);
    });
  }

  /** For a marked 503: retry only when an attempt and a budget token are left and the body can be replayed. */
  #mayRetryNow(): boolean {
    return (
      this.#replayable && this.#attempts < this.#deps.attempts && !this.#stopped() && this.#deps.budget.tryAcquire()
    );
  }
}

function hasIdempotencyKey(headers: Dispatcher.DispatchOptions['headers'], name: string): boolean {
  if (headers === undefined || headers === null) return false;
  if (Array.isArray(headers)) {
    for (let i = 0; i < headers.length; i += 2) if (String(headers[i]).toLowerCase() === name) return true;
    return false;
  }
  if (typeof (headers as Iterable<unknown>)[Symbol.iterator] === 'function' && !(typeof headers === 'string')) {
    for (const [k] of headers as Iterable<[string, unknown]>) if (k.toLowerCase() === name) return true;
    return false;
  }
  for (const k of Object.keys(headers)) if (k.toLowerCase() === name) return true;
  return false;
}

/** Looks for a header in undici's raw header list without decoding the others. */
export function hasHeader(raw: readonly (Buffer | string)[] | undefined, lowerName: string): boolean {
  if (raw === undefined) return false;
  for (let i = 0; i < raw.length; i += 2) {
    const key = raw[i] as Buffer | string;
    if (key.length === lowerName.length && key.toString('latin1').toLowerCase() === lowerName) return true;
  }
  return false;
}
