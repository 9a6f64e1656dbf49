// What a discovery knows, shared by the resolver and the load-balancing policy of every channel that
// uses it: @lossless/client's service table over a lossless registry (first sight of each
// registration for warm-up, ejections remembered until a new registration, flapping and empty lists
// handled, the instances still draining as a last resort), told to whoever watches a service.

import type { Endpoint, ServiceState } from '@lossless/client';
import { ServiceTable } from '@lossless/client/internal';
import { type DiscoveryRegistry, registryFromUrl } from '@lossless/core';
import type { ResolvedGrpcClientOptions } from './options.js';

export class Discovery {
  readonly options: ResolvedGrpcClientOptions;
  readonly table: ServiceTable;
  readonly registry: DiscoveryRegistry;
  readonly #ownsRegistry: boolean;
  readonly #watchers = new Map<string, Set<() => void>>();
  #closed = false;

  constructor(options: ResolvedGrpcClientOptions, source: string | undefined) {
    this.options = options;
    const given = options.registry;
    this.#ownsRegistry = typeof given === 'string';
    this.registry =
      typeof given === 'string'
        ? registryFromUrl(given, { logger: options.logger, schemes: options.registrySchemes, source })
        : given;
    this.table = new ServiceTable({
      registry: this.registry,
      logger: options.logger,
      now: options.clock.now,
      refreshIntervalMs: options.refreshIntervalMs,
      onChange: (service) => {
        for (const watcher of this.#watchers.get(service) ?? []) watcher();
      },
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Calls `onChange` whenever the service's instances may have changed; returns the unwatch function. */
  watch(service: string, onChange: () => void): () => void {
    let set = this.#watchers.get(service);
    if (set === undefined) {
      set = new Set();
      this.#watchers.set(service, set);
    }
    set.add(onChange);
    return () => {
      set.delete(onChange);
    };
  }

  service(name: string): ServiceState {
    return this.table.get(name);
  }

  /** What calls may use: the usable instances, else those still draining (every instance going away at once). */
  endpoints(state: ServiceState): Endpoint[] {
    return state.endpoints.length > 0 ? state.endpoints : this.table.lastResort(state);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.table.close();
    this.#watchers.clear();
    if (this.#ownsRegistry) await this.registry.close();
  }
}

/** `host:port` of an instance, the key of its subchannel. */
export function addressOf(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
