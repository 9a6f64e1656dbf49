// The provider lifecycle: an HTTP server comes online only when it can serve (listening, warmed up,
// registered and read back) and goes offline without losing a request (out of the registry first,
// marked responses, adaptive drain, then close). Framework adapters build on this class.

import diagnosticsChannel from 'node:diagnostics_channel';
import { EventEmitter } from 'node:events';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { performance } from 'node:perf_hooks';
import pRetry from 'p-retry';
import { type AdminHandler, createAdminHandler, notFound } from './admin/handler.js';
import {
  DrainTimeoutError,
  ForcedShutdownError,
  HookFailedError,
  InvalidOptionError,
  ListenFailedError,
  LosslessError,
  ProviderStateError,
  RegistryError,
  RegistryTimeoutError,
  StartAbortedError,
  WarmupFailedError,
  WarmupTimeoutError,
} from './errors.js';
import { type DrainOutcome, DrainWaiter } from './lifecycle/drain-waiter.js';
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
import { type Instance, METADATA_KEYS, type Registry } from './registry/types.js';
import { registryFromUrl } from './registry/url.js';
import { startupWarnings } from './signals.js';
import { type InFlightRequest, InFlightTracker } from './tracking/in-flight.js';
import { VERSION } from './version.js';

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

/** A lifecycle hook (`onReady`, `preDrain`, `onClose`): may return a promise, which is awaited (bounded by `hookTimeoutMs`). */
export type HookFn = () => unknown | Promise<unknown>;

/** What `status()` returns and `GET /status` answers (as JSON): a snapshot for operators. */
export interface ProviderStatus {
  readonly service: string;
  readonly state: LifecycleState;
  /** Why the provider is in its state, in words. */
  readonly reason: string;
  /** When it entered its state (ISO 8601). */
  readonly since: string;
  readonly inStateMs: number;
  /** Requests in flight now. */
  readonly inFlight: number;
  /** Age of the oldest request in flight, in ms (0 when none). */
  readonly oldestInFlightMs: number;
  /** Requests seen since start. */
  readonly requests: number;
  readonly registry: {
    /** The registry's kind: `file`, `static`, `nacos`... */
    readonly kind: string;
    /** True while the instance is registered (and enabled). */
    readonly registered: boolean;
    /** The registration, once the server listens. */
    readonly instance: Instance | undefined;
  };
  /** The summary of the last drain, once one ended. */
  readonly lastDrain: DrainSummary | undefined;
  /** The version of @lossless/core. */
  readonly version: string;
}

/** diagnostics_channel names published by the provider. */
export const CHANNELS = {
  state: 'lossless:provider:state',
  drain: 'lossless:provider:drain',
  registry: 'lossless:provider:registry',
} as const;

/** Published on `lossless:provider:state` at every lifecycle transition. */
export interface StateChangeEvent extends StateChange {
  readonly provider: Provider;
}

/** Published on `lossless:provider:drain` at the end of each drain. */
export interface DrainEvent {
  readonly provider: Provider;
  readonly summary: DrainSummary;
}

/** Published on `lossless:provider:registry` after every register, deregister or disable call. */
export interface RegistryOperation {
  readonly provider: Provider;
  readonly service: string;
  readonly registry: string;
  readonly operation: string;
  readonly ok: boolean;
  readonly durationMs: number;
  readonly error?: LosslessError;
}

/**
 * How long closing the admin server may take at the very end (after the drain, the onClose hooks and
 * the registry's close): the last step before exit, part of the grace period a platform must allow.
 */
export const ADMIN_CLOSE_TIMEOUT_MS = 1000;

const stateChannel = diagnosticsChannel.channel(CHANNELS.state);
const drainChannel = diagnosticsChannel.channel(CHANNELS.drain);
const registryChannel = diagnosticsChannel.channel(CHANNELS.registry);

export interface ProviderEvents {
  state: [change: StateChange];
  ready: [instance: Instance];
  draining: [trigger: DrainTrigger, reason: string];
  stopped: [summary: DrainSummary];
  error: [error: LosslessError];
}

export class Provider extends EventEmitter<ProviderEvents> {
  readonly options: ResolvedProviderOptions;
  readonly registry: Registry;
  readonly tracker: InFlightTracker;
  /** Handles the admin endpoints on any server; returns false for paths it does not serve. */
  readonly adminHandler: AdminHandler;

