// The provider lifecycle: an HTTP server comes online only when it can serve (listening, warmed up,
// registered and read back) and goes offline without losing a request (out of the registry first,
// marked responses, adaptive drain, then close). This class orchestrates; the registration
// (lifecycle/registration.ts), the admin server, signals, hooks and server closing live in their own
// modules. Framework adapters build on it.

import diagnosticsChannel from 'node:diagnostics_channel';
import { EventEmitter } from 'node:events';
import type { Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { performance } from 'node:perf_hooks';
import { Server as TlsServer } from 'node:tls';
import { type AdminHandler, createAdminHandler } from './admin/handler.js';
import { closeAdmin, listenAdmin } from './admin/server.js';
import {
  DrainTimeoutError,
  ForcedShutdownError,
  InvalidOptionError,
  ListenFailedError,
  type LosslessError,
  ProviderStateError,
  StartAbortedError,
  WarmupFailedError,
  WarmupTimeoutError,
} from './errors.js';
import { type DrainOutcome, DrainWaiter } from './lifecycle/drain-waiter.js';
import { type HookFn, Hooks } from './lifecycle/hooks.js';
import { REGISTRY_CHANNEL, Registration, type RegistryHealth, type WeightRamp } from './lifecycle/registration.js';
import { SignalHandlers } from './lifecycle/signal-handlers.js';
import { assertTransition, type LifecycleState } from './lifecycle/states.js';
import { DeadlineError, withDeadline } from './lifecycle/timeout.js';
import type { Logger } from './logger.js';
import {
  type ProviderOptions,
  type ResolvedProviderOptions,
  resolveProviderOptions,
  resolveWarmup,
  type WarmupHook,
} from './options.js';
import { type Instance, METADATA_KEYS, type ProviderRegistry } from './registry/types.js';
import { registryFromUrl } from './registry/url.js';
import { boundedClose, closeServer, waitListening } from './server/close.js';
import { startupWarnings } from './signals.js';
import { type InFlightRequest, InFlightTracker } from './tracking/in-flight.js';
import { VERSION } from './version.js';

export type { RegistryOperation } from './lifecycle/registration.js';

/** What started a drain. */
export type DrainTrigger = 'signal' | 'prestop' | 'api';

/** What a finished drain reports (also logged as one line, and returned by POST /prestop). */
export interface DrainSummary {
  readonly service: string;
  readonly trigger: DrainTrigger;
  readonly reason: string;
  readonly outcome: DrainOutcome;
  /** From the start of the drain to the server being closed, in ms. */
  readonly drainMs: number;
  readonly inFlightAtStart: number;
  /** Age of the oldest request in flight when the drain began, in ms. */
  readonly longestInFlightAtStartMs: number;
  /** Requests that arrived after the drain began (all answered with the marker). */
  readonly arrivedDuringDrain: number;
  /** Long-lived responses registered with `provider.stream()` that were told to end when the wait was over. */
  readonly streamsEnded: number;
  /** Requests still in flight when the server was closed; their connections were cut. */
  readonly cut: readonly InFlightRequest[];
  readonly registry: 'removed' | 'disabled' | 'not-registered' | 'failed';
  readonly exitCode: number;
}

export interface StateChange {
  readonly service: string;
  readonly from: LifecycleState;
  readonly to: LifecycleState;
  readonly reason: string;
}

/** What `status()` and GET /status report. */
export interface ProviderStatus {
  readonly service: string;
  readonly state: LifecycleState;
  readonly reason: string;
  /** When the provider entered its state (ISO 8601). */
  readonly since: string;
  readonly inStateMs: number;
  readonly inFlight: number;
  readonly oldestInFlightMs: number;
  /** Requests since start. */
  readonly requests: number;
  readonly registry: {
    readonly kind: string;
    readonly registered: boolean;
    readonly instance: Instance | undefined;
  } & RegistryHealth;
  readonly lastDrain: DrainSummary | undefined;
  readonly version: string;
}

/** diagnostics_channel names published by the provider. */
export const CHANNELS = {
  state: 'lossless:provider:state',
  drain: 'lossless:provider:drain',
  registry: REGISTRY_CHANNEL,
} as const;

const stateChannel = diagnosticsChannel.channel(CHANNELS.state);
const drainChannel = diagnosticsChannel.channel(CHANNELS.drain);

/** Updates of the registered weight during a provider-side warm-up ramp. */
const RAMP_STEPS = 10;
/** Share of its weight an instance is registered with at the start of its ramp (as the client's floor). */
const RAMP_FLOOR = 0.1;

export interface ProviderEvents {
  state: [change: StateChange];
  ready: [instance: Instance];
  draining: [trigger: DrainTrigger, reason: string];
  stopped: [summary: DrainSummary];
  error: [error: LosslessError];
}

export class Provider extends EventEmitter<ProviderEvents> {
  readonly options: ResolvedProviderOptions;
  readonly registry: ProviderRegistry;
  readonly tracker: InFlightTracker;
  /** Handles the admin endpoints on any server; returns false for paths it does not serve. */
  readonly adminHandler: AdminHandler;

  #state: LifecycleState = 'starting';
  #wasReady = false;
  #stateSince = Date.now();
  #reason = 'not started';
  #server: Server | undefined;
  #adminServer: Server | undefined;
  #startPromise: Promise<void> | undefined;
  #drainPromise: Promise<DrainSummary> | undefined;
  #drainTrigger: DrainTrigger | undefined;
  #signalsDuringDrain = 0;
  #lastSummary: DrainSummary | undefined;
  #waiter: DrainWaiter | undefined;
  #closeServer: ((server: Server) => Promise<void>) | undefined;
  #forceOnWaiter = false;
  /** What forced the end of the drain: a signal name or `destroy()`. */
  #forcedBy = 'destroy()';
  /** Resolves with the summary once the wait is over, before the server closes (POST /prestop answers then). */
  #waitOver: Promise<DrainSummary> | undefined;
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
        ? registryFromUrl(o.registry, { logger: this.#log, schemes: o.registrySchemes })
        : o.registry;
    this.#registration = new Registration(
      this.registry,
      { service: o.service, ...o.registration },
      this.#log,
      this,
      this.#now,
    );
    this.tracker = new InFlightTracker(this.#now);
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
          return this.#waitOver ?? this.#drainPromise ?? Promise.reject(new ProviderStateError('no drain'));
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
    return this.#reason;
  }

  get inFlight(): number {
    return this.tracker.size;
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
  stream(res: ServerResponse, end: (res: ServerResponse) => unknown = (r) => r.end()): void {
    if (typeof end !== 'function') throw new InvalidOptionError('end', end, 'expected a function');
    this.tracker.stream(res, end);
  }

  /** Track `server`'s requests and close it at the end of the drain. Call before start(). */
  attach(server: Server, closeServer?: (server: Server) => Promise<void>): this {
    if (this.#server !== undefined && this.#server !== server)
      throw new ProviderStateError('a server is already attached; use one provider per server');
    if (this.#server === undefined) {
      this.#server = server;
      this.tracker.attach(server);
    }
    if (closeServer !== undefined) this.#closeServer = closeServer;
    return this;
  }

  /**
   * Count requests for these paths neither as in flight nor as arrivals (used when the admin
   * endpoints are mounted on the main server, so that probes do not hold a drain open).
   */
  ignorePaths(paths: readonly string[]): this {
    const set = new Set(paths);
    this.tracker.ignore = (req) => {
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
   * under way). Resolves with the drain's summary once the server is closed.
   */
  drain(options: { trigger?: DrainTrigger; reason?: string } = {}): Promise<DrainSummary> {
    if (this.#drainPromise === undefined) {
      const trigger = options.trigger ?? 'api';
      this.#drainTrigger = trigger;
      this.#drainPromise = this.#drain(trigger, options.reason ?? 'drain() called');
      this.#drainPromise.then(
        (summary) => this.#afterDrain(summary),
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
    this.#forcedBy = 'destroy()';
    this.#forceOnWaiter = true;
    this.#waiter?.force();
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
      reason: this.#reason,
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
    const server = this.#server;
    if (server === undefined)
      throw new ProviderStateError('no server attached: pass `server` in the options or call attach(server) first');
    const signal = this.#startAbort.signal;
    for (const warning of startupWarnings()) this.#log.warn({ code: warning.code }, warning.message);
    this.#signals.install(this.options.signals, (name) => this.#onSignal(name));
    this.#reason = 'waiting for the server to listen';
    let address: AddressInfo;
    try {
      await this.#abortable(waitListening(server), 'starting');
      address = server.address() as AddressInfo;
      const admin = this.options.admin;
      if (admin !== false)
        this.#adminServer = await this.#abortable(
          listenAdmin(this.adminHandler, admin.port, admin.host ?? address.address, this.#log),
          'starting',
        );
    } catch (error) {
      if (error instanceof StartAbortedError) throw error;
      throw this.#fail(error instanceof ListenFailedError ? error : new ListenFailedError('server', error));
    }

    this.#transition('warming', 'running warm-up hooks');
    for (const hook of this.#warmups) {
      this.#reason = `warm-up hook "${hook.name}" running`;
      try {
        await withDeadline(hook.run, hook.timeoutMs, signal);
      } catch (error) {
        if (signal.aborted) throw new StartAbortedError('warming');
        throw this.#fail(
          error instanceof DeadlineError
            ? new WarmupTimeoutError(hook.name, hook.timeoutMs)
            : new WarmupFailedError(hook.name, error),
          { hook: hook.name },
        );
      }
    }
    if (signal.aborted) throw new StartAbortedError(this.#state);

    const ramp = this.#weightRamp();
    const instance = this.#describeInstance(server, address, ramp);
    this.#transition('registering', `registering in the ${this.registry.kind} registry`);
    this.#reason = `registering in the ${this.registry.kind} registry`;
    await this.#registration.register(instance, signal, (reason) => {
      this.#reason = reason;
    });
    if (signal.aborted) throw new StartAbortedError('registering');
    this.#transition('ready', `registered in the ${this.registry.kind} registry`);
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

  async #abortable<T>(promise: Promise<T>, state: string): Promise<T> {
    const signal = this.#startAbort.signal;
    if (signal.aborted) throw new StartAbortedError(state);
    return await new Promise<T>((resolve, reject) => {
      const onAbort = (): void => reject(new StartAbortedError(state));
      signal.addEventListener('abort', onAbort, { once: true });
      promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  /** Start-up failed: not ready, never registered; only a drain ends the process. */
  #fail(error: LosslessError, fields: object = {}): LosslessError {
    this.#transition('failed', error.message);
    this.#log.error({ err: error, code: error.code, ...fields }, error.message);
    this.emit('error', error);
    return error;
  }

  /** The provider's own weight ramp, when the registry's consumers apply no warm-up and it is not turned off. */
  #weightRamp(): WeightRamp | undefined {
    const o = this.options;
    const on = o.weightRamp ?? this.registry.rampsWeight === true;
    if (!on || !(o.warmupWindowMs > 0) || !(o.instance.weight > 0)) return undefined;
    return { full: o.instance.weight, windowMs: o.warmupWindowMs, floor: RAMP_FLOOR, steps: RAMP_STEPS };
  }

  #describeInstance(server: Server, address: AddressInfo, ramp: WeightRamp | undefined): Instance {
    const o = this.options;
    const ip = o.instance.ip ?? registrableAddress(address.address);
    const port = o.instance.port ?? address.port;
    return {
      service: o.service,
      id: o.instance.id ?? `${ip}:${port}`,
      ip,
      port,
      weight: ramp === undefined ? o.instance.weight : ramp.full * ramp.floor,
      enabled: true,
      healthy: true,
      metadata: {
        // what Spring Cloud (and the lossless client) read to call it over https
        ...(server instanceof TlsServer ? { [METADATA_KEYS.secure]: 'true' } : {}),
        ...o.instance.metadata,
        [METADATA_KEYS.registeredAt]: String(Date.now()),
        [METADATA_KEYS.warmupMs]: String(o.warmupWindowMs),
        [METADATA_KEYS.version]: VERSION,
        ...(ramp === undefined ? {} : { [METADATA_KEYS.weightRamp]: 'provider' }),
      },
    };
  }

  // ---------------------------------------------------------------------------------------------
  // drain

  async #drain(trigger: DrainTrigger, reason: string): Promise<DrainSummary> {
    const startState = this.#state;
    if (startState === 'stopped') throw new ProviderStateError('the provider is stopped');
    const inFlightAtStart = this.tracker.size;
    const longestInFlightAtStartMs = this.tracker.oldestAgeMs();
    const arrivedBefore = this.tracker.total;
    // never registered again from now on
    this.#registration.stopWatching();
    this.#transition('draining', `${reason}: going offline`);
    this.#startAbort.abort(new StartAbortedError(startState));
    this.emit('draining', trigger, reason);
    this.#log.info({ trigger, reason, inFlight: inFlightAtStart }, 'drain started');

    // from now on every response carries the marker and Connection: close
    this.tracker.startMarking(this.options.marker);
    const waiter = new DrainWaiter(this.options.drain, this.tracker, this.#now);
    this.#waiter = waiter;
    if (this.#forceOnWaiter) waiter.force();

    let announce!: (summary: DrainSummary) => void;
    this.#waitOver = new Promise((resolve) => {
      announce = resolve;
    });
    // the maximum (or a second signal) ends everything: neither the registry step nor the preDrain
    // hooks may hold the drain past it
    const cutShort = waiter.done.then((o) => (o === 'idle' ? new Promise<never>(() => {}) : o));
    const preDrain = this.#preDrain.run(this.options.hookTimeoutMs, (error) => this.#report(error));
    const registryOutcome = await Promise.race([this.#leaveRegistry(), cutShort.then(() => 'failed' as const)]);
    waiter.registrySettled();
    const outcome = await waiter.done;
    await Promise.race([preDrain, cutShort]);

    // long-lived responses end now, cleanly, within drain.closeTimeoutMs (the server's close waits for them)
    const streamsEnded =
      outcome === 'forced'
        ? 0
        : this.tracker.endStreams((error) =>
            this.#log.warn({ err: error }, 'ending a stream failed; its connection is closed'),
          );
    const cut = outcome === 'idle' ? [] : this.tracker.snapshot();
    if (cut.length > 0) {
      const error =
        outcome === 'forced'
          ? new ForcedShutdownError(this.#forcedBy, cut.length)
          : new DrainTimeoutError(this.options.drain.maxDrainMs, cut.length);
      this.#log.error({ err: error, code: error.code, requests: cut }, error.message);
      for (const request of cut) {
        this.#log.warn(
          { code: error.code, method: request.method, url: request.url, ageMs: Math.round(request.ageMs) },
          'request cut at the end of the drain',
        );
      }
      this.emit('error', error);
    }
    const summary: DrainSummary = {
      service: this.options.service,
      trigger,
      reason,
      outcome,
      drainMs: Math.round(this.#now() - waiter.startedAt),
      inFlightAtStart,
      longestInFlightAtStartMs: Math.round(longestInFlightAtStartMs),
      arrivedDuringDrain: this.tracker.total - arrivedBefore,
      streamsEnded,
      cut,
      registry: registryOutcome,
      // a process whose start failed, or that cut requests, did not end well
      exitCode: cut.length > 0 || startState === 'failed' ? 1 : 0,
    };
    announce(summary);
    await this.#closeMainServer(cut.length > 0);
    await this.#onClose.run(this.options.hookTimeoutMs, (error) => this.#report(error));
    await withDeadline(() => this.registry.close(), this.options.registration.timeoutMs).catch((error: unknown) => {
      this.#log.warn({ err: error }, 'closing the registry failed');
    });

    this.#lastSummary = summary;
    this.#transition('stopped', `drained (${outcome}) in ${summary.drainMs} ms`);
    this.#log.info(
      {
        drainMs: summary.drainMs,
        arrivedDuringDrain: summary.arrivedDuringDrain,
        longestInFlightAtStartMs: summary.longestInFlightAtStartMs,
        outcome,
        cut: cut.length,
        streamsEnded,
        registry: registryOutcome,
      },
      `drain ${outcome === 'idle' ? 'complete' : outcome}: ${summary.drainMs} ms, ${summary.arrivedDuringDrain} request(s) served during the drain, longest in flight at start ${summary.longestInFlightAtStartMs} ms`,
    );
    if (drainChannel.hasSubscribers) drainChannel.publish({ provider: this, summary });
    this.emit('stopped', summary);
    return summary;
  }

  /** Step a of the drain: out of the registry first, bounded, never fatal. */
  async #leaveRegistry(): Promise<DrainSummary['registry']> {
    const disable = this.options.drain.offline === 'disable' && this.registry.supportsEnable;
    const outcome = await this.#registration.leave(disable);
    if (typeof outcome === 'string') {
      if (outcome !== 'not-registered')
        this.#log.info(
          { registry: this.registry.kind },
          disable ? 'disabled in the registry' : 'removed from the registry',
        );
      return outcome;
    }
    this.#log.error(
      { err: outcome, code: outcome.code },
      `leaving the registry failed; draining anyway (marker and quiet window still apply): ${outcome.message}`,
    );
    this.emit('error', outcome);
    return 'failed';
  }

  async #closeMainServer(force: boolean): Promise<void> {
    const server = this.#server;
    if (server === undefined || !server.listening) {
      this.tracker.detachAll();
      return;
    }
    if (force) {
      this.tracker.abortAll();
      server.closeAllConnections();
    }
    const closed = this.#closeServer !== undefined ? this.#closeServer(server) : closeServer(server);
    await boundedClose(server, closed, this.options.drain.closeTimeoutMs, () => {
      this.#log.warn(
        { inFlight: this.tracker.size },
        'connections still open after the close timeout; destroying them',
      );
    });
    this.tracker.detachAll();
  }

  async #afterDrain(summary: DrainSummary): Promise<void> {
    this.uninstall();
    if (this.#adminServer !== undefined) await closeAdmin(this.#adminServer);
    this.options.exit?.(summary.exitCode);
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
      this.#log.info({ signal }, `${signal} during a drain started by ${this.#drainTrigger}: joining it`);
      return;
    }
    this.#log.warn({ signal, inFlight: this.tracker.snapshot() }, `another ${signal} during the drain: closing now`);
    this.#forcedBy = signal;
    this.#forceOnWaiter = true;
    this.#waiter?.force();
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
    if (stateChannel.hasSubscribers) stateChannel.publish({ provider: this, ...change });
    this.emit('state', change);
  }

  #probeBody(): object {
    const health = this.#registration.health;
    return {
      service: this.options.service,
      state: this.#state,
      reason: this.#reason,
      inStateMs: Date.now() - this.#stateSince,
      registry: { kind: this.registry.kind, registered: this.#registration.registered, ...health },
    };
  }
}

/** Creates a provider; the same as `new Provider(options)`. */
export function createProvider(options: ProviderOptions): Provider {
  return new Provider(options);
}

/** The address consumers should dial for a server bound to `bound`. */
export function registrableAddress(bound: string): string {
  if (bound !== '0.0.0.0' && bound !== '::') return bound;
  const external = Object.values(networkInterfaces())
    .flat()
    .filter((a) => a !== undefined && !a.internal);
  return (
    external.find((a) => a?.family === 'IPv4')?.address ??
    external.find((a) => a?.family === 'IPv6' && !a.address.startsWith('fe80'))?.address ??
    '127.0.0.1'
  );
}
