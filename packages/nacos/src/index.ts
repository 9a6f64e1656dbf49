// @lossless/nacos: Nacos (2.x, and 3.x with the v1 compatibility switch) as a lossless registry.

export { NacosAuthError, NacosRequestError, NacosUnavailableError } from './errors.js';
export type { NacosRegistryOptions, ResolvedNacosOptions } from './options.js';
export { parseNacosUrl, resolveNacosOptions } from './options.js';
export { createNacosRegistry, INSTANCE_ID_KEY, MAX_WEIGHT, NacosRegistry } from './registry.js';
