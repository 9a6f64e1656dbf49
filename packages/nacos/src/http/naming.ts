// The HTTP transport (`transport: 'http'`): Nacos' v1 OpenAPI, for Nacos 1.x, persistent instances, or
// a closed gRPC port. Registration, heartbeats and push subscriptions go through the `nacos` npm client;
// what it lacks or gets wrong goes through the OpenAPI (api.ts):
//   - `weight: 0` is sent as 1            -> the weight is set again right after registering
//   - a PUT overlay (disabled, weight) outlives re-registration -> the full state is set after registering
//   - deregisterInstance drops the group  -> deregistration is our own DELETE, with the group
//   - a beat in flight re-registers a deregistered instance -> beats stop, and the last one lands, first
//   - empty instance lists never reach subscribers, and without UDP push the client polls only every
//     cacheMillis (10 s) -> subscribers also poll the OpenAPI every `pollMs` and see every change,
//     the last instance leaving included
//   - clientIP is the host's LAN address  -> rewritten to `clientIp` in the transport (api.ts)

import { createRequire } from 'node:module';
import { format } from 'node:util';
import type { Instance, InstanceListener, Logger } from '@lossless/core';
import { listRefresher } from '@lossless/core/internal';
import { NacosUnavailableError } from '../errors.js';
import { byId, checkWeight, metadataOf, type NacosHost, toInstance, toNacosWeight, updateWeight } from '../instance.js';
import type { ResolvedNacosOptions } from '../options.js';
import { NacosHttp } from './api.js';

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

/** Weight, enabled and metadata as one v1 PUT sets them, on Nacos' weight scale. */
interface Overlay {
  readonly nacosWeight: number;
  readonly enabled: boolean;
  readonly metadata: Readonly<Record<string, unknown>>;
}

export class HttpNaming {
  readonly #o: ResolvedNacosOptions;
  readonly #http: NacosHttp;
  readonly #log: Logger;
  #client: Promise<NamingClient> | undefined;
  readonly #subscriptions = new Set<() => void>();

  constructor(options: ResolvedNacosOptions, log: Logger) {
    this.#o = options;
    this.#log = log;
    this.#http = new NacosHttp(options);
  }

