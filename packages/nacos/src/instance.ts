// How a lossless instance and a Nacos instance map onto each other, on both transports:
//   - weights on Nacos' scale: Java services register 1.0, lossless' default is 100, so Nacos' weight is
//     lossless' divided by 100 (a Java instance at 1.0 weighs as much as a default Node instance);
//   - the lossless instance id travels in the metadata (Nacos names instances by ip, port and cluster);
//   - what Nacos answers is checked like any registry's data, and skipped with a warning when unusable.

import { type Instance, InvalidOptionError, type Logger } from '@lossless/core';
import { instanceProblem } from '@lossless/core/internal';
import type { ResolvedNacosOptions } from './options.js';

/** Metadata key carrying the lossless instance id, so that ids survive a round-trip through Nacos. */
export const INSTANCE_ID_KEY = 'lossless.instance-id';

/** Nacos' largest weight (on Nacos' scale: lossless weights go up to 100 times this). */
export const MAX_WEIGHT = 10_000;

/** A lossless weight of 100 is a Nacos weight of 1.0. */
export const WEIGHT_SCALE = 100;

/**
 * rnacos reads weight 1.0 in an update (a PUT, or a gRPC registration of an instance it holds) as "no
 * weight given" and keeps the old one, so that an instance warmed up to 1.0 would stay at its last
 * step. Updates to 1.0 send the nearest float above it instead; lossless reads it back as 100.
 */
export const UPDATE_WEIGHT_ONE = 1.0000001;

export function toNacosWeight(weight: number): number {
  return weight / WEIGHT_SCALE;
}

/** Rounded to 0.001 so that the division above and single-precision servers (rnacos) round-trip. */
export function fromNacosWeight(weight: number): number {
  return Math.round(weight * WEIGHT_SCALE * 1000) / 1000;
}

/** The Nacos weight to send when changing an instance Nacos already holds. */
export function updateWeight(nacosWeight: number): number {
  return nacosWeight === 1 ? UPDATE_WEIGHT_ONE : nacosWeight;
}

export function checkWeight(weight: number): void {
  const max = MAX_WEIGHT * WEIGHT_SCALE;
  if (typeof weight !== 'number' || !Number.isFinite(weight) || weight < 0 || weight > max)
    throw new InvalidOptionError(
      'weight',
      weight,
      `expected a number in 0..${max} (Nacos' range 0..${MAX_WEIGHT}; lossless weight 100 is Nacos weight 1.0)`,
    );
}

/** An instance as Nacos answers it (HTTP list and get, gRPC queries and pushes). */
export interface NacosHost {
  ip?: unknown;
  port?: unknown;
  weight?: unknown;
  healthy?: unknown;
  enabled?: unknown;
  clusterName?: unknown;
  metadata?: unknown;
}

/** The metadata lossless registers: the registry's, the instance's, and the lossless id. */
export function metadataOf(options: ResolvedNacosOptions, instance: Instance): Record<string, string> {
  return { ...options.metadata, ...instance.metadata, [INSTANCE_ID_KEY]: instance.id };
}

/** The lossless instance of a Nacos host, or undefined (logged) when Nacos listed something unusable. */
export function toInstance(service: string, host: NacosHost, log: Logger): Instance | undefined {
  const metadata =
    typeof host.metadata === 'object' && host.metadata !== null ? (host.metadata as Record<string, unknown>) : {};
  const id =
    typeof metadata[INSTANCE_ID_KEY] === 'string' ? (metadata[INSTANCE_ID_KEY] as string) : `${host.ip}:${host.port}`;
  const candidate = {
    service,
    id,
    ip: host.ip,
    port: host.port,
    weight: typeof host.weight === 'number' ? fromNacosWeight(host.weight) : host.weight,
    enabled: host.enabled ?? true,
    healthy: host.healthy ?? true,
    metadata,
  };
  const problem = instanceProblem(candidate);
  if (problem !== undefined) {
    log.warn({ code: 'LOSSLESS_ERR_BAD_INSTANCE', service, problem }, 'Nacos listed an invalid instance; skipped');
    return undefined;
  }
  return candidate as Instance;
}

/** Instances sorted by id, as every list lossless delivers. */
export function byId(a: Instance, b: Instance): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}
