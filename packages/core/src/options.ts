// Provider options: what users pass (all optional but `service`), resolved into a complete set with
// every default in one place, and every bad value rejected up front with the option's name.

import type { Server } from 'node:http';
import type { Http2SecureServer, Http2Server } from 'node:http2';
import type { Server as HttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { InvalidOptionError } from './errors.js';
import { type Logger, silentLogger } from './logger.js';
import type { ProviderRegistry } from './registry/types.js';
import type { RegistryFactory } from './registry/url.js';
import { isHost, isPort } from './registry/validate.js';

/**
 * A server a provider can run: node:http, node:https, or node:http2 (`createServer()`, h2c, and
 * `createSecureServer()`, with or without `allowHTTP1`), through its 'request' event.
 */
export type ProviderServer = Server | HttpsServer | Http2Server | Http2SecureServer;

export type WarmupFn = (signal: AbortSignal) => unknown | Promise<unknown>;

export interface WarmupHook {
  /** Named in errors, logs and /readyz. */
  readonly name: string;
  readonly run: WarmupFn;
  /** Default: `hookTimeoutMs`. */
  readonly timeoutMs?: number;
}

export interface InstanceOptions {
  /** Address registered for consumers. Default: the server's bound address, or this host's first non-internal IPv4 when bound to all interfaces. Env LOSSLESS_INSTANCE_IP. */
  readonly ip?: string;
  /** Port registered for consumers. Default: the server's port. */
  readonly port?: number;
  /** Default `${ip}:${port}`. */
  readonly id?: string;
  /** Default 100. */
  readonly weight?: number;
  readonly metadata?: Readonly<Record<string, string>>;
}

export interface AdminOptions {
  /** Port of the admin server (probes, preStop). 0 picks a free port. Default 9797, env LOSSLESS_ADMIN_PORT. */
  readonly port?: number;
  /** Interface the admin server binds. Default: the main server's address. Env LOSSLESS_ADMIN_HOST. */
  readonly host?: string;
  /**
   * Token that callers off loopback must send (`Authorization: Bearer <token>` or `X-Lossless-Token`)
   * to POST /prestop; when set, GET /prestop drains too, with the token only. Env LOSSLESS_ADMIN_TOKEN.
   */
  readonly token?: string;
}

export interface DrainOptions {
  /** How long no new request must arrive before the drain may end, in ms. Default 1500. */
  readonly quietWindowMs?: number;
  /** The drain never ends sooner than this, in ms. Default 0. */
  readonly minDrainMs?: number;
  /** The drain never lasts longer than this, in ms; keep it below Kubernetes' terminationGracePeriodSeconds. Default 25000. */
  readonly maxDrainMs?: number;
  /** After the server stops accepting, how long open connections get to finish before they are destroyed, in ms. Default 1000. */
  readonly closeTimeoutMs?: number;
  /** How the instance leaves the registry: `deregister` it, or `disable` it (where the registry supports that). Default `deregister`. */
  readonly offline?: 'deregister' | 'disable';
}

export interface MarkerOptions {
  /** Response header sent while the instance goes offline. Default `x-lossless-offline`. */
  readonly header?: string;
  /** Its value. Default `draining`. */
  readonly value?: string;
}

export interface RegistrationOptions {
  /** Time allowed for one register, deregister or read-back call, in ms. Default 5000. */
  readonly timeoutMs?: number;
  /** First retry delay after a failed registration, in ms (grows exponentially, with jitter). Default 500. */
  readonly retryMinDelayMs?: number;
  /** Largest retry delay, in ms. Default 10000. */
  readonly retryMaxDelayMs?: number;
  /** How long the drain waits for the registry to confirm the instance left, in ms. Default 3000. */
  readonly confirmTimeoutMs?: number;
  /**
   * How often a ready instance looks its registration up, in ms; when the registry answers without
   * it, the instance is not ready until registered again. 0 turns the check off. Default 1000.
   */
  readonly checkIntervalMs?: number;
}

export interface ProviderOptions {
  /** Service name registered and discovered by consumers. */
  readonly service: string;
  /** A Registry, or a URL (`file:///dir`, `static://h:p,...`). Default env LOSSLESS_REGISTRY, else `file://<tmpdir>/lossless-registry`. */
  readonly registry?: string | ProviderRegistry;
  /** Factories for registry URL schemes core does not know, e.g. `{ nacos: ... }`. */
  readonly registrySchemes?: Readonly<Record<string, RegistryFactory>>;
  /** The server to track (node:http, node:https or node:http2). May also be given later with `attach()`. */
  readonly server?: ProviderServer;
  readonly instance?: InstanceOptions;
  /** Admin server options, or `false` for none (mount the admin handler yourself). */
  readonly admin?: AdminOptions | false;
  readonly drain?: DrainOptions;
  readonly marker?: MarkerOptions;
  readonly registration?: RegistrationOptions;
  /** Warm-up window consumers apply to this instance, advertised in its metadata, in ms. Default 60000. */
  readonly warmupWindowMs?: number;
  /**
   * Raise the registered weight from 10 % to full over warmupWindowMs, in ten updates, so that
   * consumers that do not run lossless (Java services on Nacos) warm the instance up too; lossless
   * clients then apply no ramp of their own. Default: where the registry asks for it (Nacos).
   */
  readonly weightRamp?: boolean;
  /** Warm-up hooks, run one after another once the server listens and before registration. */
  readonly warmups?: readonly WarmupHook[];
  /** Timeout of a hook that sets none (warm-up, onReady, preDrain, onClose), in ms. Default 30000. */
  readonly hookTimeoutMs?: number;
  /** Signals that start a drain. Default `['SIGTERM', 'SIGINT']`; `false` installs no handler. */
  readonly signals?: readonly NodeJS.Signals[] | false;
  /**
   * What happens once the drain is over: `true` calls `process.exit(code)`, a function is called with
   * the code instead, `false` leaves the process alone. Default `true` when signals are handled.
   */
  readonly exit?: boolean | ((code: number) => void);
  /** pino-compatible logger. Default: silent. */
  readonly logger?: Logger;
  /**
   * Served as `GET /metrics` by the admin handler, e.g. a prom-client Registry (see
   * `@lossless/core/metrics`). Default: none (404).
   */
  readonly metrics?: MetricsSource;
  /** Environment to read LOSSLESS_* variables from. Default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

export interface ResolvedProviderOptions {
  readonly service: string;
  readonly registry: string | ProviderRegistry;
  readonly registrySchemes: Readonly<Record<string, RegistryFactory>>;
  readonly server: ProviderServer | undefined;
  readonly instance: {
    readonly ip: string | undefined;
    readonly port: number | undefined;
    readonly id: string | undefined;
    readonly weight: number;
    readonly metadata: Readonly<Record<string, string>>;
  };
  readonly admin:
    | { readonly port: number; readonly host: string | undefined; readonly token: string | undefined }
    | false;
  readonly drain: Required<DrainOptions>;
  readonly marker: Required<MarkerOptions>;
  readonly registration: Required<RegistrationOptions>;
  readonly warmupWindowMs: number;
  /** undefined: as the registry asks (`rampsWeight`). */
  readonly weightRamp: boolean | undefined;
  readonly warmups: readonly Required<WarmupHook>[];
  readonly hookTimeoutMs: number;
  readonly signals: readonly NodeJS.Signals[];
  readonly exit: ((code: number) => void) | undefined;
  readonly logger: Logger;
  readonly metrics: MetricsSource | undefined;
}

/** What `GET /metrics` serves: prom-client's Registry has this shape. */
export interface MetricsSource {
  readonly contentType: string;
  metrics(): Promise<string> | string;
}

export const DEFAULT_ADMIN_PORT = 9797;
export const DEFAULT_MARKER_HEADER = 'x-lossless-offline';
const ENV_KEYS = [
  'LOSSLESS_REGISTRY',
  'LOSSLESS_INSTANCE_IP',
  'LOSSLESS_ADMIN_PORT',
  'LOSSLESS_ADMIN_HOST',
  'LOSSLESS_ADMIN_TOKEN',
] as const;

export function resolveProviderOptions(options: ProviderOptions): ResolvedProviderOptions {
  if (typeof options !== 'object' || options === null)
    throw new InvalidOptionError('options', options, 'expected an object');
  const env = options.env ?? process.env;
  if (typeof env !== 'object') throw new InvalidOptionError('env', env, 'expected an object of strings');
  for (const key of ENV_KEYS) {
    if (env[key] !== undefined && typeof env[key] !== 'string')
      throw new InvalidOptionError(key, key === 'LOSSLESS_ADMIN_TOKEN' ? '***' : env[key], 'expected a string');
  }
  const service = options.service;
  if (typeof service !== 'string' || service.trim().length === 0 || service.length > 255)
    throw new InvalidOptionError('service', service, 'expected a non-empty service name of at most 255 characters');

  const registry = options.registry ?? nonEmpty(env.LOSSLESS_REGISTRY) ?? defaultRegistryUrl();
  if (typeof registry !== 'string' && !isRegistry(registry))
    throw new InvalidOptionError(
      'registry',
      registry,
      'expected a registry URL or an object implementing ProviderRegistry (register, deregister, lookup, setEnabled, setWeight, close)',
    );
  const registrySchemes = options.registrySchemes ?? {};
  if (
    typeof registrySchemes !== 'object' ||
    Array.isArray(registrySchemes) ||
    Object.values(registrySchemes).some((factory) => typeof factory !== 'function')
  )
    throw new InvalidOptionError('registrySchemes', registrySchemes, 'expected an object of factory functions');

  const instance = group('instance', options.instance);
  const ip = instance.ip ?? nonEmpty(env.LOSSLESS_INSTANCE_IP);
  if (ip !== undefined && (typeof ip !== 'string' || !isHost(ip)))
    throw new InvalidOptionError('instance.ip', ip, 'expected an IP address or host name');
  if (instance.port !== undefined && !isPort(instance.port))
    throw new InvalidOptionError('instance.port', instance.port, 'expected a port in 1..65535');
  if (instance.id !== undefined && (typeof instance.id !== 'string' || instance.id.length === 0))
    throw new InvalidOptionError('instance.id', instance.id, 'expected a non-empty string');
  const weight = instance.weight ?? 100;
  if (typeof weight !== 'number' || !Number.isFinite(weight) || weight < 0)
    throw new InvalidOptionError('instance.weight', weight, 'expected a finite number >= 0');
  const metadata = instance.metadata ?? {};
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata))
    throw new InvalidOptionError('instance.metadata', metadata, 'expected an object of strings');
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') throw new InvalidOptionError(`instance.metadata.${k}`, v, 'expected a string');
  }

  let admin: ResolvedProviderOptions['admin'] = false;
  if (options.admin !== false) {
    const a = options.admin ?? {};
    if (typeof a !== 'object' || a === null || Array.isArray(a))
      throw new InvalidOptionError('admin', a, 'expected an object or false');
    const port = a.port ?? envNumber(env, 'LOSSLESS_ADMIN_PORT') ?? DEFAULT_ADMIN_PORT;
    if (!(port === 0 || isPort(port)))
      throw new InvalidOptionError('admin.port', port, 'expected 0 or a port in 1..65535');
    const host = a.host ?? nonEmpty(env.LOSSLESS_ADMIN_HOST);
    if (host !== undefined && (typeof host !== 'string' || !isHost(host)))
      throw new InvalidOptionError('admin.host', host, 'expected an IP address or host name');
    const token = a.token ?? nonEmpty(env.LOSSLESS_ADMIN_TOKEN);
    if (token !== undefined && (typeof token !== 'string' || token.length < 8))
      throw new InvalidOptionError('admin.token', '***', 'expected a string of at least 8 characters');
    admin = { port, host, token };
  }

  const d = group('drain', options.drain);
  const drain: Required<DrainOptions> = {
    quietWindowMs: duration('drain.quietWindowMs', d.quietWindowMs, 1500),
    minDrainMs: duration('drain.minDrainMs', d.minDrainMs, 0),
    maxDrainMs: duration('drain.maxDrainMs', d.maxDrainMs, 25_000),
    closeTimeoutMs: duration('drain.closeTimeoutMs', d.closeTimeoutMs, 1000),
    offline: d.offline ?? 'deregister',
  };
  if (drain.offline !== 'deregister' && drain.offline !== 'disable')
    throw new InvalidOptionError('drain.offline', drain.offline, 'expected "deregister" or "disable"');
  if (drain.maxDrainMs <= drain.quietWindowMs)
    throw new InvalidOptionError(
      'drain.maxDrainMs',
      drain.maxDrainMs,
      `expected more than drain.quietWindowMs (${drain.quietWindowMs})`,
    );
  if (drain.maxDrainMs < drain.minDrainMs)
    throw new InvalidOptionError(
      'drain.maxDrainMs',
      drain.maxDrainMs,
      `expected at least drain.minDrainMs (${drain.minDrainMs})`,
    );

  const m = group('marker', options.marker);
  const marker = { header: m.header ?? DEFAULT_MARKER_HEADER, value: m.value ?? 'draining' };
  if (typeof marker.header !== 'string' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(marker.header))
    throw new InvalidOptionError('marker.header', marker.header, 'expected an HTTP header name');
  if (['connection', 'content-length', 'transfer-encoding'].includes(marker.header.toLowerCase()))
    throw new InvalidOptionError('marker.header', marker.header, 'expected a header name HTTP does not reserve');
  if (typeof marker.value !== 'string' || marker.value.length === 0 || !/^[\t\x20-\x7e]+$/.test(marker.value))
    throw new InvalidOptionError('marker.value', marker.value, 'expected a non-empty printable ASCII value');

  const r = group('registration', options.registration);
  const registration: Required<RegistrationOptions> = {
    timeoutMs: duration('registration.timeoutMs', r.timeoutMs, 5000, true),
    retryMinDelayMs: duration('registration.retryMinDelayMs', r.retryMinDelayMs, 500, true),
    retryMaxDelayMs: duration('registration.retryMaxDelayMs', r.retryMaxDelayMs, 10_000, true),
    confirmTimeoutMs: duration('registration.confirmTimeoutMs', r.confirmTimeoutMs, 3000),
    checkIntervalMs: duration('registration.checkIntervalMs', r.checkIntervalMs, 1000),
  };
  if (registration.retryMaxDelayMs < registration.retryMinDelayMs)
    throw new InvalidOptionError(
      'registration.retryMaxDelayMs',
      registration.retryMaxDelayMs,
      `expected at least registration.retryMinDelayMs (${registration.retryMinDelayMs})`,
    );

  const hookTimeoutMs = duration('hookTimeoutMs', options.hookTimeoutMs, 30_000, true);
  const warmupWindowMs = duration('warmupWindowMs', options.warmupWindowMs, 60_000);
  const weightRamp = options.weightRamp;
  if (weightRamp !== undefined && typeof weightRamp !== 'boolean')
    throw new InvalidOptionError('weightRamp', weightRamp, 'expected a boolean');
  const warmupList = options.warmups ?? [];
  if (!Array.isArray(warmupList)) throw new InvalidOptionError('warmups', warmupList, 'expected an array of hooks');
  // Array.from, not map: a hole in the array is a missing hook, not one to skip
  const warmups = Array.from(warmupList, (hook, i) => resolveWarmup(hook, `warmups[${i}]`, hookTimeoutMs));

  const signals = options.signals === false ? [] : (options.signals ?? ['SIGTERM', 'SIGINT']);
  if (!Array.isArray(signals) || [...signals].some((s) => typeof s !== 'string' || !/^SIG[A-Z0-9]+$/.test(s)))
    throw new InvalidOptionError('signals', options.signals, 'expected an array of signal names or false');

  const exitOption = options.exit ?? signals.length > 0;
  let exit: ((code: number) => void) | undefined;
  if (exitOption === true) exit = (code) => process.exit(code);
  else if (typeof exitOption === 'function') exit = exitOption;
  else if (exitOption !== false) throw new InvalidOptionError('exit', exitOption, 'expected a boolean or a function');

  const logger = options.logger ?? silentLogger;
  for (const level of ['debug', 'info', 'warn', 'error'] as const) {
    if (typeof logger[level] !== 'function')
      throw new InvalidOptionError('logger', logger, `expected a pino-compatible logger (no ${level}() method)`);
  }

  if (options.server !== undefined && !isServer(options.server))
    throw new InvalidOptionError('server', options.server, 'expected a node:http, node:https or node:http2 server');

  const metrics = options.metrics;
  if (
    metrics !== undefined &&
    (typeof metrics !== 'object' ||
      metrics === null ||
      typeof metrics.metrics !== 'function' ||
      typeof metrics.contentType !== 'string')
  )
    throw new InvalidOptionError(
      'metrics',
      metrics,
      'expected { contentType, metrics() }, e.g. a prom-client Registry',
    );

  return {
    service,
    registry,
    registrySchemes,
    server: options.server,
    instance: { ip, port: instance.port, id: instance.id, weight, metadata: { ...metadata } },
    admin,
    drain,
    marker,
    registration,
    warmupWindowMs,
    weightRamp,
    warmups,
    hookTimeoutMs,
    signals,
    exit,
    logger,
    metrics,
  };
}