  async register(instance: Instance): Promise<void> {
    checkWeight(instance.weight);
    // the npm client swallows the reasons of failed calls: check credentials and reachability first
    await this.#http.ensureLogin();
    const client = await this.#naming();
    const metadata = metadataOf(this.#o, instance);
    const grouped = this.#grouped(instance.service);
    const nacosWeight = toNacosWeight(instance.weight);
    try {
      await client.registerInstance(
        instance.service,
        {
          ip: instance.ip,
          port: instance.port,
          // the client turns 0 into 1; the weight is set again below
          weight: nacosWeight === 0 ? 1 : nacosWeight,
          enabled: true,
          healthy: true,
          ephemeral: this.#o.ephemeral,
          clusterName: this.#o.cluster,
          metadata,
        },
        this.#o.group,
      );
    } catch (error) {
      // the client schedules heartbeats before it registers: a beat would register it later
      client._beatReactor?.removeBeatInfo(grouped, instance.ip, instance.port);
      if (error instanceof Error && error.message.includes('after all servers'))
        throw new NacosUnavailableError(this.#o.servers, error);
      throw error;
    }
    // An earlier PUT (disabled, weight 0) on this ip:port outlives re-registration: set the state explicitly.
    await this.#put(instance, { nacosWeight, enabled: true, metadata });
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
    // rnacos keeps the old weight when a PUT says 1.0 (see updateWeight)
    await this.#update(instance, { nacosWeight: updateWeight(toNacosWeight(weight)) });
  }

  /** Instances Nacos lists for the service (Nacos leaves disabled instances out of this list). */
  async list(service: string): Promise<Instance[]> {
    const body = await this.#http.json<{ hosts?: unknown }>('GET', '/nacos/v1/ns/instance/list', {
      serviceName: service,
      groupName: this.#o.group,
      healthyOnly: 'false',
    });
    const hosts = Array.isArray(body.hosts) ? (body.hosts as NacosHost[]) : [];
    const out: Instance[] = [];
    for (const host of hosts) {
      const instance = toInstance(service, host, this.#log);
      if (instance !== undefined) out.push(instance);
    }
    return out.sort(byId);
  }

  /**
   * One instance as Nacos holds it, disabled or not; undefined when Nacos does not know it (Nacos
   * answers 404 for that, rnacos 500). Rejects with NacosUnavailableError when no server answers.
   */
  async lookup(instance: Pick<Instance, 'service' | 'ip' | 'port'>): Promise<Instance | undefined> {
    const answer = await this.#http.call('GET', '/nacos/v1/ns/instance', this.#instanceParams(instance), true, true);
    if (answer.status === 404 || answer.status === 500 || answer.text.trim() === '') return undefined;
    let host: NacosHost;
    try {
      host = JSON.parse(answer.text) as NacosHost;
    } catch {
      return undefined;
    }
    return toInstance(instance.service, host, this.#log);
  }

  subscribe(service: string, listener: InstanceListener, onError?: (error: Error) => void): () => void {
    let active = true;
    const refresher = listRefresher(() => this.list(service), listener, onError);
    const onPush = (): void => refresher.refresh();
    const info = { serviceName: service, groupName: this.#o.group };
    this.#naming().then(
      (client) => {
        if (active) client.subscribe(info, onPush);
      },
      (error: Error) => onError?.(error),
    );
    refresher.refresh();
    const poll = setInterval(onPush, this.#o.pollMs);
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
    for (const unsubscribe of [...this.#subscriptions]) unsubscribe();
    const client = await this.#client?.catch(() => undefined);
    await client?.close().catch(() => {});
    await this.#http.close();
  }

  /** The parameters that name one instance in the v1 OpenAPI. */
  #instanceParams(instance: Pick<Instance, 'service' | 'ip' | 'port'>): Record<string, string> {
    return {
      serviceName: instance.service,
      groupName: this.#o.group,
      clusterName: this.#o.cluster,
      ip: instance.ip,
      port: String(instance.port),
      ephemeral: String(this.#o.ephemeral),
    };
  }

  #grouped(service: string): string {
    return `${this.#o.group}@@${service}`;
  }

  /** A PUT on the v1 API replaces weight, enabled and metadata at once: the rest is read first. */
  async #update(instance: Instance, change: Partial<Overlay>): Promise<void> {
    const current = await this.lookup(instance).catch(() => undefined);
    await this.#put(instance, {
      nacosWeight: change.nacosWeight ?? toNacosWeight(current?.weight ?? instance.weight),
      enabled: change.enabled ?? current?.enabled ?? instance.enabled,
      metadata: change.metadata ?? current?.metadata ?? metadataOf(this.#o, instance),
    });
  }

  async #put(instance: Instance, overlay: Overlay): Promise<void> {
    await this.#http.call('PUT', '/nacos/v1/ns/instance', {
      ...this.#instanceParams(instance),
      weight: String(overlay.nacosWeight),
      enabled: String(overlay.enabled),
      metadata: JSON.stringify(overlay.metadata),
    });
  }

  /** Heartbeats first: a beat that lands after the deregistration registers the instance again. */
  async #stopBeats(client: NamingClient, instance: Instance): Promise<void> {
    const reactor = client._beatReactor;
    if (reactor === undefined) return;
    const grouped = this.#grouped(instance.service);
    const beat = reactor._dom2Beat?.get(`${grouped}#${instance.ip}#${instance.port}`);
    reactor.removeBeatInfo(grouped, instance.ip, instance.port);
    const deadline = Date.now() + this.#o.requestTimeoutMs;
    while (beat?.scheduled === true && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  #naming(): Promise<NamingClient> {
    this.#client ??= (async () => {
      const require = createRequire(import.meta.url);
      const { NacosNamingClient } = require('nacos-naming') as { NacosNamingClient: NamingClientClass };
      const client = new NacosNamingClient({
        logger: bridgeLogger(this.#log),
        serverList: [...this.#o.servers],
        namespace: this.#o.namespace,
        ssl: this.#o.tls,
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
