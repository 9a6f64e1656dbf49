// Nacos as a lossless registry. Registration, heartbeats and push subscriptions go through the
// `nacos` npm client; what it lacks or gets wrong goes through the OpenAPI (http.ts):
//   - `weight: 0` is sent as 1            -> the weight is set again right after registering
//   - a PUT overlay (disabled, weight) outlives re-registration -> the full state is set after registering
//   - deregisterInstance drops the group  -> deregistration is our own DELETE, with the group
//   - a beat in flight re-registers a deregistered instance -> beats stop, and the last one lands, first
//   - empty instance lists never reach subscribers, and without UDP push the client polls only every
//     cacheMillis (10 s) -> subscribers also poll the OpenAPI every `pollMs` and see every change,
//     the last instance leaving included
//   - clientIP is the host's LAN address  -> rewritten to `clientIp` in the transport (http.ts)

import { createRequire } from 'node:module';
import { format } from 'node:util';
import {
  type Instance,
  type InstanceListener,
  InvalidOptionError,
  instanceProblem,
  type Logger,
  listRefresher,
  type Registry,
  stderrLogger,
} from '@lossless/core';
import { NacosUnavailableError } from './errors.js';
import { NacosHttp } from './http.js';
import { type NacosRegistryOptions, parseNacosUrl, type ResolvedNacosOptions, resolveNacosOptions } from './options.js';

/** Metadata key carrying the lossless instance id, so that ids survive a round-trip through Nacos. */
export const INSTANCE_ID_KEY = 'lossless.instance-id';

/** Nacos' largest weight. */
export const MAX_WEIGHT = 10_000;

interface NacosHost {
  ip?: unknown;
  port?: unknown;
  weight?: unknown;
  healthy?: unknown;
  enabled?: unknown;
  clusterName?: unknown;
  metadata?: unknown;
}

// The parts of the npm client lossless uses; its own typings lack metadata.
interface BeatInfo {
  scheduled: boolean;
}
interface NamingClient {
  ready(): Promise<void>;
  registerInstance(service: string, instance: object, group: string): Promise<void>;
  subscribe(info: { serviceName: string; groupName: string; clusters?: string }, listener: () => void): void;
  unSubscribe(info: { serviceName: string; groupName: string; clusters?: string }, listener: () => void): void;
  close(): Promise<void>;
  on(event: 'error', listener: (error: Error) => void): void;
  _beatReactor?: {
    _dom2Beat?: Map<string, BeatInfo>;
    removeBeatInfo(service: string, ip: string, port: number): void;
  };
  _hostReactor?: { on(event: 'error', listener: (error: Error) => void): void };
}
type NamingClientClass = new (options: object) => NamingClient;

export class NacosRegistry implements Registry {
  readonly kind = 'nacos';
  readonly readsBack = true;
  readonly supportsEnable = true;
  readonly options: ResolvedNacosOptions;

  readonly #http: NacosHttp;
  readonly #log: Logger;
  #client: Promise<NamingClient> | undefined;
  readonly #subscriptions = new Set<() => void>();
  #closed = false;

  constructor(options: NacosRegistryOptions) {
    this.options = resolveNacosOptions(options);
    this.#log = options.logger ?? stderrLogger;
    this.#http = new NacosHttp(this.options);
  }

  async register(instance: Instance): Promise<void> {
    checkWeight(instance.weight);
    // the npm client swallows the reasons of failed calls: check credentials and reachability first
    await this.#http.ensureLogin();
    const client = await this.#naming();
    const metadata = this.#metadataOf(instance);
    const grouped = this.#grouped(instance.service);
    try {
      await client.registerInstance(
        instance.service,
        {
          ip: instance.ip,
          port: instance.port,
          // the client turns 0 into 1; the weight is set again below
          weight: instance.weight === 0 ? 1 : instance.weight,
          enabled: true,
          healthy: true,
          ephemeral: this.options.ephemeral,
          clusterName: this.options.cluster,
          metadata,
        },
        this.options.group,
      );
    } catch (error) {
      // the client schedules heartbeats before it registers: a beat would register it later
      client._beatReactor?.removeBeatInfo(grouped, instance.ip, instance.port);
      if (error instanceof Error && error.message.includes('after all servers'))
        throw new NacosUnavailableError(this.options.servers, error);
      throw error;
    }
    // An earlier PUT (disabled, weight 0) on this ip:port outlives re-registration: set the state explicitly.
    await this.#update(instance, { enabled: true, weight: instance.weight, metadata });
  }

