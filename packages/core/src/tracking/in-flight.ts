// Counts the requests a server is working on, from arrival until the response finished or its
// socket closed. It sits on every request's path: one Map insert, one clock read and one shared
// 'close' listener per request, nothing else unless the server is draining.

import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';

export interface InFlightRequest {
  readonly method: string;
  readonly url: string;
  /** Milliseconds since the request arrived. */
  readonly ageMs: number;
}

export interface MarkerSpec {
  readonly header: string;
  readonly value: string;
}

export class InFlightTracker {
  /** Requests seen since the tracker was created. */
  total = 0;
  /** Requests that arrived while the marker was on (that is, during the drain). */
  arrivedWhileMarking = 0;
  /** Responses that carried the marker (those arriving during the drain and those in flight when it began). */
  marked = 0;
  /** Monotonic time (ms) of the latest arrival; -Infinity before the first. */
  lastArrival = Number.NEGATIVE_INFINITY;
  /** Called whenever the count drops to zero. Set only while something waits for idleness. */
  onIdle: (() => void) | undefined;
  /** Requests for which this returns true are not tracked at all (admin endpoints on the main server). */
  ignore: ((req: IncomingMessage) => boolean) | undefined;

  readonly #active = new Map<ServerResponse, number>();
  /** Long-lived responses (server-sent events...): not in flight for the drain; ended when it is over. */
  readonly #streams = new Map<ServerResponse, (res: ServerResponse) => unknown>();
  readonly #now: () => number;
  #marker: MarkerSpec | undefined;
  readonly #detachers: (() => void)[] = [];

  constructor(now: () => number = performance.now.bind(performance)) {
    this.#now = now;
  }

  get size(): number {
    return this.#active.size;
  }

  /** Open long-lived responses registered with stream(). */
  get streams(): number {
    return this.#streams.size;
  }

  /**
   * Turns a response into a long-lived stream: it no longer counts as in flight (a drain does not
   * wait for it), and `end(res)` is called by endStreams() when the drain is over.
   */
  stream(res: ServerResponse, end: (res: ServerResponse) => unknown): void {
    if (res.writableEnded || res.destroyed) return;
    const wasActive = this.#active.delete(res);
    if (!wasActive) res.on('close', this.#onClose); // a response the tracker did not see (ignored path)
    this.#streams.set(res, end);
    if (wasActive && this.#active.size === 0 && this.onIdle !== undefined) this.onIdle();
  }

  /**
   * Calls the end function of every open stream; returns the number of streams told to end.
   * A function that throws or rejects is reported to `onError` and the stream's socket is destroyed.
   */
  endStreams(onError: (error: unknown, res: ServerResponse) => void): number {
    const streams = [...this.#streams];
    for (const [res, end] of streams) {
      let result: unknown;
      try {
        result = end(res);
      } catch (error) {
        onError(error, res);
        res.destroy();
        continue;
      }
      if (result instanceof Promise)
        result.catch((error: unknown) => {
          onError(error, res);
          res.destroy();
        });
    }
    return streams.length;
  }

  get marking(): boolean {
    return this.#marker !== undefined;
  }

  /** Track every request of `server`; returns a function that stops tracking it. */
  attach(server: Server): () => void {
    // prepend so that the marker is set before any handler can write the response
    server.prependListener('request', this.#onRequest);
    const detach = (): void => {
      server.removeListener('request', this.#onRequest);
    };
    this.#detachers.push(detach);
    return detach;
  }

  detachAll(): void {
    for (const detach of this.#detachers.splice(0)) detach();
  }

  /**
   * From now on every response carries the marker and `Connection: close`, including the responses
   * of requests already in flight whose headers are not sent yet.
   */
  startMarking(marker: MarkerSpec): void {
    this.#marker = marker;
    for (const res of this.#active.keys()) if (markResponse(res, marker)) this.marked++;
  }

  /** The requests still in flight, oldest first. */
  snapshot(): InFlightRequest[] {
    const now = this.#now();
    const out: InFlightRequest[] = [];
    for (const [res, start] of this.#active) {
      const req = res.req as IncomingMessage | undefined;
      out.push({ method: req?.method ?? '?', url: req?.url ?? '?', ageMs: now - start });
    }
    return out.sort((a, b) => b.ageMs - a.ageMs);
  }

  /** Age in ms of the oldest request in flight, 0 when none. */
  oldestAgeMs(): number {
    // Map iteration order is insertion order: the first entry is the oldest.
    for (const start of this.#active.values()) return this.#now() - start;
    return 0;
  }

  /** Destroy the sockets of every request still in flight and every stream (used when a drain is cut short). */
  abortAll(): void {
    for (const res of this.#active.keys()) res.socket?.destroy();
    for (const res of this.#streams.keys()) res.socket?.destroy();
  }

  readonly #onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    if (this.ignore?.(req)) return;
    const now = this.#now();
    this.#active.set(res, now);
    this.lastArrival = now;
    this.total++;
    if (this.#marker !== undefined) {
      this.arrivedWhileMarking++;
      this.marked++;
      markResponse(res, this.#marker);
    }
    // 'close' fires once per response: on() spares once()'s wrapper and removal on every request
    res.on('close', this.#onClose);
  };

  // One function shared by all responses: `this` is the response that closed.
  readonly #onClose = ((tracker: InFlightTracker) =>
    function onResponseClose(this: ServerResponse): void {
      if (tracker.#active.delete(this)) {
        if (tracker.#active.size === 0 && tracker.onIdle !== undefined) tracker.onIdle();
      } else if (tracker.#streams.size > 0) tracker.#streams.delete(this);
    })(this);
}

/** Sets the marker unless the headers are already sent; true when it was set. */
function markResponse(res: ServerResponse, marker: MarkerSpec): boolean {
  if (res.headersSent) return false;
  res.setHeader(marker.header, marker.value);
  // Node then ends the keep-alive connection after this response, so callers move elsewhere
  // without an idle socket being cut under them.
  res.setHeader('connection', 'close');
  return true;
}
