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
import { type Controller, type DispatchFn, ENDED, type Headers, type Interceptor } from './pass-through.js';

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
  return (dispatch) => {
    const client: RetryClient = { deps, deadlines, dispatch };
    return (opts, handler) => {
      deps.budget.onRequest();
      new RetryRun(client, opts, handler).start();
      return true;
    };
  };
}

/** What every request of a client shares (one field of each run, not three). */
interface RetryClient {
  readonly deps: RetryDeps;
  readonly deadlines: Deadlines | undefined;
  readonly dispatch: DispatchFn;
}

interface AttemptFailure extends Error {
  retryable?: boolean;
  budgetTaken?: boolean;
  /** The request was never written: retrying it adds no load to any provider, so it spends no budget. */
  unsent?: boolean;
}

/** The promise p-retry waits on for a retry (the first attempt runs outside p-retry). */
interface Settle {
  readonly resolve: () => void;
  readonly reject: (error: AttemptFailure) => void;
}

/** What a request tried before its first pick. */
const NONE_TRIED: readonly string[] = Object.freeze([]);
/** The options of a run that is over (#release). */
const RELEASED: Dispatcher.DispatchOptions = Object.freeze({ path: '/', method: 'GET' });

// A run's flags, in one field: the run is the largest object a request adds, and undici keeps it
// (as the controller of the caller's response) as long as the caller's body, so each field counts.
const PAUSED = 1;
const COMMITTED = 2;
const FINISHED = 4;
/** The attempt under way was written (undici's onRequestSent). */
const SENT = 8;
const REPLAYABLE = 16;
const IDEMPOTENT = 32;

/**
 * One request: the caller's controller, the context balance reads, an entry of the timeout list, and
 * the handler of each of its attempts. Attempts never overlap (the next one is dispatched only after
 * the last callback of the one before it, or once the run is over, when nothing reaches the caller),
 * so one handler serves them all: what is an attempt's own (written or not, a marked 503 read away,
 * the promise p-retry waits on) is set anew when it is dispatched.
 */
class RetryRun implements Controller, AttemptContext, Timed, Dispatcher.DispatchHandler {
  readonly service: string;
  readonly named: boolean;
  /** What was tried: nothing, one instance id, or a list of them (see `tried`). */
  #tried: string | readonly string[] = NONE_TRIED;
  deadline = 0;
  prev: Timed | undefined;
  next: Timed | undefined;
  readonly #client: RetryClient;
  /** Let go of once the request is over (#release). */
  #opts: Dispatcher.DispatchOptions;
  #upstream: Dispatcher.DispatchHandler;
  /** Created on first use: most requests never abort nor retry. */
  #stopController: AbortController | undefined;
  /** The controller of the attempt under way. */
  #attempt: Controller | undefined;
  /** The attempt under way is a retry: p-retry waits on this. */
  #settle: Settle | undefined;
  /** The attempt under way answered a marked 503, read away before trying elsewhere. */
  #discarded: AttemptFailure | undefined;
  #flags: number;
  #attempts = 0;

  constructor(client: RetryClient, opts: Dispatcher.DispatchOptions, upstream: Dispatcher.DispatchHandler) {
    this.#client = client;
    this.#upstream = upstream;
    const origin = String(opts.origin);
    const service = client.deps.serviceOf(origin);
    this.service = service ?? origin;
    this.named = service !== undefined;
    this.#opts = opts;
    this.#flags =
      (isReplayable(opts.body) ? REPLAYABLE : 0) |
      (hasIdempotencyKey(opts.headers, client.deps.idempotencyHeader) ? IDEMPOTENT : 0);
  }

  /** What balance reads from the handler it is given: the instances this request tried. */
  get [kAttempt](): AttemptContext {
    return this;
  }

  get tried(): readonly string[] {
    const tried = this.#tried;
    return typeof tried === 'string' ? [tried] : tried;
  }

  picked(id: string): void {
    const tried = this.#tried;
    this.#tried = tried === NONE_TRIED ? id : [...this.tried, id];
  }

  // --- the caller's controller ---------------------------------------------------------------

  get aborted(): boolean {
    return this.#stopController?.signal.aborted === true;
  }

