// Options of the grpc-js discovery (createDiscovery): one schema gives the types, the defaults with
// their reasons, the checks with coded errors and the table of docs/grpc.md (`pnpm docs:options`).
// The names and defaults are those of @lossless/client where the two mean the same thing.

import { performance } from 'node:perf_hooks';
import {
  DEFAULT_MARKER_HEADER,
  type DiscoveryRegistry,
  defaultRegistryUrl,
  InvalidOptionError,
  type Logger,
  type RegistryFactory,
  stderrLogger,
} from '@lossless/core';
import {
  dictionary,
  doc,
  environmentOf,
  fn,
  group,
  headerName,
  logger,
  numberIn,
  parseOptions,
  sourceOf,
  withMethods,
} from '@lossless/core/internal';
import * as v from 'valibot';

const warmupSchema = group(
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
        'Attempts per call, the first included, for a call that failed with UNAVAILABLE before any of it was sent (no instance could be picked, or its stream was refused). 3: a call survives two instances going away under it.',
      ),
      3,
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
        "Largest backoff delay, in ms; at least `retry.minDelayMs`. 250: retries stay within a call's patience.",
      ),
      250,
    ),
  },
  'expected an object',
);

const clockSchema = group(
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

export const grpcClientOptionsSchema = group(
  {
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
    markerHeader: v.nullish(
      doc(
        headerName(),
        "The providers' marker (their `marker.header`), looked for in each call's trailing metadata: an instance whose answer carries it leaves the rotation until it registers again.",
      ),
      DEFAULT_MARKER_HEADER,
    ),
    warmup: v.nullish(doc(warmupSchema, 'How new instances are warmed up.', { type: 'object' }), {}),
    retry: v.nullish(
      doc(retrySchema, 'When and how often a call that was not sent is tried again.', { type: 'object' }),
      {},
    ),
    refreshIntervalMs: v.optional(
      doc(
        numberIn(0, 60_000),
        "Smallest interval between two registry refreshes of one service triggered by markers and GOAWAYs, in ms. 100: a rollout's markers cost a few reads, not one per call.",
      ),
      100,
    ),
    logger: v.nullish(
      doc(
        logger(),
        'A pino-compatible logger. The default writes warnings and errors to stderr, one line each; pass `silentLogger` for silence.',
        { type: 'Logger', default: 'warnings and errors to stderr' },
      ),
      stderrLogger,
    ),
    clock: v.nullish(doc(clockSchema, 'Test hooks for time and randomness.', { type: 'object' }), {}),
    env: v.nullish(
      doc(
        v.custom<Readonly<Record<string, string | undefined>>>(
          (e) => typeof e === 'object' && e !== null,
          'expected an object of strings',
        ),
        'Where the `LOSSLESS_*` variables are read from.',
        { type: 'Readonly<Record<string, string | undefined>>', default: '`process.env`' },
      ),
    ),
  },
  'expected an object',
);

export type GrpcClientOptions = v.InferInput<typeof grpcClientOptionsSchema>;

export interface ResolvedGrpcClientOptions {
  readonly registry: string | DiscoveryRegistry;
  readonly registrySchemes: Readonly<Record<string, RegistryFactory>>;
  readonly markerHeader: string;
  readonly warmup: { readonly windowMs: number; readonly floor: number; readonly aggression: number };
  readonly retry: { readonly attempts: number; readonly minDelayMs: number; readonly maxDelayMs: number };
  readonly refreshIntervalMs: number;
  readonly logger: Logger;
  readonly clock: { readonly now: () => number; readonly wallNow: () => number; readonly random: () => number };
}

export function resolveGrpcClientOptions(options: GrpcClientOptions): ResolvedGrpcClientOptions {
  const o = parseOptions(grpcClientOptionsSchema, options, { env: environmentOf(options) });
  if (o.retry.maxDelayMs < o.retry.minDelayMs)
    throw new InvalidOptionError(
      'retry.maxDelayMs',
      o.retry.maxDelayMs,
      `expected at least retry.minDelayMs (${o.retry.minDelayMs})`,
    );
  return {
    registry: o.registry,
    registrySchemes: o.registrySchemes,
    markerHeader: o.markerHeader.toLowerCase(),
    warmup: o.warmup,
    retry: o.retry,
    refreshIntervalMs: o.refreshIntervalMs,
    logger: o.logger,
    clock: {
      now: o.clock.now ?? performance.now.bind(performance),
      wallNow: o.clock.wallNow ?? Date.now,
      random: o.clock.random ?? Math.random,
    },
  };
}

/** `LOSSLESS_REGISTRY` when the registry URL came from it, for errors about the URL. */
export function registrySource(options: GrpcClientOptions): string | undefined {
  return sourceOf(grpcClientOptionsSchema, options, ['registry'], environmentOf(options));
}
