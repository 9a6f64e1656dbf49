// Client options: one schema per options object (the client's and its groups warmup, retry, breaker
// and clock) gives the types, the defaults with their reasons, the checks with coded errors, and the
// client's table in docs/client.md (`pnpm docs:options`). Bounds set by another option are checked
// in resolveClientOptions after the schema.

import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { ConnectionOptions } from 'node:tls';
import {
  DEFAULT_MARKER_HEADER,
  type DiscoveryRegistry,
  defaultRegistryUrl,
  InvalidOptionError,
  type RegistryFactory,
  stderrLogger,
} from '@lossless/core';
import {
  dictionary,
  doc,
  environment,
  environmentOf,
  fn,
  group,
  headerName,
  list,
  logger,
  MAX_DURATION_MS,
  numberIn,
  type Parsed,
  parseOptions,
  sourceOf,
  withMethods,
} from '@lossless/core/internal';
import * as v from 'valibot';

/** TLS options the client passes to undici for https instances. */
export type TlsConnectOptions = Pick<
  ConnectionOptions,
  'ca' | 'cert' | 'key' | 'passphrase' | 'pfx' | 'rejectUnauthorized' | 'servername' | 'ciphers' | 'minVersion'
>;

/** The warm-up group (also the gRPC client's). */
export const warmupSchema = group(
  {
    windowMs: v.optional(
      doc(
        numberIn(0, Number.MAX_SAFE_INTEGER, { message: 'expected a number of milliseconds >= 0' }),
        "Warm-up window, in ms, when the provider's metadata (`lossless.warmup-ms`) gives none. 60000: the providers' own default.",
      ),
      60_000,
    ),
    floor: v.optional(
      doc(
        v.pipe(
          v.number('expected a share in (0, 1]'),
          v.finite('expected a share in (0, 1]'),
          v.gtValue(0, 'expected a share in (0, 1]'),
          v.maxValue(1, 'expected a share in (0, 1]'),
        ),
        'Share of its weight a brand-new instance gets. 0.1: enough traffic to warm it up, too little to hurt if it is slow.',
      ),
      0.1,
    ),
    aggression: v.optional(
      doc(
        numberIn(0.01, 100),
        "Curve of the ramp: 1 is linear, larger ramps faster early (Envoy's slow-start aggression). 1: Envoy's default.",
      ),
      1,
    ),
  },
  'expected an object',
);

const retrySchema = group(
  {
    attempts: v.optional(
      doc(
        numberIn(1, 10, { integer: true }),
        'Attempts per request, the first included. 3: a request survives two instances going away under it.',
      ),
      3,
    ),
    budgetRatio: v.optional(
      doc(
        numberIn(0, 1),
        'Retries allowed per request sent, over time. 0.1 (10 %): a failure storm adds at most a tenth to the load.',
      ),
      0.1,
    ),
    budgetBurst: v.optional(
      doc(
        numberIn(0, 1_000_000),
        'Retries available at once before the ratio applies, so a quiet client can still retry.',
      ),
      10,
    ),
    minDelayMs: v.optional(
      doc(
        numberIn(0, 60_000),
        'First backoff delay, in ms (doubles, with jitter). 10: another instance is tried almost at once.',
      ),
      10,
    ),
    maxDelayMs: v.optional(
      doc(
        numberIn(0, 60_000),
        "Largest backoff delay, in ms; at least `retry.minDelayMs`. 250: retries stay within a request's patience.",
      ),
      250,
    ),
    idempotencyHeader: v.nullish(
      doc(
        headerName(),
        "Header that makes a non-idempotent request safe to retry after it was sent. `idempotency-key`: the IETF draft's name.",
      ),
      'idempotency-key',
    ),
  },
  'expected an object',
);

const breakerSchema = group(
  {
    errorThresholdPercentage: v.optional(
      doc(numberIn(1, 100), "Failure percentage that opens an instance's circuit. 50: opossum's default."),
      50,
    ),
    volumeThreshold: v.optional(
      doc(
        numberIn(0, 1_000_000),
        'Requests in the window before a circuit may open, so that one early failure does not open it.',
      ),
      10,
    ),
    resetTimeoutMs: v.optional(doc(numberIn(1, 3_600_000), 'Time an open circuit waits before a probe, in ms.'), 5000),
    rollingWindowMs: v.optional(
      doc(numberIn(10, 3_600_000), 'Rolling window of the failure percentage, in ms.'),
      10_000,
    ),
    connectionFailures: v.optional(
      doc(
        numberIn(0, 1000, { integer: true }),
        'Connection failures in a row (refused, reset, unreachable, connect timeout) that open a circuit at once, whatever the share; 0 turns the rule off. 5: a crashed instance is out before the share would notice.',
      ),
      5,
    ),
  },
  'expected an object',
);

