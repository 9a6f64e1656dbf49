// Counts the requests a server is working on, from arrival until the response finished or its
// socket closed. It sits on every request's path, so it has two modes:
//   - by connection (until something waits for idleness or the drain marks responses): per request,
//     one clock read and one property write on the socket; the connections are known (one 'close'
//     listener each, added on their first request) and the response each one is working on is the
//     one Node assigned to it (`socket._httpMessage`, which Node sets while a response is under way
//     and clears when it finished). Counting walks the connections, which only /status, metrics and
//     the start of a drain do.
//   - by response (from the drain on): each response in flight and each new one gets a shared
//     'close' listener, so that the count is exact at every moment and the drain learns at once
//     when it drops to zero.
// HTTP/1.1 pipelining: a request that arrives while its connection is still answering an earlier
// one waits in Node's queue without being the connection's response; those few are followed by their
// own 'close' event from the start. While marking, only the last response read on a connection
// carries `Connection: close`: Node closes the connection after a response that carries it, and the
// answers queued behind it (whose handlers may already have run: a POST's 201) would never go out.
// HTTP/2 (node:http2 servers, the compat API's 'request' event): a session carries many streams at
// once and has no one response under way, so each stream is followed by its own 'close' event from
// the start; while marking, a stream's response carries the marker only (HTTP/2 forbids
// `Connection: close`: sessions are told to go away with GOAWAY, server/http2.ts). The HTTP/1.1
// connections of an `allowHTTP1` server take the HTTP/1.1 path above. A node:http server keeps its
// listener as it was: the HTTP/2 branch costs its requests nothing.

