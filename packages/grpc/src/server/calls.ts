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
  type ServerInterceptingCall,
  type ServerInterceptingCallInterface,
  type ServerInterceptor,
  status,
} from '@grpc/grpc-js';
import type { InFlightRequest } from '@lossless/core';
import type { InFlightLoad, MarkerSpec } from '@lossless/core/internal';

/** The standard health service: never counted; its Watch streams end with the drain's wait. */
const HEALTH_SERVICE = '/grpc.health.v1.Health/';
const HEALTH_WATCH = `${HEALTH_SERVICE}Watch`;

type Next = ServerInterceptingCallInterface;
/** What grpc-js gives the layer above a call: its handler, or the server's own interceptors. */
type Listener = Parameters<Next['start']>[0];

/** The key under which a request's metadata object carries its call (how stream() finds it). */
const kCall = Symbol('lossless.call');

/**
 * One call, followed from its start to its status: the intercepting call grpc-js sees for this layer
 * (it implements ServerInterceptingCallInterface, which grpc-js takes from an interceptor) and the
 * listener the layer below calls. One object per call, no closures: this sits on every call's path.
 */
class Call implements ServerInterceptingCallInterface {
  readonly path: string;
  /** Monotonic ms of its arrival. */
  readonly at: number;
  /** The call below this interceptor: where a cut or a goodbye is sent. */
  readonly next: Next;
  readonly tracker: CallTracker;
  #listener: Listener | undefined;
  #headersSent = false;
  /** Status handed to grpc-js, or cancelled. */
  ended = false;
  marked = false;
  /** A long-lived stream: its goodbye. */
  end: ((target: never) => unknown) | undefined;
  /** What the goodbye is given (the handler's call object). */
  target: unknown;

  constructor(tracker: CallTracker, path: string, at: number, next: Next) {
    this.tracker = tracker;
    this.path = path;
    this.at = at;
    this.next = next;
  }

  // the layer above
  start(listener: Listener): void {
    this.#listener = listener;
    this.next.start(this);
  }
  sendMetadata(metadata: Metadata): void {
    this.#headersSent = true;
    this.tracker.mark(this, metadata);
    this.next.sendMetadata(metadata);
  }
  sendMessage(message: unknown, callback: () => void): void {
    // grpc-js sends the headers itself before a first message (without this layer seeing them)
    if (!this.#headersSent && this.tracker.marking) this.sendMetadata(new Metadata());
    this.next.sendMessage(message, callback);
  }
  sendStatus(sent: Parameters<Next['sendStatus']>[0]): void {
    if (this.tracker.marking) {
      const trailers = sent.metadata ?? new Metadata();
      this.tracker.mark(this, trailers);
      this.next.sendStatus({ ...sent, metadata: trailers });
    } else this.next.sendStatus(sent);
    this.tracker.ended(this);
  }
  startRead(): void {
    this.next.startRead();
  }
  getPeer(): string {
    return this.next.getPeer();
  }
  getDeadline(): ReturnType<Next['getDeadline']> {
    return this.next.getDeadline();
  }
  getHost(): string {
    return this.next.getHost();
  }
  getAuthContext(): ReturnType<Next['getAuthContext']> {
    return this.next.getAuthContext();
  }
  getConnectionInfo(): ReturnType<Next['getConnectionInfo']> {
    return this.next.getConnectionInfo();
  }
  getMetricsRecorder(): ReturnType<Next['getMetricsRecorder']> {
    return this.next.getMetricsRecorder();
  }

  // the layer below
  onReceiveMetadata(metadata: Metadata): void {
    (metadata as unknown as Record<symbol, Call>)[kCall] = this;
    this.#listener?.onReceiveMetadata(metadata);
  }
  onReceiveMessage(message: unknown): void {
    this.#listener?.onReceiveMessage(message);
  }
  onReceiveHalfClose(): void {
    this.#listener?.onReceiveHalfClose();
  }
  onCancel(): void {
    this.tracker.ended(this);
    this.#listener?.onCancel();
  }
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
  /** Calls cut by abortAll(), so far. */
  cut = 0;
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
      const watch = new Call(this, path, this.#now(), next);
      watch.end = () => next.sendStatus({ code: status.OK, details: 'going away' });
      this.#watches.add(watch);
      return watch as unknown as ServerInterceptingCall;
    }
    const call = new Call(this, path, this.#now(), next);
    this.lastArrival = call.at;
    this.total++;
    this.#active.add(call);
    if (this.#marker !== undefined) {
      this.arrivedWhileMarking++;
      this.onLateArrival?.();
    }
    // grpc-js takes any ServerInterceptingCallInterface from an interceptor (it only calls its methods)
    return call as unknown as ServerInterceptingCall;
  };

  /**
   * Declares the call whose handler got `target` long-lived: not in flight for the drain; `end(target)`
   * is called once the drain's wait is over. False when `target` is not a call this tracker follows.
   */
  stream<T extends { readonly metadata: Metadata }>(target: T, end: (target: T) => unknown): boolean {
    const call = (target.metadata as unknown as Record<symbol, Call | undefined> | undefined)?.[kCall];
    if (!(call instanceof Call) || call.tracker !== this) return false;
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

  /** Sets the marker on an answer's metadata while marking (calls.ts' Call). */
  mark(call: Call, metadata: Metadata): void {
    const marker = this.#marker;
    if (marker === undefined) return;
    metadata.set(marker.header, marker.value);
    if (!call.marked) {
      call.marked = true;
      this.marked++;
    }
  }

  ended(call: Call): void {
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
    this.cut++;
    call.next.sendStatus({ code: status.UNAVAILABLE, details: 'cut at the end of the drain' });
    this.ended(call);
  }
}
