// The transport of a node:http, node:https or node:http2 server (transport.ts): the in-flight tracker
// counts and marks its requests, an http2 server's sessions get GOAWAY when the drain begins
// (http2.ts), and at the end the server closes, idle connections last (close.ts), or the way an
// adapter closes it (fastify's app.close()). Nothing here is on a request's path: the tracker's
// 'request' listener is.

import type { AddressInfo } from 'node:net';
import { Server as TlsServer } from 'node:tls';
import type { ProviderServer } from '../options.js';
import type { InFlightTracker } from '../tracking/in-flight.js';
import { closeServer, destroyConnections, waitListening } from './close.js';
import { Http2Sessions, isHttp2Server } from './http2.js';
import type { Transport } from './transport.js';

export class NodeHttpTransport implements Transport {
  readonly server: ProviderServer;
  readonly inFlight: InFlightTracker;
  /** An https server, or an http2 secure server: both are tls.Server. */
  readonly secure: boolean;
  /** How the server is closed when an adapter closes it its own way (fastify's close()). */
  closeServer: ((server: ProviderServer) => Promise<void>) | undefined;
  readonly #sessions: Http2Sessions | undefined;
  readonly #detach: () => void;

  constructor(server: ProviderServer, tracker: InFlightTracker) {
    this.server = server;
    this.inFlight = tracker;
    this.secure = server instanceof TlsServer;
    this.#detach = tracker.attach(server);
    if (isHttp2Server(server)) this.#sessions = new Http2Sessions(server);
  }

  async listening(): Promise<AddressInfo> {
    await waitListening(this.server);
    return this.server.address() as AddressInfo;
  }

  drainStarted(): void {
    // every HTTP/2 session goes away the graceful way; HTTP/1.x answers carry Connection: close
    this.#sessions?.goaway(this.inFlight.http2Streams());
  }

  registryLeft(): void {}

  close(): Promise<void> {
    if (!this.server.listening) return Promise.resolve();
    return this.closeServer !== undefined ? this.closeServer(this.server) : closeServer(this.server, this.#sessions);
  }

  destroy(): void {
    // also once close() began: the server no longer listens then, its connections are still open
    destroyConnections(this.server, this.#sessions);
  }

  detach(): void {
    this.#detach();
    this.#sessions?.detach();
  }
}
