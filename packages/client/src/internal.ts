// @lossless/client/internal: the client's parts, for the lossless packages, benchmarks and tests:
// the three interceptors (balance, breaker, retry) and what they are built on (the service table,
// the rotation, warm-up weights, breakers, the retry policy), and the options' resolution. No
// promise of stability is made for these names: they may change in any release.

export type { Candidate } from './balancing/picker.js';
export { pickWeightedP2C } from './balancing/picker.js';
export { Rotation } from './balancing/rotation.js';
export type { AgeFacts, WarmupCurve, WarmupSubject } from './balancing/warmup.js';
export {
  CLOCK_SKEW_TOLERANCE_MS,
  effectiveWeights,
  instanceAge,
  MAX_PROPAGATION_MS,
  warmupFactor,
} from './balancing/warmup.js';
export type { BreakerOptions } from './breaker/breakers.js';
export { Breakers } from './breaker/breakers.js';
export type { TableOptions } from './discovery/table.js';
export { ServiceTable } from './discovery/table.js';
export type { AttemptContext, BalanceDeps } from './interceptor/balance.js';
export { balance, idleController, kAttempt, rotationOf } from './interceptor/balance.js';
export { breaker } from './interceptor/breaker.js';
export type { Controller, DispatchFn, Headers, Interceptor } from './interceptor/pass-through.js';
export { PassThrough } from './interceptor/pass-through.js';
export type { RetryDeps } from './interceptor/retry.js';
export { retry } from './interceptor/retry.js';
export type { ResolvedClientOptions } from './options.js';
export { clientOptionsSchema, clockSchema, discoveryOptions, resolveClientOptions, warmupSchema } from './options.js';
export type { Phase, RetryInput } from './retry/policy.js';
export { isReplayable, isRetryable, RetryBudget } from './retry/policy.js';
