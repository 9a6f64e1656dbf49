// Nacos as a lossless registry. The transport is chosen from the options:
//   - grpc (default): Nacos' gRPC API (grpc/naming.ts), as Java clients speak it since Nacos 2.0:
//     instances live as long as the connection, changes are pushed, registrations are made again
//     after a reconnect, and watch() tells a provider when its registration is lost or back;
//   - http: the v1 HTTP OpenAPI and the `nacos` npm client (http/naming.ts), for Nacos 1.x,
//     persistent instances, or a closed gRPC port.
// Both map weights to Nacos' scale (lossless 100 = Nacos 1.0) and carry the lossless id in the metadata.

import type { Instance, InstanceListener, Logger, RegistrationState, Registry } from '@lossless/core';
import { stderrLogger } from '@lossless/core';
import { GrpcNaming } from './grpc/naming.js';
import { HttpNaming } from './http/naming.js';
import { type NacosRegistryOptions, parseNacosUrl, type ResolvedNacosOptions, resolveNacosOptions } from './options.js';

export { INSTANCE_ID_KEY, MAX_WEIGHT } from './instance.js';

export class NacosRegistry implements Registry {
  readonly kind = 'nacos';
  readonly readsBack = true;
  readonly supportsEnable = true;
  /**
   * Java services on Nacos (Spring Cloud Alibaba, Dubbo) apply no warm-up of their own: a lossless
   * provider raises its registered weight through its warm-up instead (its `weightRamp` option).
   */
  readonly rampsWeight = true;
  readonly options: ResolvedNacosOptions;
  /**
   * Over gRPC: calls `listener` when the connection is lost (`unreachable`), when the registration is
   * back after a reconnect (`present`), and when a push of its service lacks it (`absent`). Undefined
   * over HTTP, which has no push to tell it sooner than a lookup.
   */
  readonly watch?: (instance: Instance, listener: (state: RegistrationState) => void) => () => void;

  readonly #naming: GrpcNaming | HttpNaming;
  #closed = false;

  constructor(options: NacosRegistryOptions) {
    this.options = resolveNacosOptions(options);
    const log = options.logger ?? stderrLogger;
    if (this.options.transport === 'grpc') {
      const naming = new GrpcNaming(this.options, log);
      this.#naming = naming;
      this.watch = (instance, listener) => naming.watch(instance, listener);
    } else {
      this.#naming = new HttpNaming(this.options, log);
    }
  }

  register(instance: Instance): Promise<void> {
    return this.#naming.register(instance);
  }

  deregister(instance: Instance): Promise<void> {
    return this.#naming.deregister(instance);
  }

  setEnabled(instance: Instance, enabled: boolean): Promise<void> {
    return this.#naming.setEnabled(instance, enabled);
  }

  /** Sets the lossless weight; Nacos holds it divided by 100. */
  setWeight(instance: Instance, weight: number): Promise<void> {
    return this.#naming.setWeight(instance, weight);
  }

  /** Instances Nacos lists for the service (Nacos leaves disabled instances out of this list). */
  list(service: string): Promise<Instance[]> {
    return this.#naming.list(service);
  }

  /**
   * The instance as Nacos holds it, disabled included; undefined when Nacos answered that it does not
   * hold it. Rejects with NacosUnavailableError when Nacos cannot be reached: never undefined for an outage.
   */
  lookup(instance: Pick<Instance, 'service' | 'ip' | 'port'>): Promise<Instance | undefined> {
    return this.#naming.lookup(instance);
  }

  /** The same as lookup(). */
  get(instance: Pick<Instance, 'service' | 'ip' | 'port'>): Promise<Instance | undefined> {
    return this.#naming.lookup(instance);
  }

  subscribe(service: string, listener: InstanceListener, onError?: (error: Error) => void): () => void {
    return this.#naming.subscribe(service, listener, onError);
  }

  /** Stops subscriptions, heartbeats and the connection (over gRPC, Nacos then drops its instances). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#naming.close();
  }
}

/** Creates a Nacos registry from a `nacos://` URL (for `registrySchemes: { nacos: createNacosRegistry }`). */
export function createNacosRegistry(url: string, context: { readonly logger?: Logger } = {}): NacosRegistry {
  return new NacosRegistry({ ...parseNacosUrl(url), ...(context.logger ? { logger: context.logger } : {}) });
}
