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

/** What a provider needs of a registry: to register its instance, watch it, and take it out. */
export interface ProviderRegistry {
  /** Short name for logs and errors: `file`, `static`, `nacos`. */
  readonly kind: string;
  /**
   * True when `lookup()` reflects `register()`/`deregister()`, so that a registration can be read back
   * and watched. A static registry lists what it was given, whatever is registered.
   */
  readonly readsBack: boolean;
  /** True when `setEnabled()` takes an instance out of rotation without deregistering it. */
  readonly supportsEnable: boolean;
  /**
   * True when the registry's consumers may not run lossless (Java services on Nacos apply no warm-up
   * of their own): a provider then raises its registered weight through its warm-up window itself
   * (`setWeight`), unless its `weightRamp` option says otherwise.
   */
  readonly rampsWeight?: boolean;
  register(instance: Instance): Promise<void>;
  deregister(instance: Instance): Promise<void>;
  setEnabled(instance: Instance, enabled: boolean): Promise<void>;
  /** Changes the weight consumers see for a registered instance (the provider's warm-up ramp). */
  setWeight(instance: Instance, weight: number): Promise<void>;
  /**
   * The instance as the registry holds it now (disabled included), or undefined when the registry
   * answered that it does not hold it. Rejects when the registry cannot be reached: a provider must
   * tell "gone" from "cannot tell".
   */
  lookup(instance: Instance): Promise<Instance | undefined>;
  /**
   * Push, where the registry has it: calls `listener` when the registry's connection is lost
   * (`unreachable`), when the registration is back after a reconnect (`present`), and when a change
   * shows it gone (`absent`). A provider still looks its registration up; this only makes it sooner.
   */
  watch?(instance: Instance, listener: (state: RegistrationState) => void): () => void;
  /**
   * Whether this process can use the registry at all (the file registry: its directory can be
   * created and written), checked once when a provider starts. Rejects with the reason; the provider
   * reports it at once and still tries to register, in case it is fixed meanwhile.
   */
  check?(): Promise<void>;
  /** Stops watchers and heartbeats. Does not deregister anything. Idempotent. */
  close(): Promise<void>;
}

/** What discovery (the client) needs of a registry: the instances of a service, and their changes. */
export interface DiscoveryRegistry {
  /** Short name for logs and errors: `file`, `static`, `nacos`. */
  readonly kind: string;
  /** Every instance the registry holds for the service, disabled and unhealthy ones included. */
  list(service: string): Promise<Instance[]>;
  /**
   * Calls `listener` with the full list once soon after subscribing and again after every change,
   * including a change to an empty list. Returns a function that unsubscribes.
   */
  subscribe(service: string, listener: InstanceListener, onError?: (error: Error) => void): () => void;
  /** Stops watchers. Idempotent. */
  close(): Promise<void>;
}

/** A registry both sides use: the file, static and Nacos registries are. */
export interface Registry extends ProviderRegistry, DiscoveryRegistry {}

/** Metadata keys lossless writes on every instance it registers, read by @lossless/client. */
export const METADATA_KEYS = {
  /** Wall-clock time of this registration, in ms since the epoch. */
  registeredAt: 'lossless.registered-at',
  /** Warm-up window the provider asks consumers to apply, in ms. */
  warmupMs: 'lossless.warmup-ms',
  /** The lossless version that registered the instance. */
  version: 'lossless.version',
  /**
   * `provider` when the provider raises its registered weight through its warm-up itself: a consumer
   * then applies no warm-up of its own on top.
   */
  weightRamp: 'lossless.weight-ramp',
  /** `true` when the instance serves https (the key Spring Cloud reads). */
  secure: 'secure',
} as const;
