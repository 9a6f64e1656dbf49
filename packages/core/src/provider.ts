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
import {
  InvalidOptionError,
  type LosslessError,
  ProviderStateError,
  RegistryError,
  StartAbortedError,
} from './errors.js';
import { Drain, type DrainSummary, type DrainTrigger } from './lifecycle/drain.js';
import {
  CHANNELS,
  type DrainEvent,
  type ProviderEvents,
  type ProviderStatus,
  type StateChange,
  type StateChangeEvent,
} from './lifecycle/events.js';
import { type HookFn, Hooks } from './lifecycle/hooks.js';
import { describeInstance, weightRamp } from './lifecycle/instance.js';
import { Registration } from './lifecycle/registration.js';
import { SignalHandlers } from './lifecycle/signal-handlers.js';
import { listening, StartFailure, warmUp } from './lifecycle/startup.js';
import { assertTransition, type LifecycleState } from './lifecycle/states.js';
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
import { VERSION } from './version.js';

export { ADMIN_CLOSE_TIMEOUT_MS } from './admin/server.js';
export type { DrainSummary, DrainTrigger } from './lifecycle/drain.js';
export type { DrainEvent, ProviderEvents, ProviderStatus, StateChange, StateChangeEvent } from './lifecycle/events.js';
export { CHANNELS } from './lifecycle/events.js';
export type { HookFn } from './lifecycle/hooks.js';
export { registrableAddress } from './lifecycle/instance.js';
export type { RegistryOperation } from './lifecycle/registration.js';

const stateChannel = diagnosticsChannel.channel(CHANNELS.state);
const drainChannel = diagnosticsChannel.channel(CHANNELS.drain);

export class Provider extends EventEmitter<ProviderEvents> {
  readonly options: ResolvedProviderOptions;
  readonly registry: ProviderRegistry;
  /** Handles the admin endpoints on any server; returns false for paths it does not serve. */
  readonly adminHandler: AdminHandler;

