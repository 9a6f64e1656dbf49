// createClient(): a fetch-compatible function and an undici Dispatcher that call services by name
// (`http://order-service/api/orders`) through the registry, losing no request while their instances
// come and go. Instances registered as secure are called over https, where undici negotiates HTTP/2;
// a GOAWAY on an instance's session takes it out of rotation as the offline marker does.

import { InvalidOptionError, registryFromUrl } from '@lossless/core';
import { Agent, Client, type Dispatcher, Pool, fetch as undiciFetch, request as undiciRequest } from 'undici';
import { Breakers } from './breaker/breakers.js';
import { type ServiceState, ServiceTable } from './discovery/table.js';
import { type BalanceDeps, balance, rotationOf } from './interceptor/balance.js';
import { breaker } from './interceptor/breaker.js';
import { retry } from './interceptor/retry.js';
import { type ClientOptions, registrySource, resolveClientOptions, serviceOfOrigin } from './options.js';
import { RetryBudget } from './retry/policy.js';

export type { ClientOptions } from './options.js';

export interface LosslessClient {
  /** `fetch` that resolves service names through the registry. */
  readonly fetch: (input: string | URL, init?: Parameters<typeof undiciFetch>[1]) => ReturnType<typeof undiciFetch>;
  /** undici's `request` through the client (the fast path). */
  readonly request: (
    url: string | URL,
    options?: Omit<Parameters<typeof undiciRequest>[1], 'dispatcher'>,
  ) => ReturnType<typeof undiciRequest>;
  /** The undici Dispatcher, for `undici.request(url, { dispatcher })`, `fetch(url, { dispatcher })`, `setGlobalDispatcher`. */
  readonly dispatcher: Dispatcher;
  /** What the client currently knows of a service (subscribes on first use). */
  readonly service: (name: string) => ServiceState;
  /** Registry refreshes triggered for a service (markers, suspicious empty answers). */
  readonly refreshCount: (name: string) => number;
  /** Circuit state of an instance origin (`http://ip:port`). */
  readonly circuit: (origin: string) => 'closed' | 'open' | 'half-open';
  /**
   * The instances in rotation now, with their warm-up weights, requests in flight and circuit state:
   * of one service, or of every service used so far. Reads no registry for a service the client
   * follows (metrics call it on scrape); the first call for a service not used yet subscribes to it,
   * as `service(name)` and a request do, and lists nothing until its first list came.
   */
  readonly instances: (service?: string) => InstanceView[];
  /** Stops subscriptions and closes idle connections, letting requests under way finish. */
  readonly close: () => Promise<void>;
  /** Like close(), but aborts requests under way. */
  readonly destroy: () => Promise<void>;
}

export interface InstanceView {
  readonly service: string;
  readonly instance: string;
  readonly origin: string;
  /** Its registry weight. */
  readonly weight: number;
  /** Registry weight times warm-up factor: what the balancer uses now. */
  readonly effectiveWeight: number;
  readonly inFlight: number;
  readonly circuit: 'closed' | 'open' | 'half-open';
}