import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { constants, type Http2ServerRequest, type Http2ServerResponse, type ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { type AnyHttp2Server, isHttp2Response, isHttp2Server } from '../server/http2.js';

/** What Node keeps on an HTTP server's socket: the response under way, if any. */
type HttpSocket = Socket & { _httpMessage?: ServerResponse | null } & Record<symbol, unknown>;
/** A request of a node:http(s) server, or of an HTTP/2 stream. */
export type AnyRequest = IncomingMessage | Http2ServerRequest;
/** A response of a node:http(s) server, or of an HTTP/2 stream. */
export type AnyResponse = ServerResponse | Http2ServerResponse;

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
  /** Requests for which this returns true are not tracked at all (admin endpoints on the main server). */
  ignore: ((req: AnyRequest) => boolean) | undefined;

  #onIdle: (() => void) | undefined;
  /** True once counting by response (see the top of this file). */
  #exact = false;
  /** Connections that carried a request, until they close. */
  readonly #sockets = new Set<HttpSocket>();
  // per-tracker keys on the sockets: two trackers may watch one server
  readonly #kSeen = Symbol('lossless.tracked');
  readonly #kArrival = Symbol('lossless.arrival');
  readonly #kIgnored = Symbol('lossless.ignored');
  /** The latest tracked response read on a connection (kept from the drain on). */
  readonly #kLast = Symbol('lossless.last');
  /** Responses this tracker gave `Connection: close` (so that it only ever takes back its own). */
  readonly #closing = new WeakSet<ServerResponse>();
  readonly #active = new Map<AnyResponse, number>();
  /** Pipelined responses queued behind another on their connection (counting by connection only). */
  readonly #queued = new Map<ServerResponse, number>();
  /**
   * HTTP/2 streams in flight (counting by connection only: they are followed by their own 'close'),
   * with their arrival times at the same index. Two arrays and an index on each response, removed by
   * swapping with the last: a Map's set and delete per stream cost a hello-world HTTP/2 server about
   * a tenth more garbage collections.
   */
  readonly #http2: Http2ServerResponse[] = [];
  readonly #http2At: number[] = [];
  readonly #kIndex = Symbol('lossless.index');
  /** Long-lived responses (server-sent events...): not in flight for the drain; ended when it is over. */
  // biome-ignore lint/suspicious/noExplicitAny: each end function takes the kind of response it was given with
  readonly #streams = new Map<AnyResponse, (res: any) => unknown>();
  readonly #now: () => number;
  #marker: MarkerSpec | undefined;
  readonly #detachers: (() => void)[] = [];

  constructor(now: () => number = performance.now.bind(performance)) {
    this.#now = now;
  }

  /** Called whenever the count drops to zero. Setting it makes the count exact from then on. */
  get onIdle(): (() => void) | undefined {
    return this.#onIdle;
  }

  set onIdle(fn: (() => void) | undefined) {
    if (fn !== undefined) this.#countByResponse();
    this.#onIdle = fn;
  }

  get size(): number {
    if (this.#exact) return this.#active.size;
    let n = this.#queued.size + this.#http2.length;
    for (const socket of this.#sockets) if (this.#underway(socket) !== undefined) n++;
    return n;
  }

  /** Open long-lived responses registered with stream(). */
  get streams(): number {
    return this.#streams.size;
  }

  /**
   * Turns a response into a long-lived stream: it no longer counts as in flight (a drain does not
   * wait for it), and `end(res)` is called by endStreams() when the drain is over.
   */
  stream<R extends AnyResponse>(res: R, end: (res: R) => unknown): void {
    if (res.writableEnded || (isHttp2Response(res) ? res.stream.destroyed : res.destroyed)) return;
    if (isHttp2Response(res)) this.#forgetStream(res);
    else this.#queued.delete(res);
    const wasActive = this.#active.delete(res);
    // not followed by its own 'close' yet (counting by connection, or an ignored path): follow it now,
    // so that the stream is forgotten once it ends
    if (!wasActive) res.on('close', this.#onClose);
    this.#streams.set(res, end);
    if (wasActive && this.#active.size === 0 && this.#onIdle !== undefined) this.#onIdle();
  }

  /**
   * Calls the end function of every open stream; returns the number of streams told to end.
   * A function that throws or rejects is reported to `onError` and the stream's socket is destroyed.
   */
  endStreams(onError: (error: unknown, res: AnyResponse) => void): number {
    const streams = [...this.#streams];
    for (const [res, end] of streams) {
      let result: unknown;
      try {
        result = end(res);
      } catch (error) {
        onError(error, res);
        cut(res);
        continue;
      }
      if (result instanceof Promise)
        result.catch((error: unknown) => {
          onError(error, res);
          cut(res);
        });
    }
    return streams.length;
  }

  get marking(): boolean {
    return this.#marker !== undefined;
  }

  /** Track every request of `server`; returns a function that stops tracking it. */
  attach(server: Server | AnyHttp2Server): () => void {
    // an http2 server's requests are HTTP/2 streams, and HTTP/1.1 requests with allowHTTP1
    const listener = isHttp2Server(server) ? this.#onAnyRequest : this.#onRequest;
    // prepend so that the marker is set before any handler can write the response
    server.prependListener('request', listener);
    const detach = (): void => {
      server.removeListener('request', listener);
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
    this.#countByResponse();
    this.#marker = marker;
    // #active is in arrival order: the last one seen on each connection is the one to close it
    for (const res of this.#active.keys()) {
      if (isHttp2Response(res)) continue;
      const socket = res.req?.socket as HttpSocket | undefined;
      if (socket !== undefined) socket[this.#kLast] = res;
    }
    for (const res of this.#active.keys()) {
      const last = !isHttp2Response(res) && (res.req?.socket as HttpSocket | undefined)?.[this.#kLast] === res;
      if (this.#mark(res, marker, last)) this.marked++;
    }
  }

  /** The requests still in flight, oldest first. */
  snapshot(): InFlightRequest[] {
    const now = this.#now();
    const out: InFlightRequest[] = [];
    for (const [res, start] of this.#entries()) {
      const req = res.req as AnyRequest | undefined;
      out.push({ method: req?.method ?? '?', url: req?.url ?? '?', ageMs: now - start });
    }
    return out.sort((a, b) => b.ageMs - a.ageMs);
  }

  /** Age in ms of the oldest request in flight, 0 when none. */
  oldestAgeMs(): number {
    let oldest = Number.POSITIVE_INFINITY;
    for (const [, start] of this.#entries()) if (start < oldest) oldest = start;
    return oldest === Number.POSITIVE_INFINITY ? 0 : this.#now() - oldest;
  }

  /** The HTTP/2 streams of the requests in flight and of the long-lived responses. */
  *http2Streams(): Generator<ServerHttp2Stream> {
    for (const [res] of this.#entries()) if (isHttp2Response(res)) yield res.stream;
    for (const res of this.#streams.keys()) if (isHttp2Response(res)) yield res.stream;
  }

  /** Destroy the sockets of every request still in flight and every stream (used when a drain is cut short). */
  abortAll(): void {
    for (const [res] of this.#entries()) cut(res);
    for (const res of this.#streams.keys()) cut(res);
  }

  /** An http2 server's request: an HTTP/2 stream, or HTTP/1.x on an allowHTTP1 server. */
  readonly #onAnyRequest = (req: AnyRequest, res: AnyResponse): void => {
    if (req.httpVersionMajor !== 2) this.#onRequest(req as IncomingMessage, res as ServerResponse);
    else this.#onStream(req as Http2ServerRequest, res as Http2ServerResponse);
  };

  readonly #onStream = (req: Http2ServerRequest, res: Http2ServerResponse): void => {
    if (this.ignore?.(req)) return;
    const now = this.#now();
    this.lastArrival = now;
    this.total++;
    // declared long-lived by a listener that ran before this one
    if (this.#streams.size > 0 && this.#streams.has(res)) return;
    if (!this.#exact) {
      (res as unknown as Record<symbol, number>)[this.#kIndex] = this.#http2.length;
      this.#http2.push(res);
      this.#http2At.push(now);
      res.on('close', this.#onStreamClose);
      return;
    }
    this.#active.set(res, now);
    if (this.#marker !== undefined) {
      this.arrivedWhileMarking++;
      this.marked++;
      this.#mark(res, this.#marker, false);
    }
    res.on('close', this.#onClose);
  };

  readonly #onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const socket = req.socket as HttpSocket;
    if (this.ignore?.(req)) {
      socket[this.#kIgnored] = res;
      return;
    }
    const now = this.#now();
    this.lastArrival = now;
    this.total++;
    if (socket[this.#kSeen] !== true) {
      socket[this.#kSeen] = true;
      this.#sockets.add(socket);
      socket.on('close', this.#onSocketClose);
    }
    if (!this.#exact) {
      if (socket._httpMessage === res) socket[this.#kArrival] = now;
      else {
        // pipelined: queued behind the connection's current response
        this.#queued.set(res, now);
        res.on('close', this.#onQueuedClose);
      }
      return;
    }
    this.#active.set(res, now);
    if (this.#marker !== undefined) {
      this.arrivedWhileMarking++;
      this.marked++;
      // this one is now the last read on its connection: the one before it keeps the connection open
      const previous = socket[this.#kLast] as ServerResponse | undefined;
      socket[this.#kLast] = res;
      this.#mark(res, this.#marker, true);
      if (previous !== undefined && previous !== res && this.#closing.has(previous) && !previous.headersSent) {
        previous.removeHeader('connection');
        this.#closing.delete(previous);
      }
    }
    // 'close' fires once per response: on() spares once()'s wrapper and removal on every request
    res.on('close', this.#onClose);
  };

  /** The response `socket` is working on for a tracked request, if any. */
  #underway(socket: HttpSocket): ServerResponse | undefined {
    const res = socket._httpMessage;
    if (res === null || res === undefined || res === socket[this.#kIgnored]) return undefined;
    if (this.#streams.size > 0 && this.#streams.has(res)) return undefined;
    if (this.#queued.size > 0 && this.#queued.has(res)) return undefined; // counted as queued
    return res;
  }

  /** The responses in flight with their arrival times. */
  *#entries(): Generator<[AnyResponse, number]> {
    if (this.#exact) {
      yield* this.#active;
      return;
    }
    for (const socket of this.#sockets) {
      const res = this.#underway(socket);
      if (res !== undefined) yield [res, socket[this.#kArrival] as number];
    }
    for (const [res, start] of this.#queued) if (!this.#streams.has(res)) yield [res, start];
    for (let i = 0; i < this.#http2.length; i++)
      yield [this.#http2[i] as Http2ServerResponse, this.#http2At[i] as number];
  }

  /** From now on every response in flight is counted by its own 'close' event. */
  #countByResponse(): void {
    if (this.#exact) return;
    const entries = [...this.#entries()].sort((a, b) => a[1] - b[1]);
    this.#exact = true;
    for (const res of this.#http2) (res as unknown as Record<symbol, unknown>)[this.#kIndex] = undefined;
    this.#http2.length = 0;
    this.#http2At.length = 0;
    for (const [res, start] of entries) {
      this.#active.set(res, start);
      res.on('close', this.#onClose);
    }
  }

  readonly #onStreamClose = ((tracker: InFlightTracker) =>
    function onStreamClose(this: Http2ServerResponse): void {
      tracker.#forgetStream(this);
    })(this);

  /** Takes an HTTP/2 response out of #http2, if it is there. */
  #forgetStream(res: Http2ServerResponse): void {
    const slots = res as unknown as Record<symbol, number | undefined>;
    const i = slots[this.#kIndex];
    if (i === undefined) return;
    slots[this.#kIndex] = undefined;
    const last = this.#http2.length - 1;
    if (i !== last) {
      const moved = this.#http2[last] as Http2ServerResponse;
      this.#http2[i] = moved;
      this.#http2At[i] = this.#http2At[last] as number;
      (moved as unknown as Record<symbol, number>)[this.#kIndex] = i;
    }
    this.#http2.pop();
    this.#http2At.pop();
  }

  readonly #onQueuedClose = ((tracker: InFlightTracker) =>
    function onQueuedClose(this: ServerResponse): void {
      tracker.#queued.delete(this);
    })(this);

  readonly #onSocketClose = ((tracker: InFlightTracker) =>
    function onSocketClose(this: HttpSocket): void {
      tracker.#sockets.delete(this);
      // a pipelined response still queued when its connection closes never emits 'close' (Node
      // never gave it the socket): forget it here
      for (const res of tracker.#queued.keys()) if (res.req?.socket === this) tracker.#queued.delete(res);
      if (!tracker.#exact || tracker.#active.size === 0) return;
      let dropped = false;
      for (const res of tracker.#active.keys()) {
        if (res.socket === null && res.req?.socket === this && !res.writableFinished) {
          tracker.#active.delete(res);
          dropped = true;
        }
      }
      if (dropped && tracker.#active.size === 0 && tracker.#onIdle !== undefined) tracker.#onIdle();
    })(this);

  // One function shared by all responses: `this` is the response that closed.
  readonly #onClose = ((tracker: InFlightTracker) =>
    function onResponseClose(this: AnyResponse): void {
      if (tracker.#active.delete(this)) {
        if (tracker.#active.size === 0 && tracker.#onIdle !== undefined) tracker.#onIdle();
      } else if (tracker.#streams.size > 0) tracker.#streams.delete(this);
    })(this);

  /**
   * Sets the marker unless the headers are already sent, and `Connection: close` when `last` (the
   * last response read on its connection); true when the marker was set.
   */
  #mark(res: AnyResponse, marker: MarkerSpec, last: boolean): boolean {
    if (res.headersSent) return false;
    res.setHeader(marker.header, marker.value);
    if (last && !isHttp2Response(res)) {
      // Node then ends the keep-alive connection after this response, so callers move elsewhere
      // without an idle socket being cut under them.
      res.setHeader('connection', 'close');
      this.#closing.add(res);
    }
    return true;
  }
}

/**
 * Cuts a response: its HTTP/1.x connection, or its HTTP/2 stream alone (RST_STREAM INTERNAL_ERROR:
 * the caller sees an error, as with a cut connection; CANCEL would end its stream silently).
 */
function cut(res: AnyResponse): void {
  if (isHttp2Response(res)) {
    if (!res.stream.destroyed) res.stream.close(constants.NGHTTP2_INTERNAL_ERROR);
  } else res.socket?.destroy();
}
