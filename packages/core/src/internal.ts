// @lossless/core/internal: what the other lossless packages (the adapters, the client, the Nacos
// registry, @lossless/grpc), the examples and the tests share with core, and users need not call: the
// options schema toolkit, the in-flight tracker, the drain's wait, the admin handler's parts, registry
// helpers, and the transport seam through which a provider runs a server of another kind. No promise
// of stability is made for these names: they may change in any release.

export type { AdminTarget, Probe } from './admin/handler.js';
export { ADMIN_PATHS, createAdminHandler, isLoopback } from './admin/handler.js';
export type { DrainLoad, DrainTiming } from './lifecycle/drain-waiter.js';
export { DrainWaiter } from './lifecycle/drain-waiter.js';
export { registrableAddress } from './lifecycle/instance.js';
export { canTransition } from './lifecycle/states.js';
export { resolveProviderOptions } from './options.js';
export type { ListRefresher } from './registry/refresher.js';
export { listRefresher } from './registry/refresher.js';
export { parseStaticAddresses } from './registry/url.js';
export { instanceProblem } from './registry/validate.js';
export { closest, editDistance } from './schema/closest.js';
export type { OptionMeta } from './schema/kinds.js';
export {
  dictionary,
  doc,
  duration,
  environment,
  fn,
  group,
  HEADER_NAME,
  headerName,
  isPlainObject,
  list,
  logger,
  MAX_DURATION_MS,
  nonEmpty,
  numberIn,
  withMethods,
} from './schema/kinds.js';
export type { Env, Key, Node, OptionInfo, Parsed, ParseSettings } from './schema/parse.js';
export {
  dottedPath,
  environmentOf,
  envOptions,
  inspect,
  parseOptions,
  schemaAt,
  sourceOf,
} from './schema/parse.js';
export type { AnyHttp2Server } from './server/http2.js';
export type { InFlightLoad, Transport } from './server/transport.js';
export type { ProcessFacts, StartupWarning } from './signals.js';
export { startupWarnings } from './signals.js';
export type { MarkerSpec } from './tracking/in-flight.js';
export { InFlightTracker } from './tracking/in-flight.js';
