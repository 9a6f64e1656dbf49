// The calls a grpc-js server is working on, followed by a server interceptor that lossless puts in
// front of every other (through the credentials of each bound port: see transport.ts): a call is in
// flight from the moment the interceptor sees it until its status is handed to grpc-js (or the
// client cancels it), whatever its kind (unary, client, server or bidirectional streaming). While
// marking, the marker goes in the response's initial metadata when it is still to be sent, and in
// its trailing metadata always (a trailers-only answer carries it in its only headers), so that a
// client learns it from whichever it reads: the status of any call, or the headers of a stream that
// stays open.
// Long-lived calls declared with stream() (a watch, a subscription) are not in flight for the drain
// and are told to end when its wait is over. The standard health service's calls are neither counted
// nor arrivals (probes must not hold a drain open); its Watch streams are ended at the end of the wait.

import { performance } from 'node:perf_hooks';
import {
  Metadata,
  ServerInterceptingCall,
  type ServerInterceptingCallInterface,
  type ServerInterceptor,
  status,
} from '@grpc/grpc-js';
import type { InFlightRequest, MarkerSpec } from '@lossless/core';
import type { InFlightLoad } from '@lossless/core/internal';

/** The standard health service: never counted; its Watch streams end with the drain's wait. */
const HEALTH_SERVICE = '/grpc.health.v1.Health/';
const HEALTH_WATCH = `${HEALTH_SERVICE}Watch`;

interface Call {
  readonly path: string;
  /** Monotonic ms of its arrival. */
  readonly at: number;
  /** The call below this interceptor: where a cut or a goodbye is sent. */
  readonly next: ServerInterceptingCallInterface;
  /** Its initial metadata went out (the marker can then only go in the trailers). */
  headersSent: boolean;
  /** Status handed to grpc-js, or cancelled. */
  ended: boolean;
  marked: boolean;
  /** A long-lived stream: its goodbye. */
  end: ((target: never) => unknown) | undefined;
  /** What the goodbye is given (the handler's call object). */
  target: unknown;
}

export class CallTracker implements InFlightLoad {
  total = 0;
  arrivedWhileMarking = 0;
  marked = 0;
  lastArrival = Number.NEGATIVE_INFINITY;
  onIdle: (() => void) | undefined;
  /** Called when a call ends (the transport tells sessions opened during the drain to go away). */
  onCallEnd: (() => void) | undefined;
  /** Called when a call arrives during the drain. */
  onLateArrival: (() => void) | undefined;

  readonly #now: () => number;
  readonly #active = new Set<Call>();
  readonly #streams = new Set<Call>();
  /** Health Watch streams. */
  readonly #watches = new Set<Call>();
  /** Cut calls whose status is not written yet. */
  readonly #cutting = new Set<Call>();
  #cutDone: (() => void) | undefined;
  /** The call of each request's metadata object: how stream() finds the call of a handler's call object. */
  readonly #byMetadata = new WeakMap<Metadata, Call>();
  #marker: MarkerSpec | undefined;

  constructor(now: () => number = performance.now.bind(performance)) {
    this.#now = now;
  }

  get size(): number {
    return this.#active.size;
  }

  get streams(): number {
    return this.#streams.size;
  }

  get marking(): boolean {
    return this.#marker !== undefined;
  }

  /** The interceptor that follows every call (put first, so that it sees what the others send). */
  readonly interceptor: ServerInterceptor = (method, next) => {
    const path = method.path;
    if (path.startsWith(HEALTH_SERVICE)) {
      if (path !== HEALTH_WATCH) return next as ServerInterceptingCall;
      const watch = this.#call(path, next);
      watch.end = () => next.sendStatus({ code: status.OK, details: 'going away' });
      this.#watches.add(watch);
      return this.#intercept(watch, next);
    }
    const call = this.#call(path, next);
    this.lastArrival = call.at;
    this.total++;
    this.#active.add(call);
    if (this.#marker !== undefined) {
      this.arrivedWhileMarking++;
      this.onLateArrival?.();
    }
    return this.#intercept(call, next);
  };

