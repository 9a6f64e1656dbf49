// breaker: one opossum circuit per instance origin (breaker/breakers.ts). An attempt on an open
// circuit fails at once with LOSSLESS_ERR_CIRCUIT_OPEN, without a connection; a connection failure,
// or a 5xx other than the marked 503 of an instance going offline, counts as a failure.

import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Breakers } from '../breaker/breakers.js';
import { CircuitOpenError } from '../errors.js';
import { idleController } from './balance.js';
import { type Controller, type Headers, type Interceptor, PassThrough } from './pass-through.js';

export function breaker(breakers: Breakers, markerHeader: string): Interceptor {
  return (dispatch) => (opts, handler) => {
    const origin = String(opts.origin);
    let attempt: BreakerHandler | undefined;
    breakers
      .of(origin)
      .fire(
        () =>
          new Promise<void>((resolve, reject) => {
            attempt = new BreakerHandler(handler, breakers, origin, markerHeader, resolve, reject);
            dispatch(opts, attempt);
          }),
      )
      .catch(() => {
        // failures were passed on as they happened; only an open circuit (nothing dispatched) is reported here
        if (attempt === undefined) handler.onResponseError?.(idleController(), new CircuitOpenError(origin));
      });
    return true;
  };
}

class BreakerHandler extends PassThrough {
  readonly #breakers: Breakers;
  readonly #origin: string;
  readonly #marker: string;
  readonly #resolve: () => void;
  readonly #reject: (error: Error) => void;
  #failure: string | undefined;

  constructor(
    next: Dispatcher.DispatchHandler,
    breakers: Breakers,
    origin: string,
    marker: string,
    resolve: () => void,
    reject: (error: Error) => void,
  ) {
    super(next);
    this.#breakers = breakers;
    this.#origin = origin;
    this.#marker = marker;
    this.#resolve = resolve;
    this.#reject = reject;
  }

  override onResponseStart(controller: Controller, statusCode: number, headers: Headers, statusMessage?: string): void {
    if (statusCode >= 200) {
      this.#breakers.answered(this.#origin);
      // a 5xx is a failure of the instance, except the marked 503 of one going offline
      if (statusCode >= 500 && !(statusCode === 503 && headers[this.#marker] !== undefined))
        this.#failure = `HTTP ${statusCode}`;
    }
    this.next.onResponseStart?.(controller, statusCode, headers, statusMessage);
  }

  override onResponseEnd(controller: Controller, trailers: Headers): void {
    this.next.onResponseEnd?.(controller, trailers);
    if (this.#failure === undefined) this.#resolve();
    else this.#reject(new Error(this.#failure));
  }

  override onResponseError(controller: Controller, error: Error & { code?: string }): void {
    // a circuit that must open opens before the error is passed on (and retried elsewhere)
    this.#breakers.failed(this.#origin, error.code);
    this.next.onResponseError?.(controller, error);
    this.#reject(error);
  }

  override onRequestUpgrade(controller: Controller, statusCode: number, headers: Headers, socket: Duplex): void {
    this.next.onRequestUpgrade?.(controller, statusCode, headers, socket);
    this.#resolve();
  }
}
