// @lossless/core: lossless online/offline for a plain node:http, node:https or node:http2 server.

export type { AdminHandler, AdminTarget, Probe } from './admin/handler.js';
export { ADMIN_PATHS, createAdminHandler, isLoopback } from './admin/handler.js';
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
export type { DrainOutcome, DrainTiming } from './lifecycle/drain-waiter.js';
export { DrainWaiter } from './lifecycle/drain-waiter.js';
export type { LifecycleState } from './lifecycle/states.js';
export { canTransition, LIFECYCLE_STATES } from './lifecycle/states.js';
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
export {
  DEFAULT_ADMIN_PORT,
  DEFAULT_MARKER_HEADER,
  defaultRegistryUrl,
  resolveProviderOptions,
} from './options.js';
export type {
  DrainSummary,
  DrainTrigger,
  ProviderEvents,
  ProviderStatus,
  RegistryOperation,
  StateChange,
} from './provider.js';
export { CHANNELS, createProvider, Provider, registrableAddress } from './provider.js';
export type { FileRegistryOptions } from './registry/file.js';
export { FileRegistry } from './registry/file.js';
export type { ListRefresher } from './registry/refresher.js';
export { listRefresher } from './registry/refresher.js';
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
export { parseStaticAddresses, registryFromUrl } from './registry/url.js';
export { instanceProblem } from './registry/validate.js';
export type { InFlightLoad } from './server/transport.js';
export type { ProcessFacts, StartupWarning } from './signals.js';
export { startupWarnings } from './signals.js';
export type { AnyRequest, AnyResponse, InFlightRequest, MarkerSpec } from './tracking/in-flight.js';
export { InFlightTracker } from './tracking/in-flight.js';
export { VERSION } from './version.js';