  /**
   * Declares the call whose handler got `target` long-lived: not in flight for the drain; `end(target)`
   * is called once the drain's wait is over. False when `target` is not a call this tracker follows.
   */
  stream<T extends { readonly metadata: Metadata }>(target: T, end: (target: T) => unknown): boolean {
    const call = this.#byMetadata.get(target.metadata);
    if (call === undefined) return false;
    if (call.ended) return true;
    call.end = end as (target: never) => unknown;
    call.target = target;
    const wasActive = this.#active.delete(call);
    this.#streams.add(call);
    if (wasActive && this.#active.size === 0) this.onIdle?.();
    return true;
  }

  startMarking(marker: MarkerSpec): void {
    this.#marker = marker;
    // the trailers of every call in flight will carry it; its headers too where they are still to go
    for (const call of this.#active) call.marked = true;
    this.marked += this.#active.size;
  }

  endStreams(onError: (error: unknown) => void): number {
    for (const watch of [...this.#watches]) this.#goodbye(watch, onError);
    const streams = [...this.#streams];
    for (const call of streams) this.#goodbye(call, onError);
    return streams.length;
  }

  abortAll(): void {
    for (const call of [...this.#active, ...this.#streams, ...this.#watches]) this.#cut(call);
  }

  /** Resolves once the statuses of the calls cut by abortAll() went out, or after `timeoutMs`. */
  cutWritten(timeoutMs: number): Promise<void> {
    if (this.#cutting.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#cutDone = done;
    });
  }

  snapshot(): InFlightRequest[] {
    const now = this.#now();
    return [...this.#active]
      .map((call) => ({ method: 'POST', url: call.path, ageMs: now - call.at }))
      .sort((a, b) => b.ageMs - a.ageMs);
  }

  oldestAgeMs(): number {
    let oldest = Number.POSITIVE_INFINITY;
    for (const call of this.#active) if (call.at < oldest) oldest = call.at;
    return oldest === Number.POSITIVE_INFINITY ? 0 : this.#now() - oldest;
  }

  #call(path: string, next: ServerInterceptingCallInterface): Call {
    return {
      path,
      at: this.#now(),
      next,
      headersSent: false,
      ended: false,
      marked: false,
      end: undefined,
      target: undefined,
    };
  }

  #intercept(call: Call, next: ServerInterceptingCallInterface): ServerInterceptingCall {
    return new ServerInterceptingCall(next, {
      start: (startNext) =>
        startNext({
          onReceiveMetadata: (metadata, metadataNext) => {
            this.#byMetadata.set(metadata, call);
            metadataNext(metadata);
          },
          onCancel: () => {
            this.#ended(call);
            // grpc-js reports the end once the status went out (or the stream closed)
            if (this.#cutting.delete(call) && this.#cutting.size === 0) this.#cutDone?.();
          },
        }),
      sendMetadata: (metadata, metadataNext) => {
        call.headersSent = true;
        const marker = this.#marker;
        if (marker !== undefined) {
          metadata.set(marker.header, marker.value);
          if (!call.marked) {
            call.marked = true;
            this.marked++;
          }
        }
        metadataNext(metadata);
      },
      sendStatus: (sent, statusNext) => {
        const marker = this.#marker;
        if (marker !== undefined) {
          const trailers = sent.metadata ?? new Metadata();
          trailers.set(marker.header, marker.value);
          if (!call.marked) {
            call.marked = true;
            this.marked++;
          }
          statusNext({ ...sent, metadata: trailers });
        } else statusNext(sent);
        this.#ended(call);
      },
    });
  }

  #ended(call: Call): void {
    if (call.ended) return;
    call.ended = true;
    if (this.#active.delete(call)) {
      if (this.#active.size === 0) this.onIdle?.();
    } else if (!this.#streams.delete(call)) this.#watches.delete(call);
    this.onCallEnd?.();
  }

  #goodbye(call: Call, onError: (error: unknown) => void): void {
    if (call.ended) return;
    let result: unknown;
    try {
      result = (call.end as (target: unknown) => unknown)(call.target);
    } catch (error) {
      onError(error);
      this.#cut(call);
      return;
    }
    if (result instanceof Promise)
      result.catch((error: unknown) => {
        onError(error);
        this.#cut(call);
      });
  }

  /** Ends a call with UNAVAILABLE: the caller sees an error (it may have been processed: never retried blindly). */
  #cut(call: Call): void {
    if (call.ended) return;
    this.#cutting.add(call);
    call.next.sendStatus({ code: status.UNAVAILABLE, details: 'cut at the end of the drain' });
    this.#ended(call);
  }
}