  get reason(): Error | null {
    return this.aborted ? (this.#stop.signal.reason as Error) : null;
  }

  get paused(): boolean {
    return (this.#flags & PAUSED) !== 0;
  }

  get rawHeaders(): Controller['rawHeaders'] {
    return this.#attempt?.rawHeaders;
  }

  get rawTrailers(): Controller['rawTrailers'] {
    return this.#attempt?.rawTrailers;
  }

  abort(reason?: Error): void {
    const error = reason ?? new Error('aborted');
    if (this.#is(FINISHED)) return;
    if (this.#is(COMMITTED)) {
      this.#attempt?.abort(error);
      return;
    }
    this.#stop.abort(error);
    this.#attempt?.abort(error);
    // nothing may be connected yet (waiting for the registry's first list, or in a backoff): answer now
    this.#fail(error);
  }

  pause(): void {
    this.#flags |= PAUSED;
    this.#attempt?.pause();
  }

  resume(): void {
    this.#flags &= ~PAUSED;
    this.#attempt?.resume();
  }

  // --- the run -------------------------------------------------------------------------------

  start(): void {
    // no context object: undici's own client passes null too
    this.#upstream.onRequestStart?.(this, null);
    if (this.aborted) return; // aborted by the caller in onRequestStart: answered already
    // timed from here: a caller waits on this request (in a backoff, nothing else may keep the process alive)
    this.#client.deadlines?.add(this);
    // the first attempt runs outside p-retry, which costs an options copy, validation and an async
    // loop per call, and without a promise; only a failed first attempt enters p-retry (as its
    // attempt 1, so that shouldRetry, the budget and the backoff are unchanged)
    this.#dispatchAttempt(undefined);
  }

  expire(): void {
    this.abort(new RequestTimeoutError(this.service, this.#client.deps.timeoutMs, this.tried));
  }

  get #stop(): AbortController {
    this.#stopController ??= new AbortController();
    return this.#stopController;
  }

  #is(flag: number): boolean {
    return (this.#flags & flag) !== 0;
  }

  // One attempt at a time: the next is dispatched only from p-retry, after an await, once the one
  // before it failed with its last callback. That the last callback is the last the run hears of an
  // attempt is balance's and breaker's doing (PassThrough.last(): nothing passes after it); a
  // handler placed between them and the run would have to keep that promise too.
  #dispatchAttempt(settle: Settle | undefined): void {
    // (p-retry asks for no attempt once the run's signal is aborted; a run over by its last attempt's
    // failure asks for none either: this guards the released options)
    if (this.#is(FINISHED)) {
      settle?.reject(new Error('the request is over'));
      return;
    }
    this.#attempts++;
    this.#settle = settle;
    this.#discarded = undefined;
    this.#attempt = undefined;
    this.#flags &= ~SENT;
    this.#client.dispatch(this.#opts, this);
  }

  /** The first attempt failed: p-retry decides whether and when the next ones run. */
  #retryAfter(first: Error): void {
    const deps = this.#client.deps;
    let calls = 0;
    pRetry(
      () =>
        calls++ === 0
          ? Promise.reject(first)
          : new Promise<void>((resolve, reject) => this.#dispatchAttempt({ resolve, reject })),
      {
        retries: deps.attempts - 1,
        minTimeout: deps.minDelayMs,
        maxTimeout: deps.maxDelayMs,
        factor: 2,
        randomize: true,
        signal: this.#stop.signal,
        shouldRetry: ({ error }) => {
          const failure = error as AttemptFailure;
          if (failure.retryable !== true || this.aborted) return false;
          if (failure.budgetTaken === true || failure.unsent === true || deps.budget.tryAcquire()) {
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
      },
    ).then(
      () => {},
      (error: Error) => this.#fail(this.aborted ? (this.#stop.signal.reason as Error) : error),
    );
  }

  /**
   * The response reached its end (or failed after it was committed): the request is over. Returns
   * the caller's handler, for its last callback.
   */
  #finish(): Dispatcher.DispatchHandler {
    this.#flags |= FINISHED;
    this.#client.deadlines?.remove(this);
    return this.#release();
  }

  /** The request failed before a response was committed: answer the caller once. */
  #fail(error: Error): void {
    this.#client.deadlines?.remove(this);
    if (this.#is(FINISHED | COMMITTED)) return;
    this.#flags |= FINISHED;
    this.#release().onResponseError?.(this, error);
  }

  /**
   * Lets go of what only a request under way needs (the caller's handler and the dispatch options)
   * and returns the caller's handler. The run outlives its request as the controller of the caller's
   * response (undici's request handler and body keep it), and undici keeps that handler a while after
   * its end: what the run still reached would survive young collections with it and be promoted (the
   * options and their strings, about 100 bytes a request: test/bench/client-gc.mjs). Nothing reaches
   * the caller after its last callback.
   */
  #release(): Dispatcher.DispatchHandler {
    const upstream = this.#upstream;
    this.#upstream = ENDED;
    this.#opts = RELEASED;
    return upstream;
  }

  /** The attempt under way failed before its response was committed. */
  #attemptFailed(failure: AttemptFailure): void {
    if (this.#attempts === 1) this.#retryAfter(failure);
    else this.#settled()?.reject(failure);
  }

  /** The promise p-retry waits on for the attempt under way, let go of as it is settled. */
  #settled(): Settle | undefined {
    const settle = this.#settle;
    this.#settle = undefined;
    return settle;
  }

  #lateAbortReason(): Error {
    const reason = this.#stop.signal.reason as Error;
    return reason instanceof RequestTimeoutError ? new Error('the request is over') : reason;
  }

  /** Classifies a failed attempt for shouldRetry. */
  #failure(error: Error & { code?: string }): AttemptFailure {
    const failure = error as AttemptFailure;
    const sent = this.#is(SENT);
    // an HTTP/2 stream the server refused was written but never processed: no provider worked on it
    failure.unsent = !sent || neverProcessed(error);
    failure.retryable =
      this.#is(REPLAYABLE) &&
      isRetryable({
        method: this.#opts.method,
        hasIdempotencyKey: this.#is(IDEMPOTENT),
        phase: sent ? 'sent' : 'not-sent',
        error,
      });
    return failure;
  }