  #state: LifecycleState = 'starting';
  #stateSince = Date.now();
  #reason = 'not started';
  #server: Server | undefined;
  #adminServer: Server | undefined;
  #instance: Instance | undefined;
  #registered = false;
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
  /** The register call under way, if any: a drain waits for it before deregistering. */
  #registerCall: Promise<void> | undefined;
  /** Resolves with the summary once the wait is over, before the server closes (POST /prestop answers then). */
  #waitOver: Promise<DrainSummary> | undefined;
  readonly #startAbort = new AbortController();
  readonly #warmups: Required<WarmupHook>[];
  readonly #onReady: { name: string; fn: HookFn }[] = [];
  readonly #preDrain: { name: string; fn: HookFn }[] = [];
  readonly #onClose: { name: string; fn: HookFn }[] = [];
  readonly #signalHandlers = new Map<NodeJS.Signals, () => void>();
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
    this.tracker = new InFlightTracker(this.#now);
    this.#warmups = [...o.warmups];
    this.adminHandler = createAdminHandler(
      {
        livez: () => ({ ok: this.#state !== 'stopped', body: this.#probeBody() }),
        readyz: () => ({ ok: this.#state === 'ready', body: this.#probeBody() }),
        startupz: () => ({
          ok: ['ready', 'draining', 'stopped'].includes(this.#state),
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

  /** The instance as registered, once known. */
  get instance(): Instance | undefined {
    return this.#instance;
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
    return this.#addHook(this.#onReady, 'onReady', fn, name);
  }

  preDrain(fn: HookFn, name = fn.name || 'preDrain'): this {
    return this.#addHook(this.#preDrain, 'preDrain', fn, name);
  }

  onClose(fn: HookFn, name = fn.name || 'onClose'): this {
    return this.#addHook(this.#onClose, 'onClose', fn, name);
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
    for (const [signal, handler] of this.#signalHandlers) process.removeListener(signal, handler);
    this.#signalHandlers.clear();
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
        registered: this.#registered,
        instance: this.#instance,
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
    this.#installSignals();
    this.#reason = 'waiting for the server to listen';
    let address: AddressInfo;
    try {
      await this.#abortable(waitListening(server), 'starting');
      address = server.address() as AddressInfo;
      if (this.options.admin !== false) await this.#abortable(this.#listenAdmin(address.address), 'starting');
    } catch (error) {
      if (error instanceof StartAbortedError) throw error;
      const coded = error instanceof ListenFailedError ? error : new ListenFailedError('server', error);
      this.#transition('failed', coded.message);
      this.#log.error({ err: coded, code: coded.code }, coded.message);
      this.emit('error', coded);
      throw coded;
    }

    this.#transition('warming', 'running warm-up hooks');
    for (const hook of this.#warmups) {
      this.#reason = `warm-up hook "${hook.name}" running`;
      try {
        await withDeadline(hook.run, hook.timeoutMs, signal);
      } catch (error) {
        if (signal.aborted) throw new StartAbortedError('warming');
        const coded =
          error instanceof DeadlineError
            ? new WarmupTimeoutError(hook.name, hook.timeoutMs)
            : new WarmupFailedError(hook.name, error);
        this.#transition('failed', coded.message);
        this.#log.error({ err: coded, code: coded.code, hook: hook.name }, coded.message);
        this.emit('error', coded);
        throw coded;
      }
    }
    if (signal.aborted) throw new StartAbortedError(this.#state);

    this.#instance = this.#describeInstance(address);
    this.#transition('registering', `registering in the ${this.registry.kind} registry`);
    await this.#register(this.#instance, signal);
    if (signal.aborted) throw new StartAbortedError('registering');
    this.#transition('ready', `registered in the ${this.registry.kind} registry`);
    this.#log.info({ instance: this.#instance }, 'ready: registered and serving');
    this.emit('ready', this.#instance);
    await this.#runHooks('onReady', this.#onReady);
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

  #describeInstance(address: AddressInfo): Instance {
    const o = this.options;
    const ip = o.instance.ip ?? registrableAddress(address.address);
    const port = o.instance.port ?? address.port;
    return {
      service: o.service,
      id: o.instance.id ?? `${ip}:${port}`,
      ip,
      port,
      weight: o.instance.weight,
      enabled: true,
      healthy: true,
      metadata: {
        ...o.instance.metadata,
        [METADATA_KEYS.registeredAt]: String(Date.now()),
        [METADATA_KEYS.warmupMs]: String(o.warmupWindowMs),
        [METADATA_KEYS.version]: VERSION,
      },
    };
  }

  async #register(instance: Instance, signal: AbortSignal): Promise<void> {
    const { timeoutMs, retryMinDelayMs, retryMaxDelayMs } = this.options.registration;
    const service = instance.service;
    try {
      await pRetry(
        async () => {
          const call = this.#registryCall('register', () => this.registry.register(instance), signal);
          this.#registerCall = call.catch(() => {});
          await call;
          this.#registered = true;
          if (!this.registry.readsBack) return;
          this.#reason = `registered; reading the registration back from the ${this.registry.kind} registry`;
          await this.#until(
            'read-back',
            async () => (await this.registry.list(service)).some((i) => i.id === instance.id && i.enabled),
            timeoutMs,
            signal,
          );
        },
        {
          retries: Number.POSITIVE_INFINITY,
          minTimeout: retryMinDelayMs,
          maxTimeout: retryMaxDelayMs,
          randomize: true,
          signal,
          onFailedAttempt: ({ error, attemptNumber }) => {
            const coded = error instanceof LosslessError ? error : new RegistryError('register', service, error);
            this.#reason = `registration attempt ${attemptNumber} failed (${coded.code}): ${coded.message}; retrying`;
            this.#log.warn({ err: coded, code: coded.code, attempt: attemptNumber }, 'registration failed, retrying');
          },
        },
      );
    } catch (error) {
      if (signal.aborted) throw new StartAbortedError('registering');
      throw error;
    }
  }

  async #registryCall(operation: string, call: () => Promise<void>, signal?: AbortSignal): Promise<void> {
    const { timeoutMs } = this.options.registration;
    const started = this.#now();
    try {
      await withDeadline(call, timeoutMs, signal);
      this.#publishRegistry(operation, started, undefined);
    } catch (error) {
      const coded =
        error instanceof DeadlineError
          ? new RegistryTimeoutError(operation, this.options.service, timeoutMs)
          : error instanceof LosslessError
            ? error
            : new RegistryError(operation, this.options.service, error, this.registry.kind);
      this.#publishRegistry(operation, started, coded);
      throw coded;
    }
  }

  #publishRegistry(operation: string, started: number, error: LosslessError | undefined): void {
    if (!registryChannel.hasSubscribers) return;
    const event: RegistryOperation = {
      provider: this,
      service: this.options.service,
      registry: this.registry.kind,
      operation,
      ok: error === undefined,
      durationMs: this.#now() - started,
      ...(error === undefined ? {} : { error }),
    };
    registryChannel.publish(event);
  }

  /** Polls `check` with a growing interval until it holds, or throws a coded error after `timeoutMs`. */
  async #until(
    operation: string,
    check: () => Promise<boolean>,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<void> {
    const deadline = this.#now() + timeoutMs;
    let delay = 10;
    for (;;) {
      let lastError: unknown;
      try {
        // every read is bounded too: a registry that never answers must not hang start or drain
        if (await withDeadline(check, Math.max(1, deadline - this.#now()), signal)) return;
      } catch (error) {
        lastError = error instanceof DeadlineError ? undefined : error;
      }
      if (signal?.aborted) throw signal.reason;
      if (this.#now() + delay > deadline) {
        if (lastError !== undefined)
          throw new RegistryError(operation, this.options.service, lastError, this.registry.kind);
        throw new RegistryTimeoutError(operation, this.options.service, timeoutMs);
      }
      await new Promise((resolve) => setTimeout(resolve, delay).unref());
      delay = Math.min(delay * 2, 250);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // drain

  async #drain(trigger: DrainTrigger, reason: string): Promise<DrainSummary> {
    const startState = this.#state;
    if (startState === 'stopped') throw new ProviderStateError('the provider is stopped');
    const inFlightAtStart = this.tracker.size;
    const longestInFlightAtStartMs = this.tracker.oldestAgeMs();
    const arrivedBefore = this.tracker.total;
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
    const preDrain = this.#runHooks('preDrain', this.#preDrain);
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
    await this.#runHooks('onClose', this.#onClose);
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
    if (drainChannel.hasSubscribers) drainChannel.publish({ provider: this, summary } satisfies DrainEvent);
    this.emit('stopped', summary);
    return summary;
  }

  /** Step a of the drain: out of the registry first, bounded, never fatal. */
  async #leaveRegistry(): Promise<DrainSummary['registry']> {
    const instance = this.#instance;
    if (instance === undefined) return 'not-registered';
    if (!this.#registered && this.#registerCall !== undefined) {
      // a register call may still be under way: let it land (bounded), then remove what it wrote,
      // so that it cannot land after the deregistration
      await withDeadline(() => this.#registerCall, this.options.registration.timeoutMs).catch(() => {});
    }
    const disable = this.options.drain.offline === 'disable' && this.registry.supportsEnable;
    const { confirmTimeoutMs } = this.options.registration;
    try {
      if (disable) await this.#registryCall('disable', () => this.registry.setEnabled(instance, false));
      else await this.#registryCall('deregister', () => this.registry.deregister(instance));
      this.#registered = false;
      if (this.registry.readsBack && confirmTimeoutMs > 0) {
        await this.#until(
          'deregister read-back',
          async () => !(await this.registry.list(instance.service)).some((i) => i.id === instance.id && i.enabled),
          confirmTimeoutMs,
        );
      }
      this.#log.info(
        { registry: this.registry.kind },
        disable ? 'disabled in the registry' : 'removed from the registry',
      );
      return disable ? 'disabled' : 'removed';
    } catch (error) {
      const coded = error instanceof LosslessError ? error : new RegistryError('deregister', instance.service, error);
      this.#log.error(
        { err: coded, code: coded.code },
        `leaving the registry failed; draining anyway (marker and quiet window still apply): ${coded.message}`,
      );
      this.emit('error', coded);
      return 'failed';
    }
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
    await this.#closeAdmin();
    this.options.exit?.(summary.exitCode);
  }

  // ---------------------------------------------------------------------------------------------
  // admin server, signals, hooks, state

  async #listenAdmin(mainAddress: string): Promise<void> {
    const admin = this.options.admin;
    if (admin === false) return;
    const server = createServer((req, res) => {
      if (!this.adminHandler(req, res)) notFound(req, res);
    });
    // probes are short: do not hold keep-alive sockets open past the drain
    server.keepAliveTimeout = 1000;
    server.requestTimeout = 10_000;
    server.headersTimeout = 5000;
    server.maxRequestsPerSocket = 100;
    const host = admin.host ?? mainAddress;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) =>
        reject(
          new ListenFailedError(
            `admin server on ${host}:${admin.port}`,
            error,
            'set admin.port or LOSSLESS_ADMIN_PORT',
          ),
        ),
      );
      server.listen(admin.port, host, () => resolve());
    });
    this.#adminServer = server;
    const bound = server.address() as AddressInfo;
    this.#log.info({ host: bound.address, port: bound.port }, 'admin server listening');
  }

  async #closeAdmin(): Promise<void> {
    const server = this.#adminServer;
    if (server === undefined) return;
    // let responses under way (POST /prestop) finish before closing
    await new Promise<void>((resolve) => setImmediate(resolve));
    await boundedClose(server, closeServer(server), ADMIN_CLOSE_TIMEOUT_MS, () => {});
  }

  #installSignals(): void {
    for (const signal of this.options.signals) {
      if (this.#signalHandlers.has(signal)) continue;
      const handler = (): void => this.#onSignal(signal);
      this.#signalHandlers.set(signal, handler);
      process.on(signal, handler);
    }
  }

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

  #addHook(list: { name: string; fn: HookFn }[], phase: string, fn: HookFn, name: string): this {
    if (typeof fn !== 'function') throw new InvalidHookError(phase, fn);
    if (phase !== 'onClose') this.#assertNotStarted(phase);
    list.push({ name, fn });
    return this;
  }

  async #runHooks(phase: string, hooks: readonly { name: string; fn: HookFn }[]): Promise<void> {
    for (const hook of hooks) {
      try {
        await withDeadline(hook.fn, this.options.hookTimeoutMs);
      } catch (error) {
        const coded = new HookFailedError(phase, hook.name, error instanceof DeadlineError ? error.message : error);
        this.#log.error({ err: coded, code: coded.code }, coded.message);
        this.emit('error', coded);
      }
    }
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
    return {
      service: this.options.service,
      state: this.#state,
      reason: this.#reason,
      inStateMs: Date.now() - this.#stateSince,
    };
  }
}

class InvalidHookError extends ProviderStateError {
  constructor(phase: string, value: unknown) {
    super(`${phase}() expects a function, got ${typeof value}`);
  }
}

/** Creates a provider; the same as `new Provider(options)`. */
export function createProvider(options: ProviderOptions): Provider {
  return new Provider(options);
}

function waitListening(server: Server): Promise<void> {
  if (server.listening) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onListening = (): void => {
      server.removeListener('error', onError);
      resolve();
    };
    const onError = (error: Error): void => {
      server.removeListener('listening', onListening);
      reject(error);
    };
    server.once('listening', onListening);
    server.once('error', onError);
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      resolve();
      return;
    }
    server.close(() => resolve());
    // server.close() closes idle keep-alive sockets too (Node >= 19); only now, at the very end
    server.closeIdleConnections();
  });
}

async function boundedClose(
  server: Server,
  closed: Promise<void>,
  timeoutMs: number,
  onTimeout: () => void,
): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  const result = await Promise.race([closed.then(() => 'closed' as const), timedOut]);
  clearTimeout(timer);
  if (result === 'timeout') {
    onTimeout();
    server.closeAllConnections();
    await closed;
  }
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
