// A grpc-js Server as a lossless provider runs it (the transport seam of @lossless/core). grpc-js
// owns its HTTP/2 servers and sessions and shows neither, so the provider works through its public
// API alone:
//   - listening: every bindAsync() of the server goes through this transport, which adds the call
//     tracker's interceptor to the port's credentials (experimental.createServerCredentialsWithInterceptors:
//     the tracker sees each call first, whatever interceptors the server was built with) and learns the
//     bound address;
//   - in flight: the call tracker (calls.ts);
//   - GOAWAY: server.drain(port, graceMs) once the registry step settled, so that a client that
//     re-resolves on GOAWAY (grpc-js does) no longer finds the instance. grpc-js closes each session
//     (one GOAWAY with the last stream it processed, then a second when the session ends; a stream
//     that crossed the first is refused, which clients replay elsewhere). Sessions opened during the
//     drain are told again once a call they brought ended. The grace given to drain() is the drain's
//     whole bound: lossless, not grpc-js' timer, decides when calls are cut;
//   - close: tryShutdown() (stops listening, closes sessions once their streams end), bounded by
//     drain.closeTimeoutMs, then forceShutdown().

import type { AddressInfo } from 'node:net';
import { experimental, type Server, type ServerCredentials } from '@grpc/grpc-js';
import type { Transport } from '@lossless/core/internal';
import type { CallTracker } from './calls.js';

type BindAsync = Server['bindAsync'];

/** How long the statuses of cut calls may take to go out before every session is destroyed, in ms. */
const CUT_WRITE_MS = 200;

/** A port bound through the transport: what drain() needs, and what is registered. */
interface Bound {
  /** The port as given to bindAsync(), with the port number it got: the key grpc-js' drain() takes. */
  readonly key: string;
  readonly address: AddressInfo;
}

export class GrpcTransport implements Transport {
  readonly server: Server;
  readonly inFlight: CallTracker;
  secure = false;
  readonly #graceMs: number;
  readonly #bound: Bound[] = [];
  readonly #bindAsync: BindAsync;
  readonly #listening: Promise<AddressInfo>;
  #resolve!: (address: AddressInfo) => void;
  #reject!: (error: Error) => void;
  #goaway = false;
  #closed: Promise<void> | undefined;
  #destroyed = false;
  /** A call arrived since the last GOAWAY: its session may be one opened during the drain. */
  #late = false;
  #again: NodeJS.Immediate | undefined;

  constructor(server: Server, calls: CallTracker, graceMs: number) {
    this.server = server;
    this.inFlight = calls;
    this.#graceMs = graceMs;
    this.#listening = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    // a start() that is never reached must not leave an unhandled rejection behind
    this.#listening.catch(() => {});
    this.#bindAsync = server.bindAsync;
    server.bindAsync = ((port, credentials, callback) => this.bindAsync(port, credentials, callback)) as BindAsync;
    calls.onLateArrival = () => {
      this.#late = true;
    };
    calls.onCallEnd = () => {
      if (this.#goaway && this.#late && this.#again === undefined)
        this.#again = setImmediate(() => {
          this.#again = undefined;
          this.#late = false;
          this.#drainPorts();
        });
    };
  }

  /** The server's own bindAsync, with the call tracker in front of its interceptors. */
  bindAsync(port: string, credentials: ServerCredentials, callback: (error: Error | null, port: number) => void): void {
    const withTracker = experimental.createServerCredentialsWithInterceptors(credentials, [this.inFlight.interceptor]);
    this.#bindAsync.call(this.server, port, withTracker, (error, actual) => {
      if (error === null) {
        const bound = boundPort(port, actual);
        this.#bound.push(bound);
        if (credentials._isSecure()) this.secure = true;
        this.#resolve(bound.address);
      } else this.#reject(error);
      callback(error, actual);
    });
  }

  /** The addresses bound so far. */
  get addresses(): AddressInfo[] {
    return this.#bound.map((b) => b.address);
  }

  listening(): Promise<AddressInfo> {
    return this.#listening;
  }

  drainStarted(): void {
    // the marker is on from now on (the call tracker); GOAWAY waits for the registry step
  }

  registryLeft(): void {
    this.#goaway = true;
    this.#late = false;
    this.#drainPorts();
  }

  close(): Promise<void> {
    this.#closed ??= new Promise((resolve) => this.server.tryShutdown(() => resolve()));
    return this.#closed;
  }

  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    // calls just cut get their UNAVAILABLE status out first: the graceful close ends each session
    // once its streams ended, trailers written; destroying a session sooner would turn the status
    // into CANCELLED at the caller. CUT_WRITE_MS at most; at once when nothing was cut
    if (this.inFlight.cut === 0) {
      this.server.forceShutdown();
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, CUT_WRITE_MS);
    });
    void Promise.race([this.close(), waited]).then(() => {
      clearTimeout(timer);
      this.server.forceShutdown();
    });
  }

  detach(): void {
    clearImmediate(this.#again);
    this.server.bindAsync = this.#bindAsync;
  }

  #drainPorts(): void {
    for (const { key } of this.#bound) {
      try {
        this.server.drain(key, this.#graceMs);
      } catch {
        // an unbound port: nothing to tell
      }
    }
  }
}

/** `host:port` as bound, its port number filled in; the address registered for it. */
export function boundPort(port: string, actual: number): Bound {
  const colon = port.lastIndexOf(':');
  const hostPart = colon === -1 ? port : port.slice(0, colon);
  const host = hostPart.replace(/^(dns|ipv4|ipv6):(\/\/\/)?/, '').replace(/^\[(.*)\]$/, '$1');
  const ip = host === '' || host === 'localhost' ? '127.0.0.1' : host;
  return {
    key: `${hostPart}:${actual}`,
    address: { address: ip, port: actual, family: ip.includes(':') ? 'IPv6' : 'IPv4' },
  };
}
