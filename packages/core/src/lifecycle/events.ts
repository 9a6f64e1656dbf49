// What a provider tells the world: its events, its diagnostics_channel names, and its status.

import type { LosslessError } from '../errors.js';
import type { Provider } from '../provider.js';
import type { Instance } from '../registry/types.js';
import type { DrainSummary, DrainTrigger } from './drain.js';
import { REGISTRY_CHANNEL, type RegistryHealth } from './registration.js';
import type { LifecycleState } from './states.js';

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

/** Published on `lossless:provider:state` at every lifecycle transition. */
export interface StateChangeEvent extends StateChange {
  readonly provider: Provider;
}

/** Published on `lossless:provider:drain` at the end of each drain. */
export interface DrainEvent {
  readonly provider: Provider;
  readonly summary: DrainSummary;
}

export interface ProviderEvents {
  state: [change: StateChange];
  ready: [instance: Instance];
  draining: [trigger: DrainTrigger, reason: string];
  stopped: [summary: DrainSummary];
  error: [error: LosslessError];
}
