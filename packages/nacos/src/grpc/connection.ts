// One gRPC connection to a Nacos server, as Nacos' Java client keeps it (GrpcClient, RpcClient):
//   1. ServerCheckRequest (unary): the server answers with the connection id it gives this TCP connection;
//   2. the bidirectional stream, on which ConnectionSetupRequest says who we are (the `module: naming`
//      label makes Nacos keep our instances with this connection) and the server pushes requests
//      (NotifySubscriberRequest, ClientDetectionRequest, ConnectResetRequest) that we answer;
//   3. a HealthCheckRequest that the server answers only once it has registered the stream: from then
//      on the connection is ready and its instances live as long as it does.
// A HealthCheckRequest after 5 s without traffic (3 s timeout, 3 tries) finds a server that died
// without closing the TCP connection. When the stream ends, a request is refused as "unregistered", or
// the health check fails, the connection is lost: listeners hear it at once, and new connections are
// tried, next server first, with exponential backoff and jitter, until one is ready again.

import * as grpc from '@grpc/grpc-js';
import { type Logger, VERSION } from '@lossless/core';
import { NacosUnavailableError } from '../errors.js';
import { decodePayload, encodePayload, type Payload, STREAM_METHOD, UNARY_METHOD } from './payload.js';

export interface ConnectionTiming {
  /** First reconnect delay after a failed attempt; doubles per failure. */
  readonly reconnectMinMs: number;
  /** Largest reconnect delay. */
  readonly reconnectMaxMs: number;
  /** A health check is sent after this long without traffic. */
  readonly healthIdleMs: number;
  readonly healthTimeoutMs: number;
  /** Failed health checks in a row that make the connection lost. */
  readonly healthTries: number;
}

export const DEFAULT_TIMING: ConnectionTiming = {
  // a restarted server is found within ~2 s of answering again, and a dead one costs a few attempts a second at most
  reconnectMinMs: 100,
  reconnectMaxMs: 2000,
  // Nacos' Java client: keep-alive check after 5 s idle, 3 s timeout, 3 tries
  healthIdleMs: 5000,
  healthTimeoutMs: 3000,
  healthTries: 3,
};

export interface ConnectionConfig {
  /** gRPC addresses, `host:port`. */
  readonly servers: readonly string[];
  readonly tls: boolean;
  readonly requestTimeoutMs: number;
  /** Reported in every payload's metadata (informational for Nacos). */
  readonly clientIp: string;
  /** Namespace (Nacos' "tenant") of the connection. */
  readonly namespace: string;
  readonly log: Logger;
  readonly timing?: Partial<ConnectionTiming>;
}

/** Nacos' error code for a request on a connection the server does not know (NacosException.UN_REGISTER). */
const UNREGISTERED = 301;

/** A server's error answer to a request (resultCode other than 200). */
export class ServerAnswerError extends Error {
  readonly errorCode: number;
  readonly requestType: string;

  constructor(requestType: string, errorCode: number, message: string) {
    super(message);
    this.errorCode = errorCode;
    this.requestType = requestType;
  }
}

/**
 * How long a request waits for a connection. `wait`: up to the request timeout, but not once every
 * server has refused an attempt (a known outage answers at once, with the reason). `fail-fast-when-lost`:
 * the same, and not at all once a connection was lost, for reads that must say "cannot tell" at once.
 */
export type WaitPolicy = 'wait' | 'fail-fast-when-lost';

/** A handler for a request the server sends on the stream; returns the response body, or undefined for none. */
export type ServerRequestHandler = (body: Record<string, unknown>) => Record<string, unknown> | undefined;

interface Link {
  readonly epoch: number;
  readonly server: string;
  readonly client: grpc.Client;
  stream: grpc.ClientDuplexStream<Buffer, Payload> | undefined;
  dead: boolean;
}

interface Waiter {
  readonly resolve: (link: Link) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
  /** Failed attempts in a row when it began waiting. */
  readonly failuresAtStart: number;
}

type State = 'idle' | 'connecting' | 'ready' | 'lost' | 'closed';

/** The delay before the next attempt after `failures` failed ones in a row: exponential, equal jitter. */
export function reconnectDelay(failures: number, timing: ConnectionTiming, random: () => number = Math.random): number {
  const base = Math.min(timing.reconnectMaxMs, timing.reconnectMinMs * 2 ** Math.max(0, failures - 1));
  return base / 2 + (random() * base) / 2;
}

