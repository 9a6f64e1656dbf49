// @lossless/grpc/client: grpc-js clients that call a service by name through a lossless registry,
// `new Client('lossless:///order-service', credentials, discovery.clientOptions)`, through grpc-js'
// own extension points: a resolver for the `lossless:` scheme (resolver.ts) and a load-balancing
// policy (balancer.ts: warm-up weights, ejection on the marker and on GOAWAY), plus an interceptor
// that retries only what was not sent (retry.ts). Kept apart from the provider so that a server that
// calls nothing does not load it.

import { type ClientOptions, experimental } from '@grpc/grpc-js';
import type { ServiceState } from '@lossless/client';
import { LosslessBalancer, LosslessBalancerConfig, UNSENT_KEY } from './balancer.js';
import { addressOf, Discovery } from './discovery.js';
import { type GrpcClientOptions, registrySource, resolveGrpcClientOptions } from './options.js';
import { DISCOVERY_OPTION, LosslessResolver, POLICY, SCHEME } from './resolver.js';
import { retryInterceptor, unsent } from './retry.js';

export type { GrpcClientOptions, ResolvedGrpcClientOptions } from './options.js';
export { grpcClientOptionsSchema, resolveGrpcClientOptions } from './options.js';
export { UNSENT_KEY, unsent };

export interface GrpcInstanceView {
  readonly service: string;
  readonly instance: string;
  /** `host:port`. */
  readonly address: string;
  /** Its registry weight. */
  readonly weight: number;
  readonly inFlight: number;
}

export interface LosslessDiscovery {
  /**
   * What a grpc-js client of a `lossless:///service` target is built with: the channel option that
   * names this discovery and the retry interceptor. Spread your own options over it if you have some.
   */
  readonly clientOptions: ClientOptions;
  /** What the discovery knows of a service (subscribes on first use). */
  service(name: string): ServiceState;
  /** The instances in rotation of one service, or of every service used so far. */
  instances(service?: string): GrpcInstanceView[];
  /** Registry reads triggered for a service (markers, GOAWAYs, suspicious empty lists). */
  refreshCount(name: string): number;
  /** Stops the registry subscriptions (channels still open keep their last list). */
  close(): Promise<void>;
}

/**
 * A discovery over a lossless registry for grpc-js clients. Registers the `lossless:` resolver and
 * the `lossless` load-balancing policy with grpc-js (once per process; grpc-js keeps such
 * registrations globally); each channel finds its discovery in its options.
 */
export function createDiscovery(options: GrpcClientOptions = {}): LosslessDiscovery {
  const o = resolveGrpcClientOptions(options);
  register();
  const discovery = new Discovery(o, registrySource(options));
  return {
    clientOptions: {
      [DISCOVERY_OPTION]: discovery,
      interceptors: [retryInterceptor({ ...o.retry, random: o.clock.random })],
    },
    service: (name) => discovery.service(name),
    refreshCount: (name) => discovery.table.refreshCount(name),
    instances: (service) => {
      const out: GrpcInstanceView[] = [];
      for (const name of service === undefined ? discovery.table.services() : [service])
        for (const e of discovery.endpoints(discovery.service(name)))
          out.push({
            service: name,
            instance: e.instance.id,
            address: addressOf(e.instance.ip, e.instance.port),
            weight: e.instance.weight,
            inFlight: e.inFlight,
          });
      return out;
    },
    close: () => discovery.close(),
  };
}

let registered = false;

/** The `lossless:` scheme and the `lossless` policy, registered with grpc-js (idempotent). */
function register(): void {
  if (registered) return;
  registered = true;
  experimental.registerResolver(SCHEME, LosslessResolver);
  experimental.registerLoadBalancerType(POLICY, LosslessBalancer, LosslessBalancerConfig);
}
