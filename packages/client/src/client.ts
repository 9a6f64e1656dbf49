// createClient(): a fetch-compatible function and an undici Dispatcher that call services by name
// (`http://order-service/api/orders`) through the registry, losing no request while their instances
// come and go. Instances registered as secure are called over https, where undici negotiates HTTP/2;
// a GOAWAY on an instance's session takes it out of rotation as the offline marker does.

import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { ConnectionOptions } from 'node:tls';
import {
  DEFAULT_MARKER_HEADER,
  type DiscoveryRegistry,
  InvalidOptionError,
  type Logger,
  type RegistryFactory,
  registryFromUrl,
  silentLogger,
} from '@lossless/core';
import { Agent, Client, type Dispatcher, Pool, fetch as undiciFetch, request as undiciRequest } from 'undici';
import { Breakers } from './breaker/breakers.js';
import { type ServiceState, ServiceTable } from './discovery/table.js';
import { type BalanceDeps, balance, rotationOf } from './interceptor/balance.js';
import { breaker } from './interceptor/breaker.js';
import { retry } from './interceptor/retry.js';
import { RetryBudget } from './retry/policy.js';

export interface ClientOptions {
  /** A registry, or a registry URL (`file:///dir`, `static://...`, `nacos://...` with `registrySchemes`). */
  readonly registry: DiscoveryRegistry | string;
  readonly registrySchemes?: Readonly<Record<string, RegistryFactory>>;
  /**
   * Host names that are services. Default: every host name without a port that is not an IP
   * address or `localhost`; other origins go straight to the network.
   */
  readonly services?: readonly string[];
  /** Response header that marks an instance going offline. Default `x-lossless-offline`. */
  readonly markerHeader?: string;
  readonly warmup?: {
    /** Warm-up window when the instance's metadata gives none, in ms. Default 60000. */
    readonly windowMs?: number;
    /** Share of its weight a brand-new instance gets, in (0, 1]. Default 0.1. */
    readonly floor?: number;
    /** Curve: 1 linear, larger ramps faster early (Envoy's aggression). Default 1. */
    readonly aggression?: number;
  };
  readonly retry?: {
    /** Attempts per request, the first included. Default 3. */
    readonly attempts?: number;
    /** Retries allowed per request sent, over time. Default 0.1 (10 %). */
    readonly budgetRatio?: number;
    /** Retries available at once before the ratio applies. Default 10. */
    readonly budgetBurst?: number;
    /** First backoff delay, in ms (doubles, with jitter). Default 10. */
    readonly minDelayMs?: number;
    /** Largest backoff delay, in ms. Default 250. */
    readonly maxDelayMs?: number;
    /** Header that makes a non-idempotent request safe to retry after it was sent. Default `idempotency-key`. */
    readonly idempotencyHeader?: string;
  };
  readonly breaker?: {
    /** Failure percentage that opens an instance's circuit. Default 50. */
    readonly errorThresholdPercentage?: number;
    /** Requests in the window before a circuit may open. Default 10. */
    readonly volumeThreshold?: number;
    /** Time an open circuit waits before a probe, in ms. Default 5000. */
    readonly resetTimeoutMs?: number;
    /** Rolling window of the failure percentage, in ms. Default 10000. */
    readonly rollingWindowMs?: number;
    /** Connection failures in a row (refused, reset...) that open a circuit at once; 0 for never. Default 5. */
    readonly connectionFailures?: number;
  };
  /** Overall time for one request, retries included, in ms; 0 for none. Default 30000. */
  readonly timeoutMs?: number;
  /**
   * Idle keep-alive sockets are closed after this, in ms. Keep it below the providers'
   * keepAliveTimeout (Node's default 5000) by about a second. Default 4000.
   */
  readonly keepAliveTimeoutMs?: number;
  /** Connections per instance. Default: unlimited (undici's default). */
  readonly connections?: number;
  /**
   * TLS options for https instances (undici's `connect`), e.g. `{ ca }` for providers whose
   * certificates a private CA signed. undici negotiates HTTP/2 with them when they offer it.
   */
  readonly connect?: Pick<
    ConnectionOptions,
    'ca' | 'cert' | 'key' | 'passphrase' | 'pfx' | 'rejectUnauthorized' | 'servername' | 'ciphers' | 'minVersion'
  >;
  /**
   * Take an instance out of rotation when its HTTP/2 session gets a graceful GOAWAY, as the offline
   * marker does. Turn it off for providers (or proxies in front of them) that send GOAWAY for other
   * reasons than going offline: an idle timeout, a maximum connection age. Default true.
   */
  readonly ejectOnGoaway?: boolean;
  /** Smallest interval between two registry refreshes of one service triggered by markers, in ms. Default 100. */
  readonly refreshIntervalMs?: number;
  readonly logger?: Logger;
  /** Test hooks: monotonic clock, wall clock, random source. */
  readonly clock?: { readonly now?: () => number; readonly wallNow?: () => number; readonly random?: () => number };
}

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
   * of one service, or of every service used so far. Reads no registry (metrics call it on scrape).
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