  /** For a marked 503: retry only when an attempt and a budget token are left and the body can be replayed. */
  #mayRetryNow(): boolean {
    const deps = this.#client.deps;
    return this.#is(REPLAYABLE) && this.#attempts < deps.attempts && !this.aborted && deps.budget.tryAcquire();
  }

  // --- the handler of the attempt under way --------------------------------------------------

  onRequestStart(controller: Controller): void {
    this.#attempt = controller;
    // an attempt that starts once the run was aborted (it waited for the registry's first list) is
    // ended before anything is written, with the caller's reason; a timeout's would count against an
    // instance that never had the request
    if (this.aborted) controller.abort(this.#lateAbortReason());
    else if (this.#is(PAUSED)) controller.pause();
  }

  onRequestSent(): void {
    this.#flags |= SENT;
    this.#upstream.onRequestSent?.();
  }

  onBodySent(chunk: Buffer): void {
    this.#upstream.onBodySent?.(chunk);
  }

  onResponseStarted(): void {
    this.#upstream.onResponseStarted?.();
  }

  onResponseStart(controller: Controller, statusCode: number, headers: Headers, statusMessage?: string): void {
    if (this.#is(FINISHED)) {
      controller.abort(new Error('the request is over'));
      return;
    }
    if (statusCode < 200) {
      this.#upstream.onResponseStart?.(this, statusCode, headers, statusMessage);
      return;
    }
    const marker = this.#client.deps.markerHeader;
    if (statusCode === 503 && headers[marker] !== undefined && this.#mayRetryNow()) {
      // the instance is going offline and did not handle it: read the answer away, try elsewhere
      this.#discarded = Object.assign(new Error(`HTTP 503 with ${marker} from a draining instance`), {
        retryable: true,
        budgetTaken: true,
      });
      return;
    }
    this.#flags |= COMMITTED;
    this.#settled()?.resolve();
    this.#upstream.onResponseStart?.(this, statusCode, headers, statusMessage);
  }

  onResponseData(_controller: Controller, chunk: Buffer): void {
    if (this.#discarded === undefined) this.#upstream.onResponseData?.(this, chunk);
  }

  onResponseEnd(_controller: Controller, trailers: Headers): void {
    if (this.#discarded !== undefined) {
      this.#attemptFailed(this.#discarded);
      return;
    }
    this.#finish().onResponseEnd?.(this, trailers);
  }

  onResponseError(_controller: Controller, error: Error & { code?: string }): void {
    if (this.#is(COMMITTED)) {
      this.#finish().onResponseError?.(this, error);
      return;
    }
    // an attempt ended by the caller's abort (or the overall timeout) carries the caller's reason:
    // nothing to classify, no retry, and the caller gets its reason back as it was
    this.#attemptFailed(this.#discarded ?? (this.aborted ? error : this.#failure(error)));
  }

  onRequestUpgrade(_controller: Controller, statusCode: number, headers: Headers, socket: Duplex): void {
    this.#flags |= COMMITTED;
    const upstream = this.#finish();
    this.#settled()?.resolve();
    upstream.onRequestUpgrade?.(this, statusCode, headers, socket);
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
