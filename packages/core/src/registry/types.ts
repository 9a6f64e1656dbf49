// The contract between lossless and a service registry. Core ships a file registry and a static one;
// @lossless/nacos implements the same interface.

/** One instance of a service as a registry knows it. */
export interface Instance {
  readonly service: string;
  /** Unique within the service; by default `ip:port`. */
  readonly id: string;
  readonly ip: string;
  readonly port: number;
  /** Relative share of traffic; 0 means none. */
  readonly weight: number;
  /** False while the instance is taken out of rotation but still registered. */
  readonly enabled: boolean;
  readonly healthy: boolean;
  readonly metadata: Readonly<Record<string, string>>;
}

export type InstanceListener = (instances: readonly Instance[]) => void;

/**
 * What a registry can say about one registration, for a provider that watches its own: the registry
 * answered and holds it, answered and does not, or cannot be reached (then nothing is known).
 */
export type RegistrationState =
  | { readonly kind: 'present'; readonly instance: Instance }
  | { readonly kind: 'absent'; readonly reason: string }
  | { readonly kind: 'unreachable'; readonly error: Error };

export interface Registry {
  /** Short name for logs and errors: `file`, `static`, `nacos`. */
  readonly kind: string;
  /**
   * True when `list()` reflects `register()`/`deregister()`, so that a registration can be read back.
   * A static registry lists what it was given, whatever is registered.
   */
  readonly readsBack: boolean;
  /** True when `setEnabled()` takes an instance out of rotation without deregistering it. */
  readonly supportsEnable: boolean;
  register(instance: Instance): Promise<void>;
  deregister(instance: Instance): Promise<void>;
  setEnabled(instance: Instance, enabled: boolean): Promise<void>;
  setWeight(instance: Instance, weight: number): Promise<void>;
  /** Every instance the registry holds for the service, disabled and unhealthy ones included. */
  list(service: string): Promise<Instance[]>;
  /**
   * Calls `listener` with the full list once soon after subscribing and again after every change,
   * including a change to an empty list. Returns a function that unsubscribes.
   */
  subscribe(service: string, listener: InstanceListener, onError?: (error: Error) => void): () => void;
  /**
   * The instance as the registry holds it now (disabled included), or undefined when the registry
   * answered that it does not hold it. Rejects when the registry cannot be reached: a provider must
   * tell "gone" from "cannot tell". Without it, a provider reads its registration back with list().
   */
  lookup?(instance: Instance): Promise<Instance | undefined>;
  /**
   * Push, where the registry has it: calls `listener` when the registry's connection is lost
   * (`unreachable`), when the registration is back after a reconnect (`present`), and when a change
   * shows it gone (`absent`). A provider still reads its registration back; this only makes it sooner.
   */
  watch?(instance: Instance, listener: (state: RegistrationState) => void): () => void;
  /** Stops watchers and heartbeats. Does not deregister anything. Idempotent. */
  close(): Promise<void>;
}

/** Metadata keys lossless writes on every instance it registers, read by @lossless/client. */
export const METADATA_KEYS = {
  /** Wall-clock time of this registration, in ms since the epoch. */
  registeredAt: 'lossless.registered-at',
  /** Warm-up window the provider asks consumers to apply, in ms. */
  warmupMs: 'lossless.warmup-ms',
  /** The lossless version that registered the instance. */
  version: 'lossless.version',
} as const;
