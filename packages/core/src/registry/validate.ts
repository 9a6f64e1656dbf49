// Checks applied to every instance a registry reads, so that bad data from a shared directory or a
// remote registry is skipped with a warning instead of crashing a caller.

import { isIP } from 'node:net';
import type { Instance } from './types.js';

/** Returns why `value` is not a usable instance, or undefined when it is one. */
export function instanceProblem(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return 'not an object';
  const v = value as Record<string, unknown>;
  if (typeof v.service !== 'string' || v.service.length === 0) return 'service is not a non-empty string';
  if (typeof v.id !== 'string' || v.id.length === 0) return 'id is not a non-empty string';
  if (typeof v.ip !== 'string' || !isHost(v.ip)) return `ip ${JSON.stringify(v.ip)} is not an address`;
  if (!isPort(v.port)) return `port ${JSON.stringify(v.port)} is not in 1..65535`;
  if (typeof v.weight !== 'number' || !Number.isFinite(v.weight) || v.weight < 0)
    return `weight ${JSON.stringify(v.weight)} is not a finite number >= 0`;
  if (typeof v.enabled !== 'boolean') return 'enabled is not a boolean';
  if (typeof v.healthy !== 'boolean') return 'healthy is not a boolean';
  if (typeof v.metadata !== 'object' || v.metadata === null || Array.isArray(v.metadata))
    return 'metadata is not an object';
  for (const [k, m] of Object.entries(v.metadata)) {
    if (typeof m !== 'string') return `metadata["${k}"] is not a string`;
  }
  return undefined;
}

export function isPort(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 65535;
}

/** An IP address, or a DNS host name. */
export function isHost(value: string): boolean {
  if (isIP(value) !== 0) return true;
  return /^(?=.{1,253}$)[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/.test(
    value,
  );
}

export function toInstance(value: Record<string, unknown>): Instance {
  const v = value as unknown as Instance;
  return {
    service: v.service,
    id: v.id,
    ip: v.ip,
    port: v.port,
    weight: v.weight,
    enabled: v.enabled,
    healthy: v.healthy,
    metadata: { ...v.metadata },
  };
}