export function createClient(options: ClientOptions): LosslessClient {
  if (typeof options !== 'object' || options === null)
    throw new InvalidOptionError('options', options, 'expected an object');
  const logger = options.logger ?? silentLogger;
  if (!LOG_LEVELS.every((level) => typeof (logger as unknown as Record<string, unknown>)[level] === 'function'))
    throw new InvalidOptionError('logger', logger, 'expected a pino-compatible logger (debug, info, warn, error)');
  const schemes = options.registrySchemes ?? {};
  if (
    typeof schemes !== 'object' ||
    Array.isArray(schemes) ||
    Object.values(schemes).some((f) => typeof f !== 'function')
  )
    throw new InvalidOptionError('registrySchemes', schemes, 'expected an object of factory functions');
  const given = options.registry;
  if (typeof given !== 'string' && (typeof given?.subscribe !== 'function' || typeof given.list !== 'function'))
    throw new InvalidOptionError('registry', given, 'expected a registry URL or a Registry');

  const markerHeader = headerName('markerHeader', options.markerHeader, DEFAULT_MARKER_HEADER);
  const w = group('warmup', options.warmup);
  const windowMs = num('warmup.windowMs', w.windowMs, 60_000, 0);
  const floor = num('warmup.floor', w.floor, 0.1, 0, 1);
  if (floor === 0) throw new InvalidOptionError('warmup.floor', floor, 'expected a share in (0, 1]');
  const aggression = num('warmup.aggression', w.aggression, 1, 0.01, 100);
  const r = group('retry', options.retry);
  const attempts = num('retry.attempts', r.attempts, 3, 1, 10);
  if (!Number.isInteger(attempts))
    throw new InvalidOptionError('retry.attempts', attempts, 'expected an integer in 1..10');
  const budgetRatio = num('retry.budgetRatio', r.budgetRatio, 0.1, 0, 1);
  const budgetBurst = num('retry.budgetBurst', r.budgetBurst, 10, 0, 1_000_000);
  const minDelayMs = num('retry.minDelayMs', r.minDelayMs, 10, 0, 60_000);
  const maxDelayMs = num('retry.maxDelayMs', r.maxDelayMs, 250, minDelayMs, 60_000);
  const idempotencyHeader = headerName('retry.idempotencyHeader', r.idempotencyHeader, 'idempotency-key');
  const b = group('breaker', options.breaker);
  const timeoutMs = num('timeoutMs', options.timeoutMs, 30_000, 0, 86_400_000);
  const keepAliveTimeoutMs = num('keepAliveTimeoutMs', options.keepAliveTimeoutMs, 4000, 1, 600_000);
  const refreshIntervalMs = num('refreshIntervalMs', options.refreshIntervalMs, 100, 0, 60_000);
  const serviceList = options.services ?? undefined;
  if (
    serviceList !== undefined &&
    (!Array.isArray(serviceList) || [...serviceList].some((s) => typeof s !== 'string' || s.trim() === ''))
  )
    throw new InvalidOptionError('services', serviceList, 'expected an array of host names');
  const services = serviceList === undefined ? undefined : new Set(serviceList.map((s) => s.toLowerCase()));
  const connections = options.connections ?? undefined;
  if (connections !== undefined && !(Number.isSafeInteger(connections) && connections >= 1))
    throw new InvalidOptionError('connections', connections, 'expected an integer >= 1');
  const ejectOnGoaway = options.ejectOnGoaway ?? true;
  if (typeof ejectOnGoaway !== 'boolean')
    throw new InvalidOptionError('ejectOnGoaway', ejectOnGoaway, 'expected a boolean');
  const connect = options.connect ?? undefined;
  if (connect !== undefined && (typeof connect !== 'object' || connect === null || Array.isArray(connect)))
    throw new InvalidOptionError(
      'connect',
      connect,
      'expected an object of TLS options ({ ca, rejectUnauthorized, ... })',
    );

  const clock = group('clock', options.clock);
  for (const key of ['now', 'wallNow', 'random'] as const) {
    if (typeof (clock[key] ?? Math.random) !== 'function')
      throw new InvalidOptionError(`clock.${key}`, clock[key], 'expected a function');
  }
  const now = clock.now ?? performance.now.bind(performance);
  const wallNow = clock.wallNow ?? Date.now;
  const random = clock.random ?? Math.random;

  const breakerOptions = {
    errorThresholdPercentage: num('breaker.errorThresholdPercentage', b.errorThresholdPercentage, 50, 1, 100),
    volumeThreshold: num('breaker.volumeThreshold', b.volumeThreshold, 10, 0, 1_000_000),
    resetTimeoutMs: num('breaker.resetTimeoutMs', b.resetTimeoutMs, 5000, 1, 3_600_000),
    rollingWindowMs: num('breaker.rollingWindowMs', b.rollingWindowMs, 10_000, 10, 3_600_000),
    connectionFailures: num('breaker.connectionFailures', b.connectionFailures, 5, 0, 1000),
  };
  if (!Number.isInteger(breakerOptions.connectionFailures))
    throw new InvalidOptionError('breaker.connectionFailures', b.connectionFailures, 'expected an integer in 0..1000');

  // built last, once every option is known to be valid: a registry from a URL is ours to close
  const ownsRegistry = typeof given === 'string';
  const registry = typeof given === 'string' ? registryFromUrl(given, { logger, schemes }) : given;
  if (typeof registry?.subscribe !== 'function' || typeof registry.list !== 'function')
    throw new InvalidOptionError('registry', given, 'expected a registry URL or a Registry');
  const breakers = new Breakers(breakerOptions);
  const table = new ServiceTable({
    registry,
    logger,
    now,
    refreshIntervalMs,
    onLeave: (origin) => breakers.forget(origin),
  });

  const serviceCache = new Map<string, string | null>();
  const serviceOf = (origin: string): string | undefined => {
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
    curve: { floor, aggression },
    defaultWarmupMs: windowMs,
    serviceOf,
    now,
    wallNow,
    random,
  };
  const dispatcher = agent.compose(
    breaker(breakers, markerHeader),
    balance(balanceDeps),
    retry({
      attempts,
      budget: new RetryBudget(budgetRatio, budgetBurst),
      minDelayMs,
      maxDelayMs,
      timeoutMs,
      idempotencyHeader,
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

  return {
    fetch: (input, init) => undiciFetch(input, { ...init, dispatcher }),
    request: (url, opts) => undiciRequest(url, { ...opts, dispatcher }),
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

/** The service a request origin names, or undefined when the origin is a plain network address. */
export function serviceOfOrigin(origin: string, services: ReadonlySet<string> | undefined): string | undefined {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return undefined;
  }
  const host = url.hostname.toLowerCase();
  if (services !== undefined) return services.has(host) ? host : undefined;
  if (url.port !== '' || host === 'localhost' || isIP(host.replace(/^\[|\]$/g, '')) !== 0) return undefined;
  return host;
}

const LOG_LEVELS = ['debug', 'info', 'warn', 'error'];

/** undici's error for a session closed by a GOAWAY with NO_ERROR (lib/dispatcher/client-h2.js). */
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

/** An option group (`warmup`, `retry`, ...): unset means every default; anything but an object is refused. */
function group<T extends object>(name: string, value: T | undefined): T | Record<string, never> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value))
    throw new InvalidOptionError(name, value, 'expected an object');
  return value;
}

/** An HTTP header name, lower-cased as undici reports them. */
function headerName(name: string, value: unknown, fallback: string): string {
  const header = value ?? fallback;
  if (typeof header !== 'string' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(header))
    throw new InvalidOptionError(name, value, 'expected an HTTP header name');
  return header.toLowerCase();
}

function num(name: string, value: unknown, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max)
    throw new InvalidOptionError(name, value, `expected a number in ${min}..${max}`);
  return value;
}