/** The test hooks' group (also the gRPC client's). */
export const clockSchema = group(
  {
    now: v.nullish(
      doc(fn<() => number>(), 'Test hook: the monotonic clock, in ms.', {
        type: '() => number',
        default: '`performance.now`',
      }),
    ),
    wallNow: v.nullish(
      doc(fn<() => number>(), 'Test hook: the wall clock, in ms.', { type: '() => number', default: '`Date.now`' }),
    ),
    random: v.nullish(
      doc(fn<() => number>(), 'Test hook: the random source, in [0, 1).', {
        type: '() => number',
        default: '`Math.random`',
      }),
    ),
  },
  'expected an object',
);

/**
 * The options every discovering client has, the same in @lossless/client and @lossless/grpc/client:
 * where the registry is, the factories of its URL schemes, the logger.
 */
export const discoveryOptions = {
  registry: v.nullish(
    doc(
      v.union(
        [v.string(), withMethods<DiscoveryRegistry>(['subscribe', 'list'], 'expected a Registry')],
        'expected a registry URL or a Registry',
      ),
      "A registry, or a registry URL (`file:///dir`, `static://...`, `nacos://...` with `registrySchemes`). The default is the providers' own, so that a provider and a client started with no options find each other.",
      {
        env: 'LOSSLESS_REGISTRY',
        type: 'DiscoveryRegistry | string',
        default: '`file://<os.tmpdir()>/lossless-registry`',
      },
    ),
    defaultRegistryUrl,
  ),
  registrySchemes: v.nullish(
    doc(
      dictionary(
        fn<RegistryFactory>('expected a registry factory function'),
        'expected an object of factory functions',
      ),
      'Factories for URL schemes core does not know: `{ nacos: createNacosRegistry }` from `@lossless/nacos`.',
      { type: 'Readonly<Record<string, RegistryFactory>>' },
    ),
    {},
  ),
  logger: v.nullish(
    doc(
      logger(),
      'A pino-compatible logger. The default writes warnings and errors to stderr, one line each; pass `silentLogger` for silence.',
      {
        type: 'Logger',
        default: 'warnings and errors to stderr',
      },
    ),
    stderrLogger,
  ),
} as const;

const serviceName = v.pipe(
  v.string('expected a host name'),
  v.check((s) => s.trim() !== '', 'expected a host name'),
);

export const clientOptionsSchema = group(
  {
    registry: discoveryOptions.registry,
    registrySchemes: discoveryOptions.registrySchemes,
    services: v.nullish(
      doc(
        list(serviceName, 'expected an array of host names'),
        "Host names that are services (compared without case, looked up in the registry as written here: a URL's host name is lower case, so a service registered as `OrderService` is called as `http://orderservice/` once listed here); every other origin goes straight to the network. By default a host name is a service when it has no dot and no port and is neither an IP address nor `localhost`: a dotted name (`api.example.com`) is somebody else's server, so that `setGlobalDispatcher(client.dispatcher)` leaves calls to the outside alone. List dotted service names (`orders.default.svc`) here.",
        {
          type: 'readonly string[]',
          default: 'host names without a dot or a port, not an IP address, not `localhost`',
        },
      ),
    ),
    markerHeader: v.nullish(
      doc(headerName(), "The providers' marker header (their `marker.header`)."),
      DEFAULT_MARKER_HEADER,
    ),
    warmup: v.nullish(doc(warmupSchema, 'How new instances are warmed up.', { type: 'object' }), {}),
    retry: v.nullish(doc(retrySchema, 'When and how often a request is retried.', { type: 'object' }), {}),
    breaker: v.nullish(doc(breakerSchema, 'When an instance is taken out for failing.', { type: 'object' }), {}),
    timeoutMs: v.optional(
      doc(
        numberIn(0, MAX_DURATION_MS),
        'Overall time for one request, retries included, in ms; 0 for none. 30000: a caller waits no longer than a browser would.',
      ),
      30_000,
    ),
    keepAliveTimeoutMs: v.optional(
      doc(
        numberIn(1, 600_000),
        "Idle keep-alive sockets are closed after this, in ms. 4000: a second below Node's server `keepAliveTimeout` (5000), so that the client never reuses a socket the server is closing (the ECONNRESET race).",
      ),
      4000,
    ),
    connections: v.nullish(
      doc(
        numberIn(1, Number.MAX_SAFE_INTEGER, { integer: true, message: 'expected an integer >= 1' }),
        'Connections per instance.',
        {
          default: "unlimited (undici's default)",
        },
      ),
    ),
    connect: v.nullish(
      doc(
        v.custom<TlsConnectOptions>(
          (value) => typeof value === 'object' && value !== null && !Array.isArray(value),
          'expected an object of TLS options',
        ),
        "TLS options for https instances (undici's `connect`: `ca`, `cert`, `key`, `rejectUnauthorized`, `servername`...), e.g. `{ ca }` for providers whose certificates a private CA signed. undici negotiates HTTP/2 with instances that offer it.",
        { type: 'TlsConnectOptions', default: "Node's defaults" },
      ),
    ),
    ejectOnGoaway: v.optional(
      doc(
        v.boolean('expected a boolean'),
        'Take an instance out of rotation when its HTTP/2 session gets a graceful GOAWAY, as the offline marker does (a lossless provider sends one at the start of its drain). Turn it off for providers, or proxies in front of them, that send GOAWAY for other reasons than going offline: an idle timeout, a maximum connection age.',
      ),
      true,
    ),
    refreshIntervalMs: v.optional(
      doc(
        numberIn(0, 60_000),
        "Smallest interval between two registry refreshes of one service triggered by markers, in ms. 100: a rollout's markers cost a few reads, not one per response.",
      ),
      100,
    ),
    logger: discoveryOptions.logger,
    clock: v.nullish(doc(clockSchema, 'Test hooks: clocks and the random source.', { type: 'object' }), {}),
    env: environment('Where `LOSSLESS_REGISTRY` is read from.'),
  },
  'expected an object',
);