  #state: LifecycleState = 'starting';
  #wasReady = false;
  #stateSince = Date.now();
  #reason = 'not started';
  /** Why the registry cannot be used, as found when starting; shown with the reason until registered. */
  #registryProblem: string | undefined;
  /** The server it runs, once attached. */
  #transport: Transport | undefined;
  /** Follows the requests of a node:http(s) or node:http2 server (idle until one is attached). */
  readonly #http: InFlightTracker;
  #adminServer: Server | undefined;
  #startPromise: Promise<void> | undefined;
  #drain: Drain | undefined;
  #drainPromise: Promise<DrainSummary> | undefined;
  #signalsDuringDrain = 0;
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
    this.#http = new InFlightTracker(this.#now);
    this.#warmups = [...o.warmups];
    this.adminHandler = createAdminHandler(
      {
        livez: () => ({ ok: this.#state !== 'stopped', body: this.#probeBody() }),
        readyz: () => ({ ok: this.#state === 'ready', body: this.#probeBody() }),
        // started once ready the first time: a registration lost later is readiness' business
        startupz: () => ({
          ok: this.#wasReady || ['ready', 'draining', 'stopped'].includes(this.#state),
          body: this.#probeBody(),
        }),
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
    return this.#state;
  }

  /** Why the instance is in its state (for example why it is not ready). */
  get reason(): string {
    // before registering, nothing else would say that the registry cannot be used
    const early = this.#state === 'starting' || this.#state === 'warming';
    return early && this.#registryProblem !== undefined ? `${this.#reason}; ${this.#registryProblem}` : this.#reason;
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
    return {
      service: this.options.service,
      state: this.#state,
      reason: this.reason,
      since: new Date(this.#stateSince).toISOString(),
      inStateMs: Date.now() - this.#stateSince,
      inFlight: this.tracker.size,
      oldestInFlightMs: Math.round(this.tracker.oldestAgeMs()),
      requests: this.tracker.total,
      registry: {
        kind: this.registry.kind,
        registered: this.#registration.registered,
        instance: this.#registration.instance,
        ...this.#registration.health,
      },
      lastDrain: this.#lastSummary,
      version: VERSION,
    };
  }

  // ---------------------------------------------------------------------------------------------
  // start

  async #start(): Promise<void> {
    const transport = this.#transport;
    if (transport === undefined)
      throw new ProviderStateError('no server attached: pass `server` in the options or call attach(server) first');
    const signal = this.#startAbort.signal;
    for (const warning of startupWarnings()) this.#log.warn({ code: warning.code }, warning.message);
    void this.#checkRegistry();
    this.#signals.install(this.options.signals, (name) => this.#onSignal(name));
    this.#reason = 'waiting for the server to listen';
    let address: AddressInfo;
    try {
      const up = await listening(transport, this.options.admin, this.adminHandler, this.#log, signal);
      address = up.address;
      this.#adminServer = up.adminServer;
      this.#transition('warming', 'running warm-up hooks');
      await warmUp(this.#warmups, signal, (name) => {
        this.#reason = `warm-up hook "${name}" running`;
      });
    } catch (error) {
      throw error instanceof StartFailure ? this.#fail(error.error, error.fields) : error;
    }

    const ramp = weightRamp(this.options, this.registry);
    const instance = describeInstance(this.options, transport.secure, address, ramp);
    this.#transition('registering', `registering in the ${this.registry.kind} registry`);
    await this.#registration.register(instance, signal, (reason) => {
      this.#reason = reason;
    });
    if (signal.aborted) throw new StartAbortedError('registering');
    this.#transition('ready', `registered in the ${this.registry.kind} registry`);
    this.#registryProblem = undefined;
    this.#wasReady = true;
    this.#log.info({ instance }, 'ready: registered and serving');
    this.#registration.watch(
      {
        lost: (reason) => {
          if (this.#state === 'ready') this.#transition('registering', reason);
        },
        retrying: (reason) => {
          if (this.#state === 'registering') this.#reason = reason;
        },
        restored: () => {
          if (this.#state === 'registering')
            this.#transition('ready', `registered again in the ${this.registry.kind} registry`);
        },
      },
      ramp,
    );
    this.emit('ready', instance);
    await this.#onReady.run(this.options.hookTimeoutMs, (error) => this.#report(error));
  }

  /**
   * A registry this process cannot use (a file registry's directory it cannot create or write) is
   * reported at once, not only through the retries of the registration, which go on.
   */
  async #checkRegistry(): Promise<void> {
    if (typeof this.registry.check !== 'function') return;
    try {
      await this.registry.check();
    } catch (cause) {
      const error = new RegistryError('check', this.options.service, cause, `${this.registry.kind} registry`);
      this.#registryProblem = `the ${this.registry.kind} registry cannot be used: ${error.message}`;
      this.#log.error(
        { err: error, code: error.code },
        `${error.message}; the instance cannot register until this is fixed (registration keeps trying)`,
      );
      this.emit('error', error);
    }
  }

  /** Start-up failed: not ready, never registered; only a drain ends the process. */
  #fail(error: LosslessError, fields: object = {}): LosslessError {
    this.#transition('failed', error.message);
    this.#log.error({ err: error, code: error.code, ...fields }, error.message);
    this.emit('error', error);
    return error;
  }

  // ---------------------------------------------------------------------------------------------
  // drain

  async #runDrain(trigger: DrainTrigger, reason: string): Promise<DrainSummary> {
    const from = this.#state;
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
    this.#transition('draining', `${reason}: going offline`);
    this.#startAbort.abort(new StartAbortedError(from));
    this.emit('draining', trigger, reason);
    const summary = await drain.run();
    this.#lastSummary = summary;
    const { outcome, drainMs, arrivedDuringDrain, longestInFlightAtStartMs } = summary;
    this.#transition('stopped', `drained (${outcome}) in ${drainMs} ms`);
    this.#log.info(
      {
        drainMs,
        arrivedDuringDrain,
        longestInFlightAtStartMs,
        outcome,
        cut: summary.cut.length,
        streamsEnded: summary.streamsEnded,
        registry: summary.registry,
      },
      `drain ${outcome === 'idle' ? 'complete' : outcome}: ${drainMs} ms, ${arrivedDuringDrain} request(s) served during the drain, longest in flight at start ${longestInFlightAtStartMs} ms`,
    );
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
  // signals, hooks, state

  #onSignal(signal: NodeJS.Signals): void {
    if (this.#drainPromise === undefined) {
      this.#signalsDuringDrain = 1;
      void this.drain({ trigger: 'signal', reason: `received ${signal}` });
      return;
    }
    if (this.#state === 'stopped') {
      this.#log.info({ signal }, `${signal} after the drain ended`);
      return;
    }
    // A first signal after POST /prestop or drain() joins that drain; a second signal forces the end.
    this.#signalsDuringDrain++;
    if (this.#signalsDuringDrain < 2) {
      this.#log.info({ signal }, `${signal} during a drain started by ${this.#drain?.trigger}: joining it`);
      return;
    }
    this.#log.warn({ signal, inFlight: this.tracker.snapshot() }, `another ${signal} during the drain: closing now`);
    this.#drain?.force(signal);
  }

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

  #transition(to: LifecycleState, reason: string): void {
    const from = this.#state;
    assertTransition(from, to);
    this.#state = to;
    this.#stateSince = Date.now();
    this.#reason = reason;
    const change: StateChange = { service: this.options.service, from, to, reason };
    this.#log.debug({ from, to, reason }, `lifecycle ${from} -> ${to}`);
    if (stateChannel.hasSubscribers) stateChannel.publish({ provider: this, ...change } satisfies StateChangeEvent);
    this.emit('state', change);
  }

  #probeBody(): object {
    const health = this.#registration.health;
    return {
      service: this.options.service,
      state: this.#state,
      reason: this.reason,
      inStateMs: Date.now() - this.#stateSince,
      registry: { kind: this.registry.kind, registered: this.#registration.registered, ...health },
    };
  }
}

/** Creates a provider; the same as `new Provider(options)`. */
export function createProvider(options: ProviderOptions): Provider {
  return new Provider(options);
}
