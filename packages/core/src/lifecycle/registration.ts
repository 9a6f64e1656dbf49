// The provider's registration: registered only once it can serve and read back before it counts,
// watched while it is ready (registered again when the registry lost it), its weight raised through
// the warm-up where the registry's consumers apply none of their own, and taken out first when the
// instance goes offline. Every registry call is bounded, published on diagnostics_channel, and coded.
//
// Watching tells two things apart: the registry answers and the instance is not there (the provider
// is not ready until it is registered again), and the registry cannot be reached (nothing is known:
// the provider keeps serving and says so, since making every instance unready at once would turn a
// registry outage into a service outage).

import diagnosticsChannel from 'node:diagnostics_channel';
import pRetry from 'p-retry';
import { LosslessError, RegistryError, RegistryTimeoutError, StartAbortedError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Provider } from '../provider.js';
import type { Instance, ProviderRegistry, RegistrationState } from '../registry/types.js';
import { DeadlineError, withDeadline } from './timeout.js';

export interface RegistrationSettings {
  readonly service: string;
  /** Time allowed for one registry call, in ms. */
  readonly timeoutMs: number;
  readonly retryMinDelayMs: number;
  readonly retryMaxDelayMs: number;
  /** How long leaving waits for the registry to confirm, in ms (0: no confirmation). */
  readonly confirmTimeoutMs: number;
  /** How often a ready instance looks its registration up, in ms (0: never). */
  readonly checkIntervalMs: number;
}

/** The weight ramp: from `floor` of the `full` weight to all of it over `windowMs`, in `steps` updates. */
export interface WeightRamp {
  readonly full: number;
  readonly windowMs: number;
  readonly floor: number;
  readonly steps: number;
}

/** What the registry said when the registration was last looked up. */
export interface RegistryHealth {
  readonly reachable: boolean;
  /** Wall-clock ms since the registry has been unreachable. */
  readonly unreachableSince?: number;
  readonly error?: string;
}

export interface WatchCallbacks {
  /** The registry answered without the instance: not ready until registered again. */
  readonly lost: (reason: string) => void;
  /** Registered again and read back. */
  readonly restored: () => void;
  /** A failed attempt to register again (the reason is what /readyz shows). */
  readonly retrying: (reason: string) => void;
}

/** Published on `lossless:provider:registry` after every register, deregister, disable, lookup or weight call. */
export interface RegistryOperation {
  readonly provider: Provider;
  readonly service: string;
  readonly registry: string;
  readonly operation: string;
  readonly ok: boolean;
  readonly durationMs: number;
  readonly error?: LosslessError;
}

export const REGISTRY_CHANNEL = 'lossless:provider:registry';
const registryChannel = diagnosticsChannel.channel(REGISTRY_CHANNEL);

export class Registration {
  readonly registry: ProviderRegistry;
  readonly #settings: RegistrationSettings;
  readonly #log: Logger;
  readonly #now: () => number;
  /** The provider, as published on the registry channel. */
  readonly #owner: Provider;
  /** The instance as last registered (its weight follows the ramp). */
  #instance: Instance | undefined;
  #registered = false;
  /** The register call under way, if any: leaving waits for it before deregistering. */
  #registerCall: Promise<void> | undefined;
  #health: RegistryHealth = { reachable: true };
  /** Stops the watch, a registration under way after a loss, and the ramp. */
  #watching: AbortController | undefined;
  #timer: NodeJS.Timeout | undefined;
  #unwatch: (() => void) | undefined;
  #checking = false;
  #healing = false;

  constructor(
    registry: ProviderRegistry,
    settings: RegistrationSettings,
    log: Logger,
    owner: Provider,
    now: () => number,
  ) {
    this.registry = registry;
    this.#settings = settings;
    this.#log = log;
    this.#owner = owner;
    this.#now = now;
  }

  get registered(): boolean {
    return this.#registered;
  }

  get instance(): Instance | undefined {
    return this.#instance;
  }

  get health(): RegistryHealth {
    return this.#health;
  }

