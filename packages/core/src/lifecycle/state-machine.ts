// Where a provider is in its lifecycle (the machine of states.ts) and what it says about it: the
// state, why and since when; every transition logged, published on diagnostics_channel and emitted
// as 'state'; the probes (/livez, /readyz, /startupz) and the status (GET /status) read from it.

import diagnosticsChannel from 'node:diagnostics_channel';
import type { Logger } from '../logger.js';
import type { Provider } from '../provider.js';
import type { Instance } from '../registry/types.js';
import type { InFlightLoad } from '../server/transport.js';
import { VERSION } from '../version.js';
import type { DrainSummary } from './drain.js';
import { CHANNELS, type ProviderStatus, type StateChange, type StateChangeEvent } from './events.js';
import type { RegistryHealth, WatchCallbacks } from './registration.js';
import { assertTransition, type LifecycleState } from './states.js';

const stateChannel = diagnosticsChannel.channel(CHANNELS.state);

/** A probe's answer: its status (200 when ok) and its JSON body. */
export interface ProbeAnswer {
  readonly ok: boolean;
  readonly body: object;
}

/** The registry as the probes show it. */
export type RegistryView = { readonly kind: string; readonly registered: boolean } & RegistryHealth;

export class StateMachine {
  #state: LifecycleState = 'starting';
  #wasReady = false;
  #since = Date.now();
  #reason = 'not started';
  /** Why the registry cannot be used, as found when starting; shown with the reason until registered. */
  #registryProblem: string | undefined;
  readonly #provider: Provider;
  readonly #log: Logger;
  /** What the probes say of the registry. */
  readonly #registry: () => RegistryView;

  constructor(provider: Provider, log: Logger, registry: () => RegistryView) {
    this.#provider = provider;
    this.#log = log;
    this.#registry = registry;
  }

  get state(): LifecycleState {
    return this.#state;
  }

  /** When the provider entered its state (Date.now()). */
  get since(): number {
    return this.#since;
  }

  /** Why the provider is in its state (for example why it is not ready). */
  get reason(): string {
    // before registering, nothing else would say that the registry cannot be used
    const early = this.#state === 'starting' || this.#state === 'warming';
    return early && this.#registryProblem !== undefined ? `${this.#reason}; ${this.#registryProblem}` : this.#reason;
  }

  /** A new reason for the same state (a warm-up hook running, a registration attempt failed). */
  explain(reason: string): void {
    this.#reason = reason;
  }

  /** The registry cannot be used: said with the reason until the instance is registered. */
  registryUnusable(problem: string): void {
    this.#registryProblem = problem;
  }

  transition(to: LifecycleState, reason: string): void {
    const from = this.#state;
    assertTransition(from, to);
    this.#state = to;
    this.#since = Date.now();
    this.#reason = reason;
    if (to === 'ready') {
      this.#wasReady = true;
      this.#registryProblem = undefined;
    }
    const change: StateChange = { service: this.#provider.options.service, from, to, reason };
    this.#log.debug({ from, to, reason }, `lifecycle ${from} -> ${to}`);
    if (stateChannel.hasSubscribers)
      stateChannel.publish({ provider: this.#provider, ...change } satisfies StateChangeEvent);
    this.#provider.emit('state', change);
  }

  /** How a ready instance follows its registration: not ready while the registry lost it. */
  registrationWatch(registryKind: string): WatchCallbacks {
    return {
      lost: (reason) => {
        if (this.#state === 'ready') this.transition('registering', reason);
      },
      retrying: (reason) => {
        if (this.#state === 'registering') this.#reason = reason;
      },
      restored: () => {
        if (this.#state === 'registering') this.transition('ready', `registered again in the ${registryKind} registry`);
      },
    };
  }

  /** /livez: alive until stopped. */
  livez(): ProbeAnswer {
    return { ok: this.#state !== 'stopped', body: this.#body() };
  }

  /** /readyz: ready only while registered and serving. */
  readyz(): ProbeAnswer {
    return { ok: this.#state === 'ready', body: this.#body() };
  }

  /** /startupz: started once ready the first time (a registration lost later is readiness' business). */
  startupz(): ProbeAnswer {
    const started = this.#wasReady || this.#state === 'draining' || this.#state === 'stopped';
    return { ok: started, body: this.#body() };
  }

  /** GET /status: the state, what the server is working on, the registration, the last drain. */
  status(load: InFlightLoad, instance: Instance | undefined, lastDrain: DrainSummary | undefined): ProviderStatus {
    const { kind, registered, ...health } = this.#registry();
    return {
      service: this.#provider.options.service,
      state: this.#state,
      reason: this.reason,
      since: new Date(this.#since).toISOString(),
      inStateMs: Date.now() - this.#since,
      inFlight: load.size,
      oldestInFlightMs: Math.round(load.oldestAgeMs()),
      requests: load.total,
      registry: { kind, registered, instance, ...health },
      lastDrain,
      version: VERSION,
    };
  }

  #body(): object {
    return {
      service: this.#provider.options.service,
      state: this.#state,
      reason: this.reason,
      inStateMs: Date.now() - this.#since,
      registry: this.#registry(),
    };
  }
}
