// The `lossless:` resolver for grpc-js (experimental.registerResolver): a channel to
// `lossless:///order-service` gets the instances the registry lists for `order-service` (the
// discovery's table: ejected ones left out, the draining ones as a last resort when nothing else is
// left), pushed to its load-balancing policy whenever they change, with a service config that picks
// the `lossless` policy (balancer.ts). A re-resolution request (grpc-js asks for one when a connection
// ends, as on GOAWAY) is a registry refresh, rate-limited by refreshIntervalMs.

import { type ChannelOptions, experimental, Metadata, status } from '@grpc/grpc-js';
import { addressOf, type Discovery } from './discovery.js';

/** The channel option that carries the discovery (in grpc-js' prefix of options no subchannel gets). */
export const DISCOVERY_OPTION = `${experimental.SUBCHANNEL_ARGS_EXCLUDE_KEY_PREFIX}.lossless_discovery`;
/** The resolver attribute that tells the policy which service its endpoints belong to. */
export const SERVICE_ATTRIBUTE = 'lossless.service';
export const SCHEME = 'lossless';
export const POLICY = 'lossless';

const SERVICE_CONFIG = { loadBalancingConfig: [{ [POLICY]: {} }], methodConfig: [] };

export class LosslessResolver implements experimental.Resolver {
  readonly #service: string;
  readonly #listener: experimental.ResolverListener;
  readonly #discovery: Discovery | undefined;
  #unwatch: (() => void) | undefined;
  #scheduled = false;
  #destroyed = false;

  constructor(target: experimental.GrpcUri, listener: experimental.ResolverListener, options: ChannelOptions) {
    this.#service = serviceOf(target);
    this.#listener = listener;
    const discovery = options[DISCOVERY_OPTION] as Discovery | undefined;
    this.#discovery = discovery?.closed === false ? discovery : undefined;
  }

  static getDefaultAuthority(target: experimental.GrpcUri): string {
    return serviceOf(target);
  }

  updateResolution(): void {
    this.#destroyed = false;
    const discovery = this.#discovery;
    if (discovery === undefined) {
      this.#schedule();
      return;
    }
    if (this.#unwatch === undefined) {
      this.#unwatch = discovery.watch(this.#service, () => this.#schedule());
      // the first list: the table tells its watchers once it arrives; a registry that failed first
      // only marks the service loaded (its error is then reported)
      const state = discovery.service(this.#service);
      if (state.loaded) this.#schedule();
      else void state.ready.then(() => this.#schedule());
    } else discovery.table.refresh(this.#service, 'goaway');
  }

  destroy(): void {
    this.#destroyed = true;
    this.#unwatch?.();
    this.#unwatch = undefined;
  }

  /** Reports at most once per turn of the event loop, never synchronously (grpc-js' rule). */
  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      if (!this.#destroyed) this.#report();
    });
  }

  #report(): void {
    const discovery = this.#discovery;
    if (discovery === undefined) {
      this.#fail(`lossless:///${this.#service}: the channel has no discovery; pass discovery.clientOptions`);
      return;
    }
    const state = discovery.service(this.#service);
    const endpoints = discovery.endpoints(state);
    if (endpoints.length === 0 && state.lastError !== undefined) {
      this.#fail(`the ${discovery.registry.kind} registry cannot be read: ${state.lastError.message}`);
      return;
    }
    this.#listener(
      experimental.statusOrFromValue(
        endpoints.map((e) => ({ addresses: [{ host: e.instance.ip, port: e.instance.port }] })),
      ),
      { [SERVICE_ATTRIBUTE]: this.#service },
      experimental.statusOrFromValue(SERVICE_CONFIG),
      endpoints.length === 0 ? `no instance of ${this.#service} in the ${discovery.registry.kind} registry` : '',
    );
  }

  #fail(details: string): void {
    this.#listener(
      experimental.statusOrFromError({ code: status.UNAVAILABLE, details, metadata: new Metadata() }),
      {},
      null,
      details,
    );
  }
}

/** `lossless:///order-service` (or `lossless:order-service`): the service name. */
function serviceOf(target: experimental.GrpcUri): string {
  return target.path.replace(/^\/+/, '');
}

export { addressOf };