export function resolveWarmup(hook: WarmupHook, label: string, defaultTimeoutMs: number): Required<WarmupHook> {
  if (typeof hook !== 'object' || hook === null) throw new InvalidOptionError(label, hook, 'expected { name, run }');
  if (typeof hook.name !== 'string' || hook.name.length === 0)
    throw new InvalidOptionError(`${label}.name`, hook.name, 'expected a non-empty string');
  if (typeof hook.run !== 'function') throw new InvalidOptionError(`${label}.run`, hook.run, 'expected a function');
  return {
    name: hook.name,
    run: hook.run,
    timeoutMs: duration(`${label}.timeoutMs`, hook.timeoutMs, defaultTimeoutMs, true),
  };
}

/** An option group (`instance`, `drain`, ...): unset means every default; anything but an object is refused. */
function group<T extends object>(name: string, value: T | undefined): T | Record<string, never> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value))
    throw new InvalidOptionError(name, value, 'expected an object');
  return value;
}

/** A duration in ms: finite, >= 0 (> 0 when `positive`), at most 24 h (beyond that, timers misbehave). */
export function duration(name: string, value: unknown, fallback: number, positive = false): number {
  if (value === undefined) return fallback;
  if (
    typeof value !== 'number' ||
    !Number.isFinite(value) ||
    value < 0 ||
    (positive && value === 0) ||
    value > 86_400_000
  )
    throw new InvalidOptionError(
      name,
      value,
      `expected a number of milliseconds ${positive ? '> 0' : '>= 0'} and at most 86400000`,
    );
  return value;
}

function envNumber(env: Readonly<Record<string, string | undefined>>, key: string): number | undefined {
  const raw = nonEmpty(env[key]);
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value)) throw new InvalidOptionError(key, raw, 'expected an integer');
  return value;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

function defaultRegistryUrl(): string {
  return pathToFileURL(join(tmpdir(), 'lossless-registry')).href;
}

function isRegistry(value: unknown): value is ProviderRegistry {
  if (typeof value !== 'object' || value === null) return false;
  const r = value as Record<string, unknown>;
  return ['register', 'deregister', 'lookup', 'close', 'setEnabled', 'setWeight'].every(
    (k) => typeof r[k] === 'function',
  );
}

/** A node:http, node:https or node:http2 server (or one shaped like them). */
function isServer(value: unknown): value is ProviderServer {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Server).listen === 'function' &&
    typeof (value as Server).close === 'function' &&
    typeof (value as Server).prependListener === 'function'
  );
}
