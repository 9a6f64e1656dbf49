// The provider lifecycle: an HTTP server comes online only when it can serve (listening, warmed up,
// registered and read back) and goes offline without losing a request (out of the registry first,
// marked responses, adaptive drain, then close). This class orchestrates the state machine; the
// steps live in lifecycle/ (startup, registration, drain, hooks, signal handlers, instance), the
// admin server in admin/, the server it runs in server/ (a transport: node:http, https and http2 here,
// gRPC in @lossless/grpc). Framework adapters build on it.

import diagnosticsChannel from 'node:diagnostics_channel';
import { EventEmitter } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { type AdminHandler, createAdminHandler } from './admin/handler.js';
import { closeAdmin } from './admin/server.js';
import { InvalidOptionError, type LosslessError, ProviderStateError, StartAbortedError } from './errors.js';
import { Drain, type DrainSummary, type DrainTrigger } from './lifecycle/drain.js';
import { CHANNELS, type DrainEvent, type ProviderEvents, type ProviderStatus } from './lifecycle/events.js';
import { type HookFn, Hooks } from './lifecycle/hooks.js';
import { Registration } from './lifecycle/registration.js';
import { SignalHandlers } from './lifecycle/signal-handlers.js';
import { startUp } from './lifecycle/startup.js';
import { StateMachine } from './lifecycle/state-machine.js';
import type { LifecycleState } from './lifecycle/states.js';
import type { Logger } from './logger.js';
import {
  type ProviderOptions,
  type ProviderServer,
  type ResolvedProviderOptions,
  registrySource,
  resolveProviderOptions,
  resolveWarmup,
  type WarmupHook,
} from './options.js';
import type { Instance, ProviderRegistry } from './registry/types.js';
import { registryFromUrl } from './registry/url.js';
import { NodeHttpTransport } from './server/node-http.js';
import type { InFlightLoad, Transport } from './server/transport.js';
import { startupWarnings } from './signals.js';
import { type AnyResponse, InFlightTracker } from './tracking/in-flight.js';

export { ADMIN_CLOSE_TIMEOUT_MS } from './admin/server.js';
export type { DrainSummary, DrainTrigger } from './lifecycle/drain.js';
export type {
  DrainEvent,
  ProviderEvents,
  ProviderStatus,
  StateChange,
  StateChangeEvent,
} from './lifecycle/events.js';
export { CHANNELS } from './lifecycle/events.js';
export type { HookFn } from './lifecycle/hooks.js';
export { registrableAddress } from './lifecycle/instance.js';
export type { RegistryOperation } from './lifecycle/registration.js';

const drainChannel = diagnosticsChannel.channel(CHANNELS.drain);

export class Provider extends EventEmitter<ProviderEvents> {
  readonly options: ResolvedProviderOptions;
  readonly registry: ProviderRegistry;
  /** Handles the admin endpoints on any server; returns false for paths it does not serve. */
  readonly adminHandler: AdminHandler;

  readonly #machine: StateMachine;
  /** The server it runs, once attached. */
  #transport: Transport | undefined;
  /** Follows the requests of a node:http(s) or node:http2 server (idle until one is attached). */
  readonly #http: InFlightTracker;
  #adminServer: Server | undefined;
  #startPromise: Promise<void> | undefined;
  #drain: Drain | undefined;
  #drainPromise: Promise<DrainSummary> | undefined;
  #lastSummary: DrainSummary | undefined;
  readonly #registration: Registration;
  readonly #startAbort = new AbortController();
  readonly #warmups: Required<WarmupHook>[];
  readonly #onReady = new Hooks('onReady');
  readonly #preDrain = new Hooks('preDrain');
  readonly #onClose = new Hooks('onClose');
  readonly #signals = new SignalHandlers();
  readonly #log: Logger;
  readonly #now = performance.now.bind(performance);

