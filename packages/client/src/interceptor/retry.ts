// retry: attempts on other instances, only what is safe to retry (retry/policy.ts), bounded by
// attempts, a budget, backoff with jitter (p-retry), the caller's abort and an overall timeout.
// The caller gets one controller for the whole request (the run); its abort, pause and resume act on
// the attempt under way. An attempt commits once a response that is not retried starts: from then on
// the response streams to the caller, and the overall timeout still covers its body.

import type { Duplex } from 'node:stream';
import pRetry from 'p-retry';
import type { Dispatcher } from 'undici';
import { retryChannel } from '../channels.js';
import { RequestTimeoutError, RetryBudgetExhaustedError } from '../errors.js';
import { Deadlines, type Timed } from '../retry/deadlines.js';
import { isReplayable, isRetryable, neverProcessed, type RetryBudget } from '../retry/policy.js';
import { type AttemptContext, kAttempt } from './balance.js';
import type { Controller, DispatchFn, Headers, Interceptor } from './pass-through.js';

export interface RetryDeps {
  readonly attempts: number;
  readonly budget: RetryBudget;
  readonly minDelayMs: number;
  readonly maxDelayMs: number;
  readonly timeoutMs: number;
  readonly idempotencyHeader: string;
  readonly markerHeader: string;
  readonly serviceOf: (origin: string) => string | undefined;
  /**
   * The clock of the overall timeout, in ms: performance.now unless given (the timer that reads it
   * is a real one, so a clock given here must move with real time).
   */
  readonly now?: () => number;
}

export function retry(deps: RetryDeps): Interceptor {
  const deadlines =
    deps.timeoutMs > 0 ? new Deadlines(deps.timeoutMs, deps.now ?? performance.now.bind(performance)) : undefined;
  return (dispatch) => (opts, handler) => {
    deps.budget.onRequest();
    new RetryRun(deps, deadlines, dispatch, opts, handler).start();
    return true;
  };
}

interface AttemptFailure extends Error {
  retryable?: boolean;
  budgetTaken?: boolean;
  /** The request was never written: retrying it adds no load to any provider, so it spends no budget. */
  unsent?: boolean;
}

/** What a request tried before its first pick (balance sets a new list at each pick). */
const NONE_TRIED: readonly string[] = Object.freeze([]);

/** One request: the caller's controller, the context balance reads, and an entry of the timeout list. */
class RetryRun implements Controller, AttemptContext, Timed {
  readonly service: string;
  readonly named: boolean;
  tried: readonly string[] = NONE_TRIED;
  deadline = 0;
  prev: Timed | undefined;
  next: Timed | undefined;
  readonly #deps: RetryDeps;
  readonly #deadlines: Deadlines | undefined;
  readonly #dispatch: DispatchFn;
  readonly #opts: Dispatcher.DispatchOptions;
  readonly #upstream: Dispatcher.DispatchHandler;
  readonly #replayable: boolean;
  readonly #idempotent: boolean;
  /** Created on first use: most requests never abort nor retry. */
  #stopController: AbortController | undefined;
  /** The controller of the attempt under way. */
  #attempt: Controller | undefined;
  #paused = false;
  #committed = false;
  #finished = false;
  #attempts = 0;

  constructor(
    deps: RetryDeps,
    deadlines: Deadlines | undefined,
    dispatch: DispatchFn,
    opts: Dispatcher.DispatchOptions,
    upstream: Dispatcher.DispatchHandler,
  ) {
    this.#deps = deps;
    this.#deadlines = deadlines;
    this.#dispatch = dispatch;
    this.#upstream = upstream;
    const origin = String(opts.origin);
    const service = deps.serviceOf(origin);
    this.service = service ?? origin;
    this.named = service !== undefined;
    this.#opts = opts;
    this.#replayable = isReplayable(opts.body);
    this.#idempotent = hasIdempotencyKey(opts.headers, deps.idempotencyHeader);
  }

  // --- the caller's controller ---------------------------------------------------------------

  get aborted(): boolean {
    return this.#stopController?.signal.aborted === true;
  }

