// The instance a provider registers: the address consumers dial, the metadata lossless writes, and
// the weight it starts from (the bottom of its own warm-up ramp, where it ramps).

import type { AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { ResolvedProviderOptions } from '../options.js';
import { type Instance, METADATA_KEYS, type ProviderRegistry } from '../registry/types.js';
import { VERSION } from '../version.js';
import type { WeightRamp } from './registration.js';

/** Updates of the registered weight during a provider-side warm-up ramp. */
const RAMP_STEPS = 10;
/** Share of its weight an instance is registered with at the start of its ramp (as the client's floor). */
const RAMP_FLOOR = 0.1;

/** The provider's own weight ramp, when the registry's consumers apply no warm-up and it is not turned off. */
export function weightRamp(o: ResolvedProviderOptions, registry: ProviderRegistry): WeightRamp | undefined {
  const on = o.weightRamp ?? registry.rampsWeight === true;
  if (!on || !(o.warmupWindowMs > 0) || !(o.instance.weight > 0)) return undefined;
  return { full: o.instance.weight, windowMs: o.warmupWindowMs, floor: RAMP_FLOOR, steps: RAMP_STEPS };
}

export function describeInstance(
  o: ResolvedProviderOptions,
  secure: boolean,
  address: AddressInfo,
  ramp: WeightRamp | undefined,
): Instance {
  const ip = o.instance.ip ?? registrableAddress(address.address);
  const port = o.instance.port ?? address.port;
  return {
    service: o.service,
    id: o.instance.id ?? `${ip}:${port}`,
    ip,
    port,
    weight: ramp === undefined ? o.instance.weight : ramp.full * ramp.floor,
    enabled: true,
    healthy: true,
    metadata: {
      // what Spring Cloud (and the lossless client) read to call it over TLS (an https server, an
      // http2 secure server, a gRPC server with TLS credentials)
      ...(secure ? { [METADATA_KEYS.secure]: 'true' } : {}),
      ...o.instance.metadata,
      [METADATA_KEYS.registeredAt]: String(Date.now()),
      [METADATA_KEYS.warmupMs]: String(o.warmupWindowMs),
      [METADATA_KEYS.version]: VERSION,
      ...(ramp === undefined ? {} : { [METADATA_KEYS.weightRamp]: 'provider' }),
    },
  };
}

/** The address consumers should dial for a server bound to `bound`. */
export function registrableAddress(bound: string): string {
  if (bound !== '0.0.0.0' && bound !== '::') return bound;
  const external = Object.values(networkInterfaces())
    .flat()
    .filter((a) => a !== undefined && !a.internal);
  return (
    external.find((a) => a?.family === 'IPv4')?.address ??
    external.find((a) => a?.family === 'IPv6' && !a.address.startsWith('fe80'))?.address ??
    '127.0.0.1'
  );
}