  constructor(options: ProviderOptions) {
    super();
    this.options = resolveProviderOptions(options);
    const o = this.options;
    this.#log = o.logger.child?.({ service: o.service, component: 'lossless' }) ?? o.logger;
    // a URL's host name is lower case: a lossless client calls this service by name only when it
    // lists it in its `services` option (Java clients are not concerned)
    if (o.service !== o.service.toLowerCase())
      this.#log.warn(
        { service: o.service, code: 'LOSSLESS_WARN_SERVICE_CASE' },
        `service name has upper case: lossless clients find it only when they list it in their services option (services: ['${o.service}'])`,
      );
    this.registry =
      typeof o.registry === 'string'
        ? registryFromUrl(o.registry, {
            logger: this.#log,
            schemes: o.registrySchemes,
            source: registrySource(options),
          })
        : o.registry;
    this.#registration = new Registration(
      this.registry,
      { service: o.service, ...o.registration },
      this.#log,
      this,
      this.#now,
    );
    this.#machine = new StateMachine(this, this.#log, () => ({
      kind: this.registry.kind,
      registered: this.#registration.registered,
      ...this.#registration.health,
    }));
    this.#http = new InFlightTracker(this.#now);
    this.#warmups = [...o.warmups];
    const machine = this.#machine;
    this.adminHandler = createAdminHandler(
      {
        livez: () => machine.livez(),
        readyz: () => machine.readyz(),
        startupz: () => machine.startupz(),
        status: () => this.status(),
        prestop: (method) => {
          void this.drain({ trigger: 'prestop', reason: `${method} /prestop` });
          // answer once the wait is over: when mounted on the main server, this very request
          // would otherwise hold the server's close open
          return this.#drain?.waitOver ?? this.#drainPromise ?? Promise.reject(new ProviderStateError('no drain'));
        },
        metrics: o.metrics,
      },
      o.admin === false ? undefined : o.admin.token,
    );
    // keep 'error' events from throwing when nobody listens: they are logged anyway
    this.on('error', () => {});
    if (o.server !== undefined) this.attach(o.server);
  }

  get state(): LifecycleState {
    return this.#machine.state;
  }

  /** Why the instance is in its state (for example why it is not ready). */
  get reason(): string {
    return this.#machine.reason;
  }

  get inFlight(): number {
    return this.tracker.size;
  }

  /** What the server is working on: requests (or calls) in flight, arrivals, marked answers. */
  get tracker(): InFlightLoad {
    return this.#transport?.inFlight ?? this.#http;
  }

  /** The instance as registered, once known (its weight follows a warm-up ramp). */
  get instance(): Instance | undefined {
    return this.#registration.instance;
  }

  /** The admin server's address once it listens. */
  get adminAddress(): AddressInfo | undefined {
    const address = this.#adminServer?.address();
    return typeof address === 'object' && address !== null ? address : undefined;
  }

  /**
   * Declares `res` a long-lived response (server-sent events, a long poll, a streamed download that
   * never ends by itself). A drain does not wait for it; once the drain's wait is over (nothing else
   * in flight and the quiet window passed, or drain.maxDrainMs), `end(res)` is called so that the
   * application can say goodbye (a last SSE event, a `retry:` hint) and end it; the server's close
   * then gives it drain.closeTimeoutMs. Default `end`: `res.end()`. Without this call a stream counts
   * as in flight: the drain waits for it until drain.maxDrainMs and then cuts it (exit code 1).
   */
  stream<R extends AnyResponse>(res: R, end: (res: R) => unknown = (r) => r.end()): void {
    if (typeof end !== 'function') throw new InvalidOptionError('end', end, 'expected a function');
    this.#http.stream(res, end);
  }

  /**
   * Track `server`'s requests and close it at the end of the drain. Call before start(). A node:http2
   * server's streams are tracked through its 'request' event (the compat API; listening for it makes
   * Node build the compat objects of streams that a 'stream' handler answers, so those are counted
   * too, but their answers carry no marker) and its sessions get GOAWAY during the drain.
   */
  attach<S extends ProviderServer>(server: S, closeServer?: (server: S) => Promise<void>): this {
    const attached = this.#transport;
    if (attached !== undefined && !(attached instanceof NodeHttpTransport && attached.server === server))
      throw new ProviderStateError('a server is already attached; use one provider per server');
    const transport = attached ?? new NodeHttpTransport(server, this.#http);
    this.#transport = transport;
    if (closeServer !== undefined) transport.closeServer = closeServer as (server: ProviderServer) => Promise<void>;
    return this;
  }

  /**
   * Runs a server through `transport` (server/transport.ts): for adapters of servers whose sockets the
   * provider does not see (a grpc-js Server). Call once, before start(), instead of attach().
   */
  protected attachTransport(transport: Transport): this {
    if (this.#transport !== undefined && this.#transport !== transport)
      throw new ProviderStateError('a server is already attached; use one provider per server');
    this.#assertNotStarted('attachTransport');
    this.#transport = transport;
    return this;
  }

  /**
   * Count requests for these paths neither as in flight nor as arrivals (used when the admin
   * endpoints are mounted on the main server, so that probes do not hold a drain open).
   */
  ignorePaths(paths: readonly string[]): this {
    const set = new Set(paths);
    this.#http.ignore = (req) => {
      const url = req.url ?? '/';
      const q = url.indexOf('?');
      return set.has(q === -1 ? url : url.slice(0, q));
    };
    return this;
  }

  addWarmup(hook: WarmupHook): this {
    this.#assertNotStarted('addWarmup');
    this.#warmups.push(resolveWarmup(hook, `warmup "${hook?.name}"`, this.options.hookTimeoutMs));
    return this;
  }

  onReady(fn: HookFn, name = fn.name || 'onReady'): this {
    return this.#addHook(this.#onReady, fn, name);
  }

  preDrain(fn: HookFn, name = fn.name || 'preDrain'): this {
    return this.#addHook(this.#preDrain, fn, name);
  }

  onClose(fn: HookFn, name = fn.name || 'onClose'): this {
    return this.#addHook(this.#onClose, fn, name);
  }

  /**
   * Waits until the server listens, runs the warm-up hooks, registers and reads the registration
   * back. Resolves once ready; rejects with a coded error when a warm-up hook fails (the instance
   * then stays unregistered and not ready) or when a drain begins first.
   */
  start(): Promise<void> {
    this.#startPromise ??= this.#start();
    return this.#startPromise;
  }

  /**
   * Takes the instance offline without losing a request; idempotent (later calls join the drain
   * under way). Resolves with the drain's summary once the server is closed. `exit: false` leaves
   * the process alone at the end whatever the `exit` option says (the caller owns it: a framework's
   * close, a test).
   */
  drain(options: { trigger?: DrainTrigger; reason?: string; exit?: boolean } = {}): Promise<DrainSummary> {
    if (this.#drainPromise === undefined) {
      const exit = options.exit !== false;
      this.#drainPromise = this.#runDrain(options.trigger ?? 'api', options.reason ?? 'drain() called');
      this.#drainPromise.then(
        (summary) => this.#afterDrain(summary, exit),
        () => {},
      );
    }
    return this.#drainPromise;
  }

  /** Graceful: the same as drain(), for symmetry with destroy(). */
  close(): Promise<DrainSummary> {
    return this.drain({ trigger: 'api', reason: 'close() called' });
  }

  /** Forced: ends any drain at once, cutting what is still in flight. */
  destroy(): Promise<DrainSummary> {
    const done = this.drain({ trigger: 'api', reason: 'destroy() called' });
    this.#drain?.force('destroy()');
    return done;
  }

  /** Removes the signal handlers this provider installed. */
  uninstall(): void {
    this.#signals.uninstall();
  }

  /** A snapshot for operators (GET /status, `lossless status`). */
  status(): ProviderStatus {
    return this.#machine.status(this.tracker, this.#registration.instance, this.#lastSummary);
  }

  // ---------------------------------------------------------------------------------------------
  // start

  async #start(): Promise<void> {
    const transport = this.#transport;
    if (transport === undefined)
      throw new ProviderStateError('no server attached: pass `server` in the options or call attach(server) first');
    for (const warning of startupWarnings()) this.#log.warn({ code: warning.code }, warning.message);
    this.#signals.install(this.options.signals, {
      log: this.#log,
      drainTrigger: () => (this.#drainPromise === undefined ? undefined : (this.#drain?.trigger ?? 'api')),
      stopped: () => this.state === 'stopped',
      drain: (signal) => void this.drain({ trigger: 'signal', reason: `received ${signal}` }),
      force: (signal) => this.#drain?.force(signal),
      inFlight: () => this.tracker.snapshot(),
    });
    await startUp({
      options: this.options,
      registry: this.registry,
      transport,
      adminHandler: this.adminHandler,
      warmups: this.#warmups,
      machine: this.#machine,
      registration: this.#registration,
      onReady: this.#onReady,
      log: this.#log,
      signal: this.#startAbort.signal,
      adminListening: (server) => {
        this.#adminServer = server;
      },
      ready: (instance) => this.emit('ready', instance),
      report: (error) => this.#report(error),
      emitError: (error) => this.emit('error', error),
    });
  }

  // ---------------------------------------------------------------------------------------------
  // drain

  async #runDrain(trigger: DrainTrigger, reason: string): Promise<DrainSummary> {
    const from = this.state;
    if (from === 'stopped') throw new ProviderStateError('the provider is stopped');
    const drain = new Drain(
      {
        options: this.options,
        tracker: this.tracker,
        registration: this.#registration,
        preDrain: this.#preDrain,
        onClose: this.#onClose,
        transport: this.#transport,
        log: this.#log,
        now: this.#now,
        report: (error) => this.#report(error),
        emitError: (error) => this.emit('error', error),
      },
      trigger,
      reason,
      from,
    );
    this.#drain = drain;
    // never registered again from now on
    this.#registration.stopWatching();
    this.#machine.transition('draining', `${reason}: going offline`);
    this.#startAbort.abort(new StartAbortedError(from));
    this.emit('draining', trigger, reason);
    const summary = await drain.run();
    this.#lastSummary = summary;
    this.#machine.transition('stopped', `drained (${summary.outcome}) in ${summary.drainMs} ms`);
    if (drainChannel.hasSubscribers) drainChannel.publish({ provider: this, summary } satisfies DrainEvent);
    this.emit('stopped', summary);
    return summary;
  }

  async #afterDrain(summary: DrainSummary, exit: boolean): Promise<void> {
    this.uninstall();
    if (this.#adminServer !== undefined) await closeAdmin(this.#adminServer);
    if (exit) this.options.exit?.(summary.exitCode);
  }

  // ---------------------------------------------------------------------------------------------
  // hooks, state

  #addHook(hooks: Hooks, fn: HookFn, name: string): this {
    if (hooks.phase !== 'onClose') this.#assertNotStarted(hooks.phase);
    hooks.add(fn, name);
    return this;
  }

  #report(error: LosslessError): void {
    this.#log.error({ err: error, code: error.code }, error.message);
    this.emit('error', error);
  }

  #assertNotStarted(what: string): void {
    if (this.#startPromise !== undefined) throw new ProviderStateError(`${what}() must be called before start()`);
  }
}

/** Creates a provider; the same as `new Provider(options)`. */
export function createProvider(options: ProviderOptions): Provider {
  return new Provider(options);
}