  async deregister(instance: Instance): Promise<void> {
    const client = await this.#naming();
    await this.#stopBeats(client, instance);
    await this.#http.call('DELETE', '/nacos/v1/ns/instance', this.#instanceParams(instance), true);
  }

  async setEnabled(instance: Instance, enabled: boolean): Promise<void> {
    await this.#update(instance, { enabled });
  }

  async setWeight(instance: Instance, weight: number): Promise<void> {
    checkWeight(weight);
    await this.#update(instance, { weight });
  }

  /** Instances Nacos lists for the service (Nacos leaves disabled instances out of this list). */
  async list(service: string): Promise<Instance[]> {
    const body = await this.#http.json<{ hosts?: unknown }>('GET', '/nacos/v1/ns/instance/list', {
      serviceName: service,
      groupName: this.options.group,
      healthyOnly: 'false',
    });
    const hosts = Array.isArray(body.hosts) ? (body.hosts as NacosHost[]) : [];
    const out: Instance[] = [];
    for (const host of hosts) {
      const instance = this.#toInstance(service, host);
      if (instance !== undefined) out.push(instance);
    }
    return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /**
   * One instance as Nacos holds it, disabled or not; undefined when Nacos does not know it (Nacos
   * answers 404 for that, rnacos 500).
   */
  async get(instance: Pick<Instance, 'service' | 'ip' | 'port'>): Promise<Instance | undefined> {
    const answer = await this.#http.call('GET', '/nacos/v1/ns/instance', this.#instanceParams(instance), true, true);
    if (answer.status === 404 || answer.status === 500 || answer.text.trim() === '') return undefined;
    let host: NacosHost;
    try {
      host = JSON.parse(answer.text) as NacosHost;
    } catch {
      return undefined;
    }
    return this.#toInstance(instance.service, host);
  }

  /** One instance as Nacos holds it; undefined when Nacos does not hold it. */
  lookup(instance: Instance): Promise<Instance | undefined> {
    return this.get(instance);
  }

  subscribe(service: string, listener: InstanceListener, onError?: (error: Error) => void): () => void {
    let active = true;
    const refresher = listRefresher(() => this.list(service), listener, onError);
    const onPush = (): void => refresher.refresh();
    const info = { serviceName: service, groupName: this.options.group };
    this.#naming().then(
      (client) => {
        if (active) client.subscribe(info, onPush);
      },
      (error: Error) => onError?.(error),
    );
    refresher.refresh();
    const poll = setInterval(onPush, this.options.pollMs);
    poll.unref();
    const unsubscribe = (): void => {
      if (!active) return;
      active = false;
      refresher.stop();
      clearInterval(poll);
      this.#client?.then((client) => client.unSubscribe(info, onPush)).catch(() => {});
      this.#subscriptions.delete(unsubscribe);
    };
    this.#subscriptions.add(unsubscribe);
    return unsubscribe;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const unsubscribe of [...this.#subscriptions]) unsubscribe();
    const client = await this.#client?.catch(() => undefined);
    await client?.close().catch(() => {});
    await this.#http.close();
  }

  /** The parameters that name one instance in the v1 OpenAPI. */
  #instanceParams(instance: Pick<Instance, 'service' | 'ip' | 'port'>): Record<string, string> {
    return {
      serviceName: instance.service,
      groupName: this.options.group,
      clusterName: this.options.cluster,
      ip: instance.ip,
      port: String(instance.port),
      ephemeral: String(this.options.ephemeral),
    };
  }

  #grouped(service: string): string {
    return `${this.options.group}@@${service}`;
  }

  #metadataOf(instance: Instance): Record<string, string> {
    return { ...this.options.metadata, ...instance.metadata, [INSTANCE_ID_KEY]: instance.id };
  }

  /** A PUT on the v1 API replaces weight, enabled and metadata at once: always send all three. */
  async #update(instance: Instance, change: Partial<Pick<Instance, 'enabled' | 'weight' | 'metadata'>>): Promise<void> {
    const complete = change.weight !== undefined && change.enabled !== undefined && change.metadata !== undefined;
    const current = complete ? undefined : await this.get(instance).catch(() => undefined);
    const weight = change.weight ?? current?.weight ?? instance.weight;
    const enabled = change.enabled ?? current?.enabled ?? instance.enabled;
    const metadata = change.metadata ?? current?.metadata ?? this.#metadataOf(instance);
    await this.#http.call('PUT', '/nacos/v1/ns/instance', {
      ...this.#instanceParams(instance),
      weight: String(weight),
      enabled: String(enabled),
      metadata: JSON.stringify(metadata),
    });
  }

  /** Heartbeats first: a beat that lands after the deregistration registers the instance again. */
  async #stopBeats(client: NamingClient, instance: Instance): Promise<void> {
    const reactor = client._beatReactor;
    if (reactor === undefined) return;
    const grouped = this.#grouped(instance.service);
    const beat = reactor._dom2Beat?.get(`${grouped}#${instance.ip}#${instance.port}`);
    reactor.removeBeatInfo(grouped, instance.ip, instance.port);
    const deadline = Date.now() + this.options.requestTimeoutMs;
    while (beat?.scheduled === true && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  #toInstance(service: string, host: NacosHost): Instance | undefined {
    const metadata =
      typeof host.metadata === 'object' && host.metadata !== null ? (host.metadata as Record<string, unknown>) : {};
    const id =
      typeof metadata[INSTANCE_ID_KEY] === 'string' ? (metadata[INSTANCE_ID_KEY] as string) : `${host.ip}:${host.port}`;
    const candidate = {
      service,
      id,
      ip: host.ip,
      port: host.port,
      weight: host.weight,
      enabled: host.enabled ?? true,
      healthy: host.healthy ?? true,
      metadata,
    };
    const problem = instanceProblem(candidate);
    if (problem !== undefined) {
      this.#log.warn(
        { code: 'LOSSLESS_ERR_BAD_INSTANCE', service, problem },
        'Nacos listed an invalid instance; skipped',
      );
      return undefined;
    }
    return candidate as Instance;
  }

  #naming(): Promise<NamingClient> {
    this.#client ??= (async () => {
      const require = createRequire(import.meta.url);
      const { NacosNamingClient } = require('nacos') as { NacosNamingClient: NamingClientClass };
      const client = new NacosNamingClient({
        logger: bridgeLogger(this.#log),
        serverList: [...this.options.servers],
        namespace: this.options.namespace,
        ssl: this.options.tls,
        httpclient: this.#http.legacyClient,
      });
      const onError = (error: Error): void => {
        this.#log.warn({ err: error, code: 'LOSSLESS_ERR_NACOS_CLIENT' }, `nacos client: ${error.message}`);
      };
      client.on('error', onError);
      client._hostReactor?.on('error', onError);
      await client.ready();
      return client;
    })();
    return this.#client;
  }
}

/** Creates a Nacos registry from a `nacos://` URL (for `registrySchemes: { nacos: createNacosRegistry }`). */
export function createNacosRegistry(url: string, context: { readonly logger?: Logger } = {}): NacosRegistry {
  return new NacosRegistry({ ...parseNacosUrl(url), ...(context.logger ? { logger: context.logger } : {}) });
}

function checkWeight(weight: number): void {
  if (typeof weight !== 'number' || !Number.isFinite(weight) || weight < 0 || weight > MAX_WEIGHT)
    throw new InvalidOptionError('weight', weight, `expected a number in 0..${MAX_WEIGHT} (Nacos' range)`);
}

/** The npm client logs printf-style; lossless loggers take (fields, message). Its chatter goes to debug. */
function bridgeLogger(logger: Logger): object {
  const text = (args: unknown[]): string => format(...args);
  return {
    debug: (...args: unknown[]) => logger.debug({ component: 'nacos-client' }, text(args)),
    info: (...args: unknown[]) => logger.debug({ component: 'nacos-client' }, text(args)),
    warn: (...args: unknown[]) => logger.debug({ component: 'nacos-client' }, text(args)),
    error: (...args: unknown[]) => logger.warn({ component: 'nacos-client' }, text(args)),
  };
}