export function createClient(options: ClientOptions = {}): LosslessClient {
  const o = resolveClientOptions(options);
  const { logger, markerHeader, services, keepAliveTimeoutMs, connections, connect, ejectOnGoaway } = o;
  const { now, wallNow, random } = o.clock;
  const given = o.registry;

  // built last, once every option is known to be valid: a registry from a URL is ours to close
  const ownsRegistry = typeof given === 'string';
  const registry =
    typeof given === 'string'
      ? registryFromUrl(given, { logger, schemes: o.registrySchemes, source: registrySource(options) })
      : given;
  if (typeof registry?.subscribe !== 'function' || typeof registry.list !== 'function')
    throw new InvalidOptionError('registry', given, 'expected a registry URL or a Registry');
  const breakers = new Breakers(o.breaker);
  const table = new ServiceTable({
    registry,
    logger,
    now,
    refreshIntervalMs: o.refreshIntervalMs,
    onLeave: (origin) => breakers.forget(origin),
  });

  const serviceCache = new Map<string, string | null>();
  // the origin of the last request first: undici builds each request's origin anew, and a map lookup
  // of a new string flattens and hashes it; a comparison does neither
  let lastOrigin = '';
  let lastService: string | undefined;
  const serviceOf = (origin: string): string | undefined => {
    if (origin === lastOrigin) return lastService;
    const service = lookUpService(origin);
    lastOrigin = origin;
    lastService = service;
    return service;
  };
  const lookUpService = (origin: string): string | undefined => {
    const cached = serviceCache.get(origin);
    if (cached !== undefined) return cached ?? undefined;
    const service = serviceOfOrigin(origin, services);
    if (serviceCache.size > 1000) serviceCache.clear();
    serviceCache.set(origin, service ?? null);
    return service;
  };

  // undici's Agent forgets its pools the moment close() starts, so a destroy() during a close would
  // reach none of them and the requests the close waits for would never be aborted: the client keeps
  // the pools the Agent makes (closed ones are dropped whenever a new one is made) to destroy them itself
  const pools = new Set<Pool | Client>();
  const agent = new Agent({
    keepAliveTimeout: keepAliveTimeoutMs,
    ...(connections !== undefined ? { connections } : {}),
    ...(connect !== undefined ? { connect: { ...connect } } : {}),
    factory: (origin, opts: Pool.Options) => {
      for (const pool of pools) if (pool.closed || pool.destroyed) pools.delete(pool);
      const pool = opts.connections === 1 ? new Client(origin, opts) : new Pool(origin, opts);
      pools.add(pool);
      return pool;
    },
  });
  // An HTTP/2 session that gets GOAWAY: the instance is going away (a lossless provider sends it when
  // its drain begins), perhaps before any response could carry the marker (an idle session). undici
  // reports it once per session, as a 'disconnect' whose error says GOAWAY; streams above the
  // GOAWAY's last stream id are replayed by undici itself on a new connection, below the
  // interceptors, so they are neither counted twice nor lost. Only a graceful GOAWAY (code 0,
  // NO_ERROR) ejects: one with an error code is a connection failure, which the breaker counts.
  if (ejectOnGoaway)
    agent.on('disconnect', (origin, _targets, error) => {
      if (isGracefulGoaway(error)) table.ejectOrigin(originOf(origin), 'goaway');
    });
  const balanceDeps: BalanceDeps = {
    table,
    breakers,
    markerHeader,
    curve: { floor: o.warmup.floor, aggression: o.warmup.aggression },
    defaultWarmupMs: o.warmup.windowMs,
    serviceOf,
    now,
    wallNow,
    random,
  };
  const dispatcher = agent.compose(
    breaker(breakers, markerHeader),
    balance(balanceDeps),
    retry({
      attempts: o.retry.attempts,
      budget: new RetryBudget(o.retry.budgetRatio, o.retry.budgetBurst),
      minDelayMs: o.retry.minDelayMs,
      maxDelayMs: o.retry.maxDelayMs,
      timeoutMs: o.timeoutMs,
      idempotencyHeader: o.retry.idempotencyHeader,
      markerHeader,
      serviceOf,
    }),
  );

  // close() and destroy() are idempotent and join one another: a close after a destroy resolves with
  // it, and a destroy during a close aborts what the close was waiting for
  let closing: Promise<void> | undefined;
  let destroying: Promise<void> | undefined;
  const shutdown = async (destroy: boolean): Promise<void> => {
    table.close();
    breakers.shutdown();
    if (destroy) await Promise.all([agent.destroy(), ...[...pools].map((pool) => pool.destroy())]);
    else await agent.close();
    if (ownsRegistry) await registry.close();
  };

  // a call with no options passes this one object (undici copies what it is given, and keeps none of it)
  const viaClient = Object.freeze({ dispatcher });
  return {
    fetch: (input, init) => undiciFetch(input, init === undefined ? viaClient : { ...init, dispatcher }),
    request: (url, opts) => undiciRequest(url, opts === undefined ? viaClient : { ...opts, dispatcher }),
    dispatcher,
    service: (name) => table.get(name),
    refreshCount: (name) => table.refreshCount(name),
    circuit: (origin) => breakers.state(origin),
    instances: (service) => {
      const out: InstanceView[] = [];
      for (const name of service === undefined ? table.services() : [service]) {
        const rotation = rotationOf(balanceDeps, table.get(name));
        rotation.endpoints.forEach((e, i) => {
          out.push({
            service: name,
            instance: e.instance.id,
            origin: e.origin,
            weight: e.instance.weight,
            effectiveWeight: rotation.weights[i] as number,
            inFlight: e.inFlight,
            circuit: breakers.state(e.origin),
          });
        });
      }
      return out;
    },
    close: () => {
      closing ??= destroying ?? shutdown(false);
      return closing;
    },
    destroy: () => {
      destroying ??= shutdown(true);
      return destroying;
    },
  };
}

/** A graceful GOAWAY (NO_ERROR) on an HTTP/2 session, as undici 8 reports it in 'disconnect'. */
function isGracefulGoaway(error: (Error & { code?: string }) | undefined): boolean {
  return error?.code === 'UND_ERR_INFO' && /"GOAWAY" frame received with code 0$/.test(error.message);
}

function originOf(origin: string | URL): string {
  try {
    return new URL(String(origin)).origin;
  } catch {
    return String(origin);
  }
}
