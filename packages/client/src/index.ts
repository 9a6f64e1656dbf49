// @lossless/client: call services by name through the registry without losing a request while their
// instances come and go.

export type { Candidate } from './balancing/picker.js';
export { pickWeightedP2C } from './balancing/picker.js';
export type { Rotation } from './balancing/rotation.js';
export type { AgeFacts, WarmupCurve, WarmupSubject } from './balancing/warmup.js';
export {
  CLOCK_SKEW_TOLERANCE_MS,
  effectiveWeights,
  instanceAge,
  MAX_PROPAGATION_MS,
  warmupFactor,
} from './balancing/warmup.js';
export type { BreakerOptions, Circuit } from './breaker/breakers.js';
export { Breakers } from './breaker/breakers.js';
export type {
  CircuitEvent,
  EjectEvent,
  MarkerEvent,
  PickEvent,
  RefreshEvent,
  RegistryErrorEvent,
  RetryEvent,
} from './channels.js';
export { CLIENT_CHANNELS } from './channels.js';
export type { ClientOptions, InstanceView, LosslessClient } from './client.js';
export { createClient, serviceOfOrigin } from './client.js';
export type { Endpoint, ServiceState, TableOptions } from './discovery/table.js';
export { ServiceTable } from './discovery/table.js';
export {
  AllCircuitsOpenError,
  CircuitOpenError,
  NoInstanceError,
  RequestTimeoutError,
  RetryBudgetExhaustedError,
} from './errors.js';
export type { AttemptContext, BalanceDeps } from './interceptor/balance.js';
export { balance, kAttempt } from './interceptor/balance.js';
export { breaker } from './interceptor/breaker.js';
export type { DispatchFn, Interceptor } from './interceptor/pass-through.js';
export type { RetryDeps } from './interceptor/retry.js';
export { retry } from './interceptor/retry.js';
export type { Phase, RetryInput } from './retry/policy.js';
export { isReplayable, isRetryable, RetryBudget } from './retry/policy.js';
