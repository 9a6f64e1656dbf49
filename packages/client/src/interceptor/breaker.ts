// breaker: one circuit per instance origin (breaker/breakers.ts). An attempt on an open circuit
// fails at once with LOSSLESS_ERR_CIRCUIT_OPEN, without a connection; an error (a connection failure,
// the overall timeout; not the caller's abort nor an exception of the caller's), or a 5xx other than
// the marked 503 of an instance going offline, counts as a failure.

import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Breakers } from '../breaker/breakers.js';
import { CircuitOpenError, RequestTimeoutError } from '../errors.js';
import { idleController } from './balance.js';
import { type Controller, type Headers, type Interceptor, PassThrough } from './pass-through.js';

export function breaker(breakers: Breakers, markerHeader: string): Interceptor {
  const shared: Shared = { breakers, marker: markerHeader };
  return (dispatch) => (opts, handler) => {
    const origin = String(opts.origin);
    if (!breakers.admit(origin)) {
      handler.onResponseError?.(idleController(), new CircuitOpenError(origin));
      return true;
    }
    return dispatch(opts, new BreakerHandler(handler, shared, origin));
  };
}

/** What the handlers of one client share (one field of each handler, not two). */
interface Shared {
  readonly breakers: Breakers;
  readonly marker: string;
}

class BreakerHandler extends PassThrough {
  readonly #shared: Shared;
  readonly #origin: string;
  #failure: string | undefined;
  /**
   * A handler above threw from a response callback: undici ends the request there and then, with that
   * exception (or, for a falsy one, an abort error of its own), and drops any error after it.
   */
  #threw = false;

  constructor(next: Dispatcher.DispatchHandler, shared: Shared, origin: string) {
    super(next);
    this.#shared = shared;
    this.#origin = origin;
  }

  override onResponseStart(controller: Controller, statusCode: number, headers: Headers, statusMessage?: string): void {
    if (statusCode >= 200) {
      this.#shared.breakers.answered(this.#origin);
      // a 5xx is a failure of the instance, except the marked 503 of one going offline
      if (statusCode >= 500 && !(statusCode === 503 && headers[this.#shared.marker] !== undefined))
        this.#failure = `HTTP ${statusCode}`;
    }
    try {
      this.next.onResponseStart?.(controller, statusCode, headers, statusMessage);
    } catch (error) {
      this.#threw = true;
      throw error;
    }
  }

  override onResponseData(controller: Controller, chunk: Buffer): void {
    try {
      this.next.onResponseData?.(controller, chunk);
    } catch (error) {
      this.#threw = true;
      throw error;
    }
  }

  // Each outcome is counted once: when a caller's onResponseEnd throws, undici reports the error with
  // onResponseError after it, and the instance must not be blamed for the caller's exception.
  override onResponseEnd(controller: Controller, trailers: Headers): void {
    if (this.ended) return;
    if (this.#failure === undefined) this.#shared.breakers.success(this.#origin);
    else this.#shared.breakers.failure(this.#origin, new Error(this.#failure));
    this.last().onResponseEnd?.(controller, trailers);
  }

  override onResponseError(controller: Controller, error: Error & { code?: string }): void {
    if (this.ended) return;
    const breakers = this.#shared.breakers;
    // a caller whose callback threw has undici end the request with its exception (not through the
    // controller): that says nothing of the instance, but the status it answered with still does
    if (this.#threw) {
      if (this.#failure === undefined) breakers.abandoned(this.#origin);
      else breakers.failure(this.#origin, new Error(this.#failure));
    }
    // aborted from above: the caller gave up (a cancelled or hedged request) or the request was over,
    // which says nothing of the instance; the overall timeout does (it did not answer in time)
    else if (controller?.aborted === true && !(error instanceof RequestTimeoutError)) breakers.abandoned(this.#origin);
    // a circuit that must open opens before the error is passed on (and retried elsewhere)
    else breakers.failure(this.#origin, error);
    this.last().onResponseError?.(controller, error);
  }

  override onRequestUpgrade(controller: Controller, statusCode: number, headers: Headers, socket: Duplex): void {
    if (this.ended) return;
    this.#shared.breakers.success(this.#origin);
    this.last().onRequestUpgrade?.(controller, statusCode, headers, socket);
  }
}