  /**
   * Registers and reads the registration back, retrying with backoff until it holds or `signal`
   * aborts (then StartAbortedError). `onAttemptFailed` hears each failed attempt.
   */
  async register(instance: Instance, signal: AbortSignal, onAttemptFailed: (reason: string) => void): Promise<void> {
    this.#instance = instance;
    const { timeoutMs, retryMinDelayMs, retryMaxDelayMs } = this.#settings;
    try {
      await pRetry(
        async () => {
          const current = this.#instance as Instance;
          const call = this.#call('register', () => this.registry.register(current), signal);
          this.#registerCall = call.catch(() => {});
          await call;
          this.#registered = true;
          if (!this.registry.readsBack) return;
          await this.#until(
            'read-back',
            async () => (await this.registry.lookup(current))?.enabled === true,
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
            const coded = this.#coded('register', error);
            this.#log.warn({ err: coded, code: coded.code, attempt: attemptNumber }, 'registration failed, retrying');
            onAttemptFailed(`registration attempt ${attemptNumber} failed (${coded.code}): ${coded.message}; retrying`);
          },
        },
      );
    } catch (error) {
      if (signal.aborted) throw new StartAbortedError('registering');
      throw error;
    }
  }

  /**
   * Watches the registration while the instance is ready: looks it up every checkIntervalMs and
   * listens to the registry's push where it has one; registers it again when the registry lost it.
   * When `ramp` is given, raises the registered weight along it.
   */
  watch(callbacks: WatchCallbacks, ramp: WeightRamp | undefined): void {
    const instance = this.#instance;
    if (instance === undefined || this.#watching !== undefined) return;
    const watching = new AbortController();
    this.#watching = watching;
    if (ramp !== undefined) void this.#ramp(ramp, watching.signal);
    if (!this.registry.readsBack) return;
    const { checkIntervalMs } = this.#settings;
    if (checkIntervalMs > 0) {
      this.#timer = setInterval(() => void this.#check(callbacks, watching.signal), checkIntervalMs);
      this.#timer.unref();
    }
    this.#unwatch = this.registry.watch?.(instance, (state) => {
      if (watching.signal.aborted) return;
      if (state.kind === 'unreachable') this.#unreachable(state.error);
      else void this.#check(callbacks, watching.signal);
    });
  }

  /** Stops the watch and the ramp; a registration under way after a loss is abandoned. */
  stopWatching(): void {
    this.#watching?.abort(new StartAbortedError('draining'));
    clearInterval(this.#timer);
    this.#unwatch?.();
    this.#unwatch = undefined;
  }

  /**
   * Takes the instance out of the registry (or disables it), reads that back within
   * confirmTimeoutMs, and says how it went. Never throws: a drain goes on whatever the registry does.
   */
  async leave(disable: boolean): Promise<'removed' | 'disabled' | 'not-registered' | LosslessError> {
    this.stopWatching();
    const instance = this.#instance;
    if (instance === undefined) return 'not-registered';
    if (!this.#registered && this.#registerCall !== undefined) {
      // a register call may still be under way: let it land (bounded), then remove what it wrote,
      // so that it cannot land after the deregistration
      await withDeadline(() => this.#registerCall, this.#settings.timeoutMs).catch(() => {});
    }
    const { confirmTimeoutMs } = this.#settings;
    try {
      if (disable) await this.#call('disable', () => this.registry.setEnabled(instance, false));
      else await this.#call('deregister', () => this.registry.deregister(instance));
      this.#registered = false;
      if (this.registry.readsBack && confirmTimeoutMs > 0) {
        await this.#until(
          'deregister read-back',
          async () => (await this.registry.lookup(instance))?.enabled !== true,
          confirmTimeoutMs,
        );
      }
      return disable ? 'disabled' : 'removed';
    } catch (error) {
      return this.#coded('deregister', error);
    }
  }

  // ---------------------------------------------------------------------------------------------

  async #check(callbacks: WatchCallbacks, signal: AbortSignal): Promise<void> {
    const instance = this.#instance;
    if (this.#checking || this.#healing || signal.aborted || instance === undefined) return;
    this.#checking = true;
    let state: RegistrationState;
    try {
      const found = await withDeadline(() => this.registry.lookup(instance), this.#settings.timeoutMs, signal);
      state =
        found === undefined
          ? { kind: 'absent', reason: `the ${this.registry.kind} registry no longer lists ${instance.id}` }
          : { kind: 'present', instance: found };
    } catch (error) {
      state = {
        kind: 'unreachable',
        error:
          error instanceof DeadlineError
            ? new RegistryTimeoutError('lookup', instance.service, this.#settings.timeoutMs)
            : (error as Error),
      };
    } finally {
      this.#checking = false;
    }
    if (signal.aborted) return;
    if (state.kind === 'unreachable') {
      this.#unreachable(state.error);
      return;
    }
    this.#reachable();
    if (state.kind === 'absent') await this.#heal(state.reason, callbacks, signal);
  }

  async #heal(reason: string, callbacks: WatchCallbacks, signal: AbortSignal): Promise<void> {
    const instance = this.#instance;
    if (instance === undefined) return;
    this.#healing = true;
    this.#registered = false;
    this.#log.warn({ code: 'LOSSLESS_ERR_REGISTRATION_LOST', instance: instance.id }, `${reason}: registering again`);
    callbacks.lost(`${reason}; registering again`);
    try {
      await this.register(instance, signal, callbacks.retrying);
      this.#log.info({ instance: instance.id }, 'registered again and read back');
      callbacks.restored();
    } catch {
      // aborted by a drain: the drain takes it from here
    } finally {
      this.#healing = false;
    }
  }

  #unreachable(error: Error): void {
    if (!this.#health.reachable) return;
    const coded = this.#coded('lookup', error);
    this.#health = { reachable: false, unreachableSince: Date.now(), error: `${coded.code}: ${coded.message}` };
    this.#log.warn(
      { err: coded, code: coded.code },
      `the ${this.registry.kind} registry cannot be reached; still serving, and checking again`,
    );
  }

  #reachable(): void {
    if (this.#health.reachable) return;
    const since = this.#health.unreachableSince ?? Date.now();
    this.#health = { reachable: true };
    this.#log.info({ unreachableMs: Date.now() - since }, `the ${this.registry.kind} registry answers again`);
  }

  /** Raises the registered weight from floor to full in `steps` updates over the window. */
  async #ramp(ramp: WeightRamp, signal: AbortSignal): Promise<void> {
    const { full } = ramp;
    const stepMs = ramp.windowMs / ramp.steps;
    let applied = this.#instance?.weight ?? full;
    for (let k = 1; k <= ramp.steps; k++) {
      const wait = await sleep(stepMs, signal);
      if (!wait || this.#instance === undefined) return;
      const weight = k === ramp.steps ? full : full * Math.max(ramp.floor, k / ramp.steps);
      if (weight === applied) continue;
      const next: Instance = { ...this.#instance, weight };
      this.#instance = next;
      try {
        await this.#call('weight', () => this.registry.setWeight(next, weight), signal);
        applied = weight;
      } catch (error) {
        // the next step, or a registration after a loss, carries the weight
        const coded = this.#coded('weight', error);
        this.#log.warn({ err: coded, code: coded.code, weight }, 'raising the registered weight failed');
      }
    }
  }

  async #call(operation: string, call: () => Promise<void>, signal?: AbortSignal): Promise<void> {
    const { timeoutMs } = this.#settings;
    const started = this.#now();
    try {
      await withDeadline(call, timeoutMs, signal);
      this.#publish(operation, started, undefined);
    } catch (error) {
      const coded =
        error instanceof DeadlineError
          ? new RegistryTimeoutError(operation, this.#settings.service, timeoutMs)
          : this.#coded(operation, error);
      this.#publish(operation, started, coded);
      throw coded;
    }
  }

  #coded(operation: string, error: unknown): LosslessError {
    return error instanceof LosslessError
      ? error
      : new RegistryError(operation, this.#settings.service, error, this.registry.kind);
  }

  #publish(operation: string, started: number, error: LosslessError | undefined): void {
    if (!registryChannel.hasSubscribers) return;
    const event: RegistryOperation = {
      provider: this.#owner,
      service: this.#settings.service,
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
          throw new RegistryError(operation, this.#settings.service, lastError, this.registry.kind);
        throw new RegistryTimeoutError(operation, this.#settings.service, timeoutMs);
      }
      await new Promise((resolve) => setTimeout(resolve, delay).unref());
      delay = Math.min(delay * 2, 250);
    }
  }
}

/** Resolves true after `ms`, or false as soon as `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    timer.unref();
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
