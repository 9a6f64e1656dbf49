// A fixed list of addresses, for callers that know their providers (tests, sidecars, a single
// upstream). Registering with it changes nothing, and it never confirms a registration.

import { InvalidOptionError } from '../errors.js';
import type { Instance, InstanceListener, Registry } from './types.js';
import { isHost, isPort } from './validate.js';

export interface StaticAddress {
  readonly host: string;
  readonly port: number;
  readonly weight?: number;
}

export class StaticRegistry implements Registry {
  readonly kind = 'static';
  readonly readsBack = false;
  readonly supportsEnable = false;
  readonly addresses: readonly StaticAddress[];

  constructor(addresses: readonly StaticAddress[]) {
    if (!Array.isArray(addresses) || addresses.length === 0)
      throw new InvalidOptionError('addresses', addresses, 'expected at least one host:port');
    for (const [i, a] of addresses.entries()) {
      if (typeof a?.host !== 'string' || !isHost(a.host))
        throw new InvalidOptionError(`addresses[${i}].host`, a?.host, 'expected an IP address or host name');
      if (!isPort(a.port)) throw new InvalidOptionError(`addresses[${i}].port`, a.port, 'expected a port in 1..65535');
      if (a.weight !== undefined && !(Number.isFinite(a.weight) && a.weight >= 0))
        throw new InvalidOptionError(`addresses[${i}].weight`, a.weight, 'expected a finite number >= 0');
    }
    this.addresses = addresses.map((a) => ({ ...a }));
  }

  async register(): Promise<void> {}

  async deregister(): Promise<void> {}

  async setEnabled(): Promise<void> {}

  async setWeight(): Promise<void> {}

  /** The listed address with the instance's ip and port: a static registry holds nothing else. */
  async lookup(instance: Instance): Promise<Instance | undefined> {
    return (await this.list(instance.service)).find((i) => i.ip === instance.ip && i.port === instance.port);
  }

  async list(service: string): Promise<Instance[]> {
    return this.addresses.map((a) => ({
      service,
      id: `${a.host}:${a.port}`,
      ip: a.host,
      port: a.port,
      weight: a.weight ?? 100,
      enabled: true,
      healthy: true,
      metadata: {},
    }));
  }

  subscribe(service: string, listener: InstanceListener): () => void {
    let active = true;
    void this.list(service).then((instances) => {
      if (active) listener(instances);
    });
    return () => {
      active = false;
    };
  }

  async close(): Promise<void> {}
}
