// The base of the client's handlers: every callback of undici's controller handler API passed on
// unchanged to the handler it wraps. balance, breaker and retry override only the callbacks they act on.

import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';

export type DispatchFn = Dispatcher['dispatch'];
export type Interceptor = (dispatch: DispatchFn) => DispatchFn;
export type Controller = Dispatcher.DispatchController;
export type Headers = Dispatcher.DispatchHandler extends { onResponseStart?(c: never, s: never, h: infer H): void }
  ? H
  : never;

/** Where a handler's callbacks go once its request is over: nowhere. */
export const ENDED: Dispatcher.DispatchHandler = Object.freeze({});

export class PassThrough implements Dispatcher.DispatchHandler {
  protected next: Dispatcher.DispatchHandler;

  constructor(next: Dispatcher.DispatchHandler) {
    this.next = next;
  }

  /**
   * The handler to pass the request's last callback to (its end, its error, an upgrade), let go of
   * here: undici keeps its request, and so this handler, a while after it ended, and what this
   * handler still reached would be kept with it (the handlers above, the retry run, the caller's
   * handler), survive young collections and be promoted: about 170 bytes a request
   * (test/bench/client-gc.mjs). A callback after the last one reaches nothing.
   */
  protected last(): Dispatcher.DispatchHandler {
    const next = this.next;
    this.next = ENDED;
    return next;
  }

  /** The request's last callback was passed on (see last()). */
  protected get ended(): boolean {
    return this.next === ENDED;
  }

  onRequestStart(controller: Controller, context: unknown): void {
    this.next.onRequestStart?.(controller, context);
  }

  onRequestUpgrade(controller: Controller, statusCode: number, headers: Headers, socket: Duplex): void {
    this.last().onRequestUpgrade?.(controller, statusCode, headers, socket);
  }

  onResponseStarted(): void {
    this.next.onResponseStarted?.();
  }

  onResponseStart(controller: Controller, statusCode: number, headers: Headers, statusMessage?: string): void {
    this.next.onResponseStart?.(controller, statusCode, headers, statusMessage);
  }

  onResponseData(controller: Controller, chunk: Buffer): void {
    this.next.onResponseData?.(controller, chunk);
  }

  onResponseEnd(controller: Controller, trailers: Headers): void {
    this.last().onResponseEnd?.(controller, trailers);
  }

  onResponseError(controller: Controller, error: Error): void {
    this.last().onResponseError?.(controller, error);
  }

  onBodySent(chunk: Buffer): void {
    this.next.onBodySent?.(chunk);
  }

  // Whether the request was written decides what may be retried (a POST reset before it was written
  // never reached the instance). The controller API's five callbacks do not say it: undici calls
  // onRequestSent on the handler it was given, and it reaches retry only because every handler
  // between them passes it on, here. Nothing else in the client tracks it.
  onRequestSent(): void {
    this.next.onRequestSent?.();
  }
}