/**
 * Connection attempts across the server list: the first at once, on the server after the one that
 * answered last, then the next server after each failure with reconnectDelay() between them, until an
 * attempt succeeds or stop() is called. The timer is unref'd: reconnecting is background work.
 */
export class ServerRotation {
  readonly #servers: readonly string[];
  readonly #timing: ConnectionTiming;
  readonly #attempt: (server: string) => Promise<boolean>;
  readonly #random: () => number;
  #next = 0;
  #failures = 0;
  #running = false;
  #stopped = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    servers: readonly string[],
    timing: ConnectionTiming,
    attempt: (server: string) => Promise<boolean>,
    random: () => number = Math.random,
  ) {
    this.#servers = servers;
    this.#timing = timing;
    this.#attempt = attempt;
    this.#random = random;
  }

  /** Failed attempts since the last success. */
  get failures(): number {
    return this.#failures;
  }

  /** Starts attempting, unless attempts are under way; `server` (when in the list) goes first. */
  run(server?: string): void {
    const index = server === undefined ? -1 : this.#servers.indexOf(server);
    if (index >= 0) this.#next = index;
    if (this.#running || this.#stopped) return;
    this.#running = true;
    void this.#try();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  async #try(): Promise<void> {
    if (this.#stopped) return;
    const index = this.#next;
    const server = this.#servers[index] as string;
    this.#next = (index + 1) % this.#servers.length;
    let ok = false;
    try {
      ok = await this.#attempt(server);
    } catch {
      ok = false;
    }
    if (this.#stopped) return;
    if (ok) {
      this.#failures = 0;
      this.#running = false;
      return;
    }
    this.#failures++;
    this.#timer = setTimeout(() => void this.#try(), reconnectDelay(this.#failures, this.#timing, this.#random));
    this.#timer.unref();
  }
}

export class GrpcConnection {
  readonly #c: ConnectionConfig;
  readonly #timing: ConnectionTiming;
  readonly #log: Logger;
  #state: State = 'idle';
  #link: Link | undefined;
  #epoch = 0;
  #everReady = false;
  readonly #rotation: ServerRotation;
  #lastError: unknown;
  #lastActive = 0;
  #requestId = 0;
  #healthTimer: NodeJS.Timeout | undefined;
  readonly #waiters = new Set<Waiter>();
  readonly #onReady = new Set<(epoch: number) => void>();
  readonly #onLost = new Set<(error: Error) => void>();
  readonly #handlers = new Map<string, ServerRequestHandler>();

  constructor(config: ConnectionConfig) {
    this.#c = config;
    this.#timing = { ...DEFAULT_TIMING, ...config.timing };
    this.#log = config.log;
    this.#rotation = new ServerRotation(config.servers, this.#timing, (server) => this.#connect(server));
  }

  /** Epoch of the ready connection (each new connection gets a new one), or undefined when not ready. */
  get readyEpoch(): number | undefined {
    return this.#state === 'ready' ? this.#link?.epoch : undefined;
  }

  /** Called with the new epoch each time a connection becomes ready (the first one included). */
  onReady(listener: (epoch: number) => void): void {
    this.#onReady.add(listener);
  }

  /** Called when a ready connection is lost (not on close()). */
  onLost(listener: (error: Error) => void): void {
    this.#onLost.add(listener);
  }

  /** Answers requests of this type that the server sends on the stream. */
  handle(type: string, handler: ServerRequestHandler): void {
    this.#handlers.set(type, handler);
  }

  /** Resolves with the epoch of a ready connection, waiting for one as `wait` says. */
  async ready(wait: WaitPolicy): Promise<number> {
    return (await this.#ready(wait)).epoch;
  }

  /** Starts connecting, if not already. */
  start(): void {
    if (this.#state !== 'idle') return;
    this.#state = 'connecting';
    this.#rotation.run();
  }

  /**
   * Sends a request and resolves with the response body. `epoch` pins the request to one connection:
   * it is refused when another connection replaced that one. Rejects with NacosUnavailableError when
   * no connection is ready in time or the call fails, ServerAnswerError when the server answers an error.
   */
  async request(
    type: string,
    body: Record<string, unknown>,
    options: { headers?: Readonly<Record<string, string>>; wait: WaitPolicy; epoch?: number },
  ): Promise<Record<string, unknown>> {
    const link = await this.#ready(options.wait);
    if (options.epoch !== undefined && link.epoch !== options.epoch)
      throw new NacosUnavailableError([link.server], new Error('the connection was replaced'));
    const payload = this.#encodeRequest(type, body, options.headers);
    let answer: Payload;
    try {
      answer = await unary(link.client, payload, this.#c.requestTimeoutMs);
    } catch (error) {
      throw new NacosUnavailableError([link.server], error);
    }
    this.#lastActive = Date.now();
    const code = answer.body.resultCode;
    if (code === 200) return answer.body;
    const errorCode = typeof answer.body.errorCode === 'number' ? answer.body.errorCode : Number(code);
    const message = typeof answer.body.message === 'string' ? answer.body.message : answer.type;
    if (errorCode === UNREGISTERED) {
      // the server no longer knows this connection (it restarted, or dropped us): make a new one
      this.#lose(link, new Error(`${link.server} no longer knows this connection: ${message}`));
      throw new NacosUnavailableError([link.server], new Error(message));
    }
    throw new ServerAnswerError(type, errorCode, message);
  }

  /** Closes the connection: the server removes the instances it registered. Idempotent. */
  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#rotation.stop();
    clearTimeout(this.#healthTimer);
    const closed = new NacosUnavailableError(this.#c.servers, new Error('the registry was closed'));
    for (const waiter of this.#waiters) {
      clearTimeout(waiter.timer);
      waiter.reject(closed);
    }
    this.#waiters.clear();
    const link = this.#link;
    this.#link = undefined;
    if (link !== undefined) shut(link);
  }

  /** A method, not a field read: TypeScript would keep the state narrowed across awaits. */
  #isClosed(): boolean {
    return this.#state === 'closed';
  }

  async #ready(wait: WaitPolicy): Promise<Link> {
    if (this.#state === 'ready' && this.#link !== undefined) return this.#link;
    if (this.#state === 'closed')
      throw new NacosUnavailableError(this.#c.servers, new Error('the registry was closed'));
    this.start();
    // once a connection was lost, lookups and reads answer "cannot tell" at once instead of waiting;
    // and when every server refused already, nobody waits for the next round
    const failures = this.#rotation.failures;
    if ((wait === 'fail-fast-when-lost' && this.#everReady) || failures >= this.#c.servers.length)
      throw new NacosUnavailableError(this.#c.servers, this.#lastError ?? new Error('not connected'));
    return new Promise<Link>((resolve, reject) => {
      // a caller waits on this timer: it stays ref'd
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        reject(new NacosUnavailableError(this.#c.servers, this.#lastError ?? new Error('not connected in time')));
      }, this.#c.requestTimeoutMs);
      const waiter: Waiter = { resolve, reject, timer, failuresAtStart: failures };
      this.#waiters.add(waiter);
    });
  }

  #encodeRequest(type: string, body: Record<string, unknown>, headers?: Readonly<Record<string, string>>): Buffer {
    return encodePayload({
      type,
      // Java sends the headers in the metadata and an empty map in the body
      body: { ...body, headers: {}, requestId: String(++this.#requestId) },
      headers: headers ?? {},
      clientIp: this.#c.clientIp,
    });
  }

  /** One attempt on `server`; true once it is the ready connection. */
  async #connect(server: string): Promise<boolean> {
    if (this.#isClosed()) return false;
    try {
      const link = await this.#open(server);
      if (this.#isClosed()) {
        shut(link);
        return false;
      }
      this.#link = link;
      this.#state = 'ready';
      this.#everReady = true;
      this.#lastError = undefined;
      this.#lastActive = Date.now();
      this.#log.debug({ server, epoch: link.epoch }, 'Nacos gRPC connection ready');
      for (const waiter of this.#waiters) {
        clearTimeout(waiter.timer);
        waiter.resolve(link);
      }
      this.#waiters.clear();
      this.#scheduleHealth();
      for (const listener of this.#onReady) guard(this.#log, () => listener(link.epoch));
      return true;
    } catch (error) {
      if (this.#isClosed()) return false;
      this.#lastError = error;
      const failures = this.#rotation.failures + 1;
      this.#log.debug(
        { server, err: error, code: 'LOSSLESS_ERR_NACOS_UNAVAILABLE', failures },
        'Nacos gRPC connection attempt failed',
      );
      // every server refused since these began waiting: they hear why now, not at their timeout
      for (const waiter of this.#waiters) {
        if (failures - waiter.failuresAtStart < this.#c.servers.length) continue;
        clearTimeout(waiter.timer);
        this.#waiters.delete(waiter);
        waiter.reject(new NacosUnavailableError(this.#c.servers, error));
      }
      return false;
    }
  }

  /** Handshake with one server; resolves with a registered connection or rejects. */
  async #open(server: string): Promise<Link> {
    const credentials = this.#c.tls ? grpc.credentials.createSsl() : grpc.credentials.createInsecure();
    const client = new grpc.Client(server, credentials, CHANNEL_OPTIONS);
    const link: Link = { epoch: ++this.#epoch, server, client, stream: undefined, dead: false };
    try {
      const check = await unary(
        client,
        this.#encodeRequest('ServerCheckRequest', { module: 'internal' }),
        this.#c.requestTimeoutMs,
      );
      if (check.body.resultCode !== 200)
        throw new Error(`server check answered ${check.type} ${String(check.body.message ?? check.body.resultCode)}`);
      const stream = client.makeBidiStreamRequest(STREAM_METHOD, (b: Buffer) => b, decodePayload);
      link.stream = stream;
      stream.on('data', (payload: Payload) => this.#onStream(link, payload));
      stream.on('error', (error: Error) => this.#lose(link, error));
      stream.on('end', () => this.#lose(link, new Error(`${server} closed the stream`)));
      stream.write(
        this.#encodeRequest('ConnectionSetupRequest', {
          module: 'internal',
          clientVersion: `Nacos-Lossless-Client:${VERSION}`,
          tenant: this.#c.namespace,
          // Nacos keeps the instances of a connection labelled module=naming, and removes them when it closes
          labels: { source: 'sdk', module: 'naming' },
        }),
      );
      await this.#confirm(link);
      return link;
    } catch (error) {
      shut(link);
      throw error;
    }
  }

  /** The server registers the stream asynchronously: health checks answer "unregistered" until it has. */
  async #confirm(link: Link): Promise<void> {
    const deadline = Date.now() + this.#c.requestTimeoutMs;
    for (let attempt = 0; ; attempt++) {
      if (link.dead) throw new Error(`${link.server} closed the stream during the handshake`);
      const answer = await unary(
        link.client,
        this.#encodeRequest('HealthCheckRequest', { module: 'internal' }),
        this.#c.requestTimeoutMs,
      );
      if (answer.body.resultCode === 200) return;
      if (answer.body.errorCode !== UNREGISTERED || Date.now() > deadline)
        throw new Error(`health check answered ${String(answer.body.message ?? answer.body.errorCode)}`);
      await new Promise((resolve) => setTimeout(resolve, Math.min(100, 5 * 2 ** attempt)));
    }
  }

  #onStream(link: Link, payload: Payload): void {
    if (link !== this.#link && this.#link !== undefined) return;
    this.#lastActive = Date.now();
    const requestId = payload.body.requestId;
    const answer = (type: string, extra: Record<string, unknown> = {}): void => {
      link.stream?.write(
        encodePayload({
          type,
          body: { resultCode: 200, errorCode: 0, message: '', requestId, ...extra },
          clientIp: this.#c.clientIp,
        }),
      );
    };
    switch (payload.type) {
      case 'ClientDetectionRequest':
        answer('ClientDetectionResponse');
        return;
      case 'ConnectResetRequest': {
        answer('ConnectResetResponse');
        const ip = payload.body.serverIp;
        const port = payload.body.serverPort;
        // the server may name the one to go to; otherwise the next of the list
        const named = typeof ip === 'string' && ip !== '' ? `${ip}:${String(port)}` : undefined;
        this.#lose(link, new Error(`${link.server} asked to reconnect`), named);
        return;
      }
      case 'SetupAckRequest':
        // Java does not answer it either
        return;
      default: {
        const handler = this.#handlers.get(payload.type);
        if (handler === undefined) {
          if (payload.type.endsWith('Request'))
            this.#log.debug({ type: payload.type }, 'Nacos pushed a request lossless does not handle');
          return;
        }
        let response: Record<string, unknown> | undefined;
        try {
          response = handler(payload.body);
        } catch (error) {
          this.#log.warn({ err: error, type: payload.type }, 'handling a request pushed by Nacos failed');
          answer('ErrorResponse', { resultCode: 500, errorCode: 500, message: String(error) });
          return;
        }
        if (response !== undefined) answer(payload.type.replace(/Request$/, 'Response'), response);
      }
    }
  }

  /** The connection `link` is gone: tell the listeners, and reconnect. Ignores links already replaced. */
  #lose(link: Link, error: Error, next?: string): void {
    link.dead = true;
    if (link !== this.#link || this.#state !== 'ready') return;
    this.#link = undefined;
    this.#state = 'lost';
    this.#lastError = error;
    clearTimeout(this.#healthTimer);
    shut(link);
    this.#log.warn(
      { server: link.server, err: error, code: 'LOSSLESS_ERR_NACOS_UNAVAILABLE' },
      'Nacos gRPC connection lost; reconnecting',
    );
    for (const listener of this.#onLost) guard(this.#log, () => listener(error));
    if (this.#isClosed()) return; // a listener closed the registry
    this.#state = 'connecting';
    this.#rotation.run(next);
  }

  #scheduleHealth(): void {
    clearTimeout(this.#healthTimer);
    const link = this.#link;
    if (link === undefined) return;
    const idle = Date.now() - this.#lastActive;
    this.#healthTimer = setTimeout(() => void this.#health(link), Math.max(0, this.#timing.healthIdleMs - idle));
    this.#healthTimer.unref();
  }

  async #health(link: Link): Promise<void> {
    if (link !== this.#link) return;
    if (Date.now() - this.#lastActive >= this.#timing.healthIdleMs) {
      let lastError: unknown;
      let healthy = false;
      for (let tries = 0; tries < this.#timing.healthTries && !healthy && link === this.#link; tries++) {
        try {
          const answer = await unary(
            link.client,
            this.#encodeRequest('HealthCheckRequest', { module: 'internal' }),
            this.#timing.healthTimeoutMs,
          );
          healthy = answer.body.resultCode === 200;
          if (!healthy) lastError = new Error(String(answer.body.message ?? answer.body.errorCode));
          // an unregistered connection does not come back by asking again
          if (answer.body.errorCode === UNREGISTERED) break;
        } catch (error) {
          lastError = error;
        }
      }
      if (link !== this.#link) return;
      if (!healthy) {
        this.#lose(
          link,
          new Error(`health check failed: ${lastError instanceof Error ? lastError.message : String(lastError)}`),
        );
        return;
      }
      this.#lastActive = Date.now();
    }
    this.#scheduleHealth();
  }
}

const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  // Nacos' server refuses keep-alive pings more often than every 5 min (grpc-java's permitKeepAliveTime):
  // ping every 6 min as Java clients do; the health check above finds dead servers sooner
  'grpc.keepalive_time_ms': 360_000,
  'grpc.keepalive_timeout_ms': 20_000,
  // the server knows a connection by its TCP connection: never share one with a replaced connection
  'grpc.use_local_subchannel_pool': 1,
  // a retried call could go over a new TCP connection the server does not know
  'grpc.enable_retries': 0,
  // Java's maxInboundMessageSize: the instance lists of large services
  'grpc.max_receive_message_length': 10 * 1024 * 1024,
};

function unary(client: grpc.Client, payload: Buffer, timeoutMs: number): Promise<Payload> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      UNARY_METHOD,
      (b: Buffer) => b,
      decodePayload,
      payload,
      new grpc.Metadata(),
      { deadline: Date.now() + timeoutMs },
      (error, answer) => {
        if (error !== null || answer === undefined) reject(error ?? new Error('empty answer'));
        else resolve(answer);
      },
    );
  });
}

function shut(link: Link): void {
  link.dead = true;
  link.stream?.cancel();
  link.client.close();
}

function guard(log: Logger, fn: () => void): void {
  try {
    fn();
  } catch (error) {
    log.error({ err: error }, 'a Nacos connection listener threw');
  }
}
