// The seam between a provider and the server it runs. A provider drives a "transport": something that
// listens, knows what it is working on, marks its answers while going offline, tells its connections
// to go away and closes, gracefully then by force. A node:http, node:https or node:http2 server is one
// (node-http.ts: the in-flight tracker and, for HTTP/2, its sessions); a server whose sockets are not
// the provider's to see, such as a grpc-js Server, is another (@lossless/grpc). Only the lossless
// packages implement it: it is exported from @lossless/core/internal, not from the main entry.

import type { AddressInfo } from 'node:net';
import type { InFlightRequest, MarkerSpec } from '../tracking/in-flight.js';

/** What a transport is working on, as the drain, /status and the metrics see it. */
export interface InFlightLoad {
  /** Requests (calls) in flight now, long-lived streams left out. */
  readonly size: number;
  /** Requests seen since the transport was created. */
  readonly total: number;
  /** Monotonic time (ms) of the latest arrival; -Infinity before the first. */
  readonly lastArrival: number;
  /** Requests that arrived while marking (that is, during the drain). */
  readonly arrivedWhileMarking: number;
  /** Answers that carried the marker. */
  readonly marked: number;
  /** Open long-lived streams (declared with `provider.stream()`). */
  readonly streams: number;
  /** Called whenever `size` drops to zero; setting it asks for an exact count from then on. */
  onIdle: (() => void) | undefined;
  /** Age in ms of the oldest request in flight, 0 when none. */
  oldestAgeMs(): number;
  /** The requests in flight, oldest first. */
  snapshot(): InFlightRequest[];
  /** From now on every answer carries the marker, including those in flight whose headers are not sent. */
  startMarking(marker: MarkerSpec): void;
  /** Tells every long-lived stream to end (its goodbye); returns how many were told. */
  endStreams(onError: (error: unknown) => void): number;
  /** Cuts every request in flight and every stream (a drain cut short). */
  abortAll(): void;
}

/** A server as a provider runs it. */
export interface Transport {
  readonly inFlight: InFlightLoad;
  /** True when callers reach it over TLS (registered as `secure`). */
  readonly secure: boolean;
  /** Resolves with the bound address once the server listens; rejects with the error that stopped it. */
  listening(): Promise<AddressInfo>;
  /**
   * The drain began (answers are marked from now on). A transport whose connections must be told to go
   * away at once does it here (node:http2: GOAWAY on every session).
   */
  drainStarted(): void;
  /**
   * The registry step of the drain settled (the instance is out, or that failed and was logged). A
   * transport that tells its connections to go away only once callers can no longer find it there does
   * it here (gRPC: GOAWAY once resolvers re-reading the registry no longer see the instance).
   */
  registryLeft(): void;
  /**
   * The wait is over: stop accepting and close every connection once what it carries is done.
   * Resolves once everything is closed (the drain bounds it by drain.closeTimeoutMs).
   */
  close(): Promise<void>;
  /** Destroys every connection at once (the close timeout passed, or the drain was cut short). */
  destroy(): void;
  /** Stops following the server; the last call. */
  detach(): void;
}
