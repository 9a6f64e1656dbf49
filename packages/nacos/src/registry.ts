// Nacos as a lossless registry, through the v1 HTTP OpenAPI and the `nacos` npm client (http/naming.ts).
// Weights are on Nacos' scale (lossless 100 = Nacos 1.0); the lossless id travels in the metadata.

import type { Instance, InstanceListener, Logger, Registry } from '@lossless/core';
import { silentLogger } from '@lossless/core';
import { HttpNaming } from './http/naming.js';
import { type NacosRegistryOptions, parseNacosUrl, type ResolvedNacosOptions, resolveNacosOptions } from './options.js';

export { INSTANCE_ID_KEY, MAX_WEIGHT } from './instance.js';

export class NacosRegistry implements Registry {
  readonly kind = 'nacos';
  readonly readsBack = true;
  readonly supportsEnable = true;
  readonly options: ResolvedNacosOptions;
  readonly #naming: HttpNaming;
  #closed = false;

  constructor(options: NacosRegistryOptions) {
    this.options = resolveNacosOptions(options);
    this.#naming = new HttpNaming(this.options, options.logger ?? silentLogger);
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

  /** Stops subscriptions and heartbeats. Does not deregister anything. */
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