export type ClientOptions = v.InferInput<typeof clientOptionsSchema>;

/** Every option with its value. */
export interface ResolvedClientOptions {
  readonly registry: DiscoveryRegistry | string;
  readonly registrySchemes: Readonly<Record<string, RegistryFactory>>;
  /** Lower-cased; undefined: the default rule (see serviceOfOrigin). */
  /** Lower-case host name -> the service name as written in `services`. */
  readonly services: ReadonlyMap<string, string> | undefined;
  /** Lower-cased, as undici reports header names. */
  readonly markerHeader: string;
  readonly warmup: Parsed<typeof warmupSchema>;
  readonly retry: Parsed<typeof retrySchema>;
  readonly breaker: Parsed<typeof breakerSchema>;
  readonly timeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly connections: number | undefined;
  readonly connect: TlsConnectOptions | undefined;
  readonly ejectOnGoaway: boolean;
  readonly refreshIntervalMs: number;
  readonly logger: Parsed<typeof clientOptionsSchema>['logger'];
  readonly clock: { readonly now: () => number; readonly wallNow: () => number; readonly random: () => number };
}

export function resolveClientOptions(options: ClientOptions = {}): ResolvedClientOptions {
  const o = parseOptions(clientOptionsSchema, options, { env: environmentOf(options) });
  if (o.retry.maxDelayMs < o.retry.minDelayMs)
    throw new InvalidOptionError(
      'retry.maxDelayMs',
      o.retry.maxDelayMs,
      `expected at least retry.minDelayMs (${o.retry.minDelayMs})`,
    );
  return {
    registry: o.registry,
    registrySchemes: o.registrySchemes,
    services: o.services == null ? undefined : new Map(o.services.map((s) => [s.toLowerCase(), s])),
    markerHeader: o.markerHeader.toLowerCase(),
    warmup: o.warmup,
    retry: { ...o.retry, idempotencyHeader: o.retry.idempotencyHeader.toLowerCase() },
    breaker: o.breaker,
    timeoutMs: o.timeoutMs,
    keepAliveTimeoutMs: o.keepAliveTimeoutMs,
    connections: o.connections ?? undefined,
    connect: o.connect ?? undefined,
    ejectOnGoaway: o.ejectOnGoaway,
    refreshIntervalMs: o.refreshIntervalMs,
    logger: o.logger,
    clock: {
      now: o.clock.now ?? performance.now.bind(performance),
      wallNow: o.clock.wallNow ?? Date.now,
      random: o.clock.random ?? Math.random,
    },
  };
}

/**
 * The service a request origin names, or undefined when the origin is a plain network address.
 * Without a list, a host name is a service when it has no dot and no port and is neither an IP
 * address nor `localhost`: `http://orders/...` is one, `http://api.example.com/...` is not. With a
 * list: a Map from lower-case host name to service name, or a Set of lower-case names.
 */
export function serviceOfOrigin(
  origin: string,
  services: ReadonlySet<string> | ReadonlyMap<string, string> | undefined,
): string | undefined {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return undefined;
  }
  const host = url.hostname.toLowerCase();
  if (services instanceof Map) return services.get(host);
  if (services !== undefined) return services.has(host) ? host : undefined;
  if (url.port !== '' || host === 'localhost' || host.includes('.') || isIP(host.replace(/^\[|\]$/g, '')) !== 0)
    return undefined;
  return host;
}

/** `LOSSLESS_REGISTRY` when the registry URL came from it, for errors about the URL. */
export function registrySource(options: ClientOptions): string | undefined {
  return sourceOf(clientOptionsSchema, options, ['registry'], environmentOf(options));
}