  get reason(): Error | null {
    return this.aborted ? (this.#stop.signal.reason as Error) : null;
  }

  get paused(): boolean {
    return this.#paused;
  }

  get rawHeaders(): Controller['rawHeaders'] {
    return this.#attempt?.rawHeaders;
  }

  get rawTrailers(): Controller['rawTrailers'] {
    return this.#attempt?.rawTrailers;
  }

  abort(reason?: Error): void {
    const error = reason ?? new Error('aborted');
    if (this.#finished) return;
    if (this.#committed) {
      this.#attempt?.abort(error);
      return;
    }
    this.#stop.abort(error);
    this.#attempt?.abort(error);
    // nothing may be connected yet (waiting for the registry's first list, or in a backoff): answer now
    this.fail(error);
  }

  pause(): void {
    this.#paused = true;
    this.#attempt?.pause();
  }

  resume(): void {
    this.#paused = false;
    this.#attempt?.resume();
  }

  // --- the run -------------------------------------------------------------------------------

  start(): void {
    // no context object: undici's own client passes null too
    this.#upstream.onRequestStart?.(this, null);
    if (this.aborted) return; // aborted by the caller in onRequestStart: answered already
    // timed from here: a caller waits on this request (in a backoff, nothing else may keep the process alive)
    this.#deadlines?.add(this);
    // the first attempt runs outside p-retry, which costs an options copy, validation and an async
    // loop per call, and without a promise; only a failed first attempt enters p-retry (as its
    // attempt 1, so that shouldRetry, the budget and the backoff are unchanged)
    this.#attempts++;
    this.#dispatch(this.#opts, new AttemptHandler(this, undefined));
  }

  expire(): void {
    this.abort(new RequestTimeoutError(this.service, this.#deps.timeoutMs, this.tried));
  }

  get #stop(): AbortController {
    this.#stopController ??= new AbortController();
    return this.#stopController;
  }

  /** The first attempt failed: p-retry decides whether and when the next ones run. */
  retryAfter(first: Error): void {
    let calls = 0;
    pRetry(() => (calls++ === 0 ? Promise.reject(first) : this.#run()), {
      retries: this.#deps.attempts - 1,
      minTimeout: this.#deps.minDelayMs,
      maxTimeout: this.#deps.maxDelayMs,
      factor: 2,
      randomize: true,
      signal: this.#stop.signal,
      shouldRetry: ({ error }) => {
        const failure = error as AttemptFailure;
        if (failure.retryable !== true || this.aborted) return false;
        if (failure.budgetTaken === true || failure.unsent === true || this.#deps.budget.tryAcquire()) {
          if (retryChannel.hasSubscribers)
            retryChannel.publish({
              service: this.service,
              attempt: this.#attempts,
              tried: [...this.tried],
              reason: (error as Error & { code?: string }).code ?? error.message,
            });
          return true;
        }
        throw new RetryBudgetExhaustedError(this.service, this.tried, error);
      },
    }).then(
      () => {},
      (error: Error) => this.fail(this.aborted ? (this.#stop.signal.reason as Error) : error),
    );
  }

  /** One more attempt: resolves once its response is handed to the caller, rejects when it failed before. */
  #run(): Promise<void> {
    this.#attempts++;
    return new Promise<void>((resolve, reject) => {
      this.#dispatch(this.#opts, new AttemptHandler(this, { resolve, reject }));
    });
  }

  // --- called by the attempts ----------------------------------------------------------------

  get upstream(): Dispatcher.DispatchHandler {
    return this.#upstream;
  }

  get committed(): boolean {
    return this.#committed;
  }

  get finished(): boolean {
    return this.#finished;
  }

  get markerHeader(): string {
    return this.#deps.markerHeader;
  }

  started(controller: Controller): void {
    this.#attempt = controller;
    if (this.aborted) controller.abort(this.#stop.signal.reason as Error);
    else if (this.#paused) controller.pause();
  }

  commit(): void {
    this.#committed = true;
  }

  /** The response reached its end (or failed after it was committed): the request is over. */
  finish(): void {
    this.#finished = true;
    this.#deadlines?.remove(this);
  }

  /** The request failed before a response was committed: answer the caller once. */
  fail(error: Error): void {
    this.#deadlines?.remove(this);
    if (this.#finished || this.#committed) return;
    this.#finished = true;
    this.#upstream.onResponseError?.(this, error);
  }

  /** Classifies a failed attempt for shouldRetry. */
  failure(error: Error & { code?: string }, sent: boolean): AttemptFailure {
    const failure = error as AttemptFailure;
    // an HTTP/2 stream the server refused was written but never processed: no provider worked on it
    failure.unsent = !sent || neverProcessed(error);
    failure.retryable =
      this.#replayable &&
      isRetryable({
        method: this.#opts.method,
        hasIdempotencyKey: this.#idempotent,
        phase: sent ? 'sent' : 'not-sent',
        error,
      });
    return failure;
  }

  /** For a marked 503: retry only when an attempt and a budget token are left and the body can be replayed. */
  mayRetryNow(): boolean {
    return this.#replayable && this.#attempts < this.#deps.attempts && !this.aborted && this.#deps.budget.tryAcquire();
  }
}

interface Settle {
  readonly resolve: () => void;
  readonly reject: (error: AttemptFailure) => void;
}

class AttemptHandler implements Dispatcher.DispatchHandler {
  /** What balance reads: the instances this request tried. */
  readonly [kAttempt]: AttemptContext;
  readonly #run: RetryRun;
  /** A retry's promise in p-retry; none for the first attempt, which runs outside it. */
  readonly #settle: Settle | undefined;
  #sent = false;
  /** A marked 503 read away before trying elsewhere. */
  #discarded: AttemptFailure | undefined;

  constructor(run: RetryRun, settle: Settle | undefined) {
    this[kAttempt] = run;
    this.#run = run;
    this.#settle = settle;
  }

  #resolve(): void {
    this.#settle?.resolve();
  }

  #reject(failure: AttemptFailure): void {
    if (this.#settle === undefined) this.#run.retryAfter(failure);
    else this.#settle.reject(failure);
  }

  onRequestStart(controller: Controller): void {
    this.#run.started(controller);
  }

  onRequestSent(): void {
    this.#sent = true;
    this.#run.upstream.onRequestSent?.();
  }

  onBodySent(chunk: Buffer): void {
    this.#run.upstream.onBodySent?.(chunk);
  }

  onResponseStarted(): void {
    this.#run.upstream.onResponseStarted?.();
  }

  onResponseStart(controller: Controller, statusCode: number, headers: Headers, statusMessage?: string): void {
    const run = this.#run;
    if (run.finished) {
      controller.abort(new Error('the request is over'));
      return;
    }
    if (statusCode < 200) {
      run.upstream.onResponseStart?.(run, statusCode, headers, statusMessage);
      return;
    }
    if (statusCode === 503 && headers[run.markerHeader] !== undefined && run.mayRetryNow()) {
      // the instance is going offline and did not handle it: read the answer away, try elsewhere
      this.#discarded = Object.assign(new Error(`HTTP 503 with ${run.markerHeader} from a draining instance`), {
        retryable: true,
        budgetTaken: true,
      });
      return;
    }
    run.commit();
    this.#resolve();
    run.upstream.onResponseStart?.(run, statusCode, headers, statusMessage);
  }

  onResponseData(_controller: Controller, chunk: Buffer): void {
    if (this.#discarded === undefined) this.#run.upstream.onResponseData?.(this.#run, chunk);
  }

  onResponseEnd(_controller: Controller, trailers: Headers): void {
    if (this.#discarded !== undefined) {
      this.#reject(this.#discarded);
      return;
    }
    this.#run.finish();
    this.#run.upstream.onResponseEnd?.(this.#run, trailers);
  }

  onResponseError(_controller: Controller, error: Error & { code?: string }): void {
    const run = this.#run;
    if (run.committed) {
      run.finish();
      run.upstream.onResponseError?.(run, error);
      return;
    }
    this.#reject(this.#discarded ?? run.failure(error, this.#sent));
  }

  onRequestUpgrade(_controller: Controller, statusCode: number, headers: Headers, socket: Duplex): void {
    const run = this.#run;
    run.commit();
    run.finish();
    this.#resolve();
    run.upstream.onRequestUpgrade?.(run, statusCode, headers, socket);
  }
}

function hasIdempotencyKey(headers: Dispatcher.DispatchOptions['headers'], name: string): boolean {
  if (headers === undefined || headers === null) return false;
  if (Array.isArray(headers)) {
    // fetch passes [[name, value], ...]; request() may pass [name, value, name, value, ...]
    if (Array.isArray(headers[0])) {
      for (const pair of headers as unknown as [unknown, unknown][])
        if (String(pair[0]).toLowerCase() === name) return true;
      return false;
    }
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
