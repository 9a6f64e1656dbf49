// @lossless/nacos: Nacos as a lossless registry, over its gRPC API (2.x, 3.x) or its v1 HTTP API.

export type { NacosApi } from './errors.js';
export { NacosAuthError, NacosRequestError, NacosUnavailableError } from './errors.js';
export type { NacosRegistryOptions, NacosTransport, ResolvedNacosOptions } from './options.js';
export { parseNacosUrl, resolveNacosOptions } from './options.js';
export { createNacosRegistry, INSTANCE_ID_KEY, MAX_WEIGHT, NacosRegistry } from './registry.js';
