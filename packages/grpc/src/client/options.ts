// Options of the grpc-js discovery (createDiscovery): one schema gives the types, the defaults with
// their reasons, the checks with coded errors and the table of docs/grpc.md (`pnpm docs:options`).
// The names and defaults are those of @lossless/client where the two mean the same thing.

import { performance } from 'node:perf_hooks';
import { clockSchema, discoveryOptions, warmupSchema } from '@lossless/client/internal';
import {
  DEFAULT_MARKER_HEADER,
  type DiscoveryRegistry,
  InvalidOptionError,
  type Logger,
  type RegistryFactory,
} from '@lossless/core';
import {
  doc,
  environment,
  environmentOf,
  group,
  headerName,
  numberIn,
  parseOptions,
  sourceOf,
} from '@lossless/core/internal';
import * as v from 'valibot';

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

export const grpcClientOptionsSchema = group(
  {
    registry: discoveryOptions.registry,
    registrySchemes: discoveryOptions.registrySchemes,
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
    logger: discoveryOptions.logger,
    clock: v.nullish(doc(clockSchema, 'Test hooks for time and randomness.', { type: 'object' }), {}),
    env: environment('Where `LOSSLESS_REGISTRY` is read from.'),
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
