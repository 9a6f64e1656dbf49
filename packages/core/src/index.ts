// @lossless/core: lossless online/offline for a plain node:http, node:https or node:http2 server.

export type { AdminHandler } from './admin/handler.js';
export {
  DrainTimeoutError,
  ForcedShutdownError,
  HookFailedError,
  IllegalTransitionError,
  InvalidOptionError,
  InvalidRegistryUrlError,
  ListenFailedError,
  LosslessError,
  ProviderStateError,
  RegistryError,
  RegistryTimeoutError,
  StartAbortedError,
  WarmupFailedError,
  WarmupTimeoutError,
} from './errors.js';
export type { DrainOutcome } from './lifecycle/drain-waiter.js';
export type { RegistryHealth } from './lifecycle/registration.js';
export type { LifecycleState } from './lifecycle/states.js';
export { LIFECYCLE_STATES } from './lifecycle/states.js';
export type { Logger } from './logger.js';
export { createStderrLogger, silentLogger, stderrLogger } from './logger.js';
export type {
  AdminOptions,
  DrainOptions,
  InstanceOptions,
  MarkerOptions,
  MetricsSource,
  ProviderOptions,
  ProviderServer,
  RegistrationOptions,
  ResolvedProviderOptions,
  WarmupFn,
  WarmupHook,
} from './options.js';
export { DEFAULT_ADMIN_PORT, DEFAULT_MARKER_HEADER, defaultRegistryUrl } from './options.js';
export type {
  DrainEvent,
  DrainSummary,
  DrainTrigger,
  HookFn,
  ProviderEvents,
  ProviderStatus,
  RegistryOperation,
  StateChange,
  StateChangeEvent,
} from './provider.js';
export { CHANNELS, createProvider, Provider } from './provider.js';
export type { FileRegistryOptions } from './registry/file.js';
export { FileRegistry } from './registry/file.js';
export type { StaticAddress } from './registry/static.js';
export { StaticRegistry } from './registry/static.js';
export type {
  DiscoveryRegistry,
  Instance,
  InstanceListener,
  ProviderRegistry,
  RegistrationState,
  Registry,
} from './registry/types.js';
export { METADATA_KEYS } from './registry/types.js';
export type { RegistryFactory, RegistryFromUrlOptions } from './registry/url.js';
export { registryFromUrl } from './registry/url.js';
export type { InFlightLoad } from './server/transport.js';
export type { AnyRequest, AnyResponse, InFlightRequest } from './tracking/in-flight.js';
export { VERSION } from './version.js';
