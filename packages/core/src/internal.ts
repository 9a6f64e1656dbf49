// @lossless/core/internal: what the other lossless packages share with core and users need not
// call: the options schema toolkit, and the transport seam through which a provider runs a server
// of another kind (@lossless/grpc). No promise of stability is made for these names.

export { closest, editDistance } from './schema/closest.js';
export type { OptionMeta } from './schema/kinds.js';
export {
  dictionary,
  doc,
  duration,
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
export type { OptionInfo, ParseSettings } from './schema/parse.js';
export {
  dottedPath,
  environmentOf,
  envOptions,
  inspect,
  parseOptions,
  schemaAt,
  sourceOf,
} from './schema/parse.js';
export type { InFlightLoad, Transport } from './server/transport.js';
