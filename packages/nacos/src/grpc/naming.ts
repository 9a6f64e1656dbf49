// The gRPC transport (`transport: 'grpc'`, the default): naming over one connection to Nacos, as Java
// clients do it since Nacos 2.0 (NamingGrpcClientProxy):
//   - register, update (weight, enabled, metadata: a registration again, the only update the gRPC API
//     has) and deregister go through the plan in redo.ts, one service at a time, calls coalesced;
//   - the server keeps our ephemeral instances as long as the connection lives and removes them the
//     moment it closes (a SIGKILLed process leaves at once);
//   - after a reconnect every wanted instance is registered again and every subscription renewed;
//   - subscribers get the list from the subscription's answer, then from the server's pushes
//     (NotifySubscriberRequest, acknowledged), with a slow poll (`pollMs`) as a safety net; a list
//     older than the one delivered (lastRefTime) is dropped, as Java does;
//   - watch() reports the connection lost, the registration back after a reconnect, and a push of the
//     instance's service without it;
//   - with credentials, each request carries the access token obtained over HTTP (api.ts), logged in
//     again once when the server refuses it.

import os from 'node:os';
import type { Instance, InstanceListener, Logger, RegistrationState } from '@lossless/core';
import { NacosAuthError, NacosRequestError, NacosUnavailableError } from '../errors.js';
import { NacosHttp } from '../http/api.js';
import {
  byId,
  checkWeight,
  fromNacosWeight,
  INSTANCE_ID_KEY,
  metadataOf,
  type NacosHost,
  toInstance,
  toNacosWeight,
} from '../instance.js';
import { grpcAddress, type ResolvedNacosOptions } from '../options.js';
import { type ConnectionTiming, GrpcConnection, ServerAnswerError, type WaitPolicy } from './connection.js';
import { keyOf, planService, type Sent, type Told, toldOf, type Wanted } from './redo.js';

/** Registrations of one service: wanted, told on connection `toldEpoch`, and the sync under way. */
interface ServiceState {
  readonly service: string;
  readonly wanted: Map<string, Wanted>;
  told: Map<string, Told>;
  toldEpoch: number;
  running: boolean;
  pending: Deferred | undefined;
}

interface Deferred {
  readonly promise: Promise<void>;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

interface Watcher {
  readonly key: string;
  readonly ip: string;
  readonly port: number;
  readonly listener: (state: RegistrationState) => void;
  last: RegistrationState['kind'] | undefined;
  /** Listed by an answer or push since it was last registered or enabled: its absence then means something. */
  seen: boolean;
}

interface Listener {
  readonly listener: InstanceListener;
  readonly onError: ((error: Error) => void) | undefined;
}

interface Subscription {
  readonly service: string;
  readonly listeners: Set<Listener>;
  readonly watchers: Set<Watcher>;
  instances: Instance[] | undefined;
  signature: string | undefined;
  lastRefTime: number | undefined;
  subscribedEpoch: number | undefined;
  readonly poll: NodeJS.Timeout;
}

/** A redo that failed on a connection still up is tried again this much later. */
const REDO_RETRY_MS = 1000;
/** Pause before a request that failed with its connection is planned again. */
const RETRY_PAUSE_MS = 50;

export class GrpcNaming {
  readonly #o: ResolvedNacosOptions;
  readonly #log: Logger;
  readonly #http: NacosHttp;
  readonly #conn: GrpcConnection;
  readonly #services = new Map<string, ServiceState>();
  readonly #subs = new Map<string, Subscription>();
  #closed = false;

  constructor(options: ResolvedNacosOptions, log: Logger, timing?: Partial<ConnectionTiming>) {
    this.#o = options;
    this.#log = log;
    this.#http = new NacosHttp(options);
    this.#conn = new GrpcConnection({
      servers: options.servers.map((s) => grpcAddress(s, options)),
      tls: options.tls,
      requestTimeoutMs: options.requestTimeoutMs,
      clientIp: options.clientIp ?? lanAddress(),
      namespace: options.namespace,
      log,
      ...(timing ? { timing } : {}),
    });
    this.#conn.handle('NotifySubscriberRequest', (body) => {
      this.#onPush(body);
      return {};
    });
    this.#conn.onReady((epoch) => this.#redo(epoch));
    this.#conn.onLost((error) => this.#onLost(error));
  }

  async register(instance: Instance): Promise<void> {
    checkWeight(instance.weight);
    const state = this.#state(instance.service);
    const key = keyOf(instance);
    const previous = state.wanted.get(key);
    const wanted: Wanted = {
      key,
      ip: instance.ip,
      port: instance.port,
      nacosWeight: toNacosWeight(instance.weight),
      enabled: true,
      metadata: metadataOf(this.#o, instance),
    };
    state.wanted.set(key, wanted);
    try {
      await this.#sync(state);
    } catch (error) {
      // the caller retries a failed registration itself (or gives up): a redo must not make it behind its back
      if (state.wanted.get(key) === wanted) {
        if (previous === undefined) state.wanted.delete(key);
        else state.wanted.set(key, previous);
        this.#sync(state).catch(() => {});
      }
      throw error;
    }
  }

  /** Deregisters an instance this registry registered; the server drops it from this connection. */
  async deregister(instance: Instance): Promise<void> {
    const state = this.#state(instance.service);
    // no longer wanted from now on: a redo under way or to come leaves it out
    state.wanted.delete(keyOf(instance));
    await this.#sync(state);
  }

  async setEnabled(instance: Instance, enabled: boolean): Promise<void> {
    await this.#update(instance, (w) => ({ ...w, enabled }));
  }

  /** One registration again, with the new weight: cheap, and what a redo sends after a reconnect. */
  async setWeight(instance: Instance, weight: number): Promise<void> {
    checkWeight(weight);
    await this.#update(instance, (w) => ({ ...w, nacosWeight: toNacosWeight(weight) }));
  }

  /**
   * The instances Nacos lists for the service (enabled ones: Nacos leaves disabled ones out). Waits
   * for a connection under way, as the HTTP transport tries every server, but not through an outage.
   */
  async list(service: string): Promise<Instance[]> {
    return this.#hosts(service, await this.#query(service, 'wait'));
  }

  /**
   * The instance as Nacos holds it, or undefined when it does not. Nacos lists enabled instances only:
   * one this registry disabled on the live connection is held (the connection keeps it) and answered
   * from what was registered. Rejects with NacosUnavailableError while the connection is lost.
   */
  async lookup(instance: Pick<Instance, 'service' | 'ip' | 'port'>): Promise<Instance | undefined> {
    const info = await this.#query(instance.service);
    const hosts = Array.isArray(info.hosts) ? (info.hosts as NacosHost[]) : [];
    const candidates = hosts.filter((h) => h.ip === instance.ip && h.port === instance.port);
    const host = candidates.find((h) => h.clusterName === this.#o.cluster) ?? candidates[0];
    if (host !== undefined) return toInstance(instance.service, host, this.#log);
    const state = this.#services.get(instance.service);
    const key = keyOf(instance);
    const wanted = state?.wanted.get(key);
    const told = state?.toldEpoch === this.#conn.readyEpoch ? state?.told.get(key) : undefined;
    if (wanted === undefined || told === undefined || told.enabled) return undefined;
    return toInstance(
      instance.service,
      {
        ip: wanted.ip,
        port: wanted.port,
        weight: wanted.nacosWeight,
        enabled: false,
        healthy: true,
        metadata: wanted.metadata,
      },
      this.#log,
    );
  }

  subscribe(service: string, listener: InstanceListener, onError?: (error: Error) => void): () => void {
    const sub = this.#subscription(service);
    const entry: Listener = { listener, onError };
    sub.listeners.add(entry);
    const known = sub.instances;
    if (known !== undefined) queueMicrotask(() => sub.listeners.has(entry) && guard(this.#log, () => listener(known)));
    return () => {
      if (!sub.listeners.delete(entry)) return;
      this.#release(sub);
    };
  }

  watch(instance: Instance, listener: (state: RegistrationState) => void): () => void {
    const sub = this.#subscription(instance.service);
    const watcher: Watcher = {
      key: keyOf(instance),
      ip: instance.ip,
      port: instance.port,
      listener,
      last: undefined,
      seen: false,
    };
    sub.watchers.add(watcher);
    return () => {
      if (!sub.watchers.delete(watcher)) return;
      this.#release(sub);
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const sub of this.#subs.values()) clearInterval(sub.poll);
    this.#subs.clear();
    await this.#conn.close();
    await this.#http.close();
  }

  // ----------------------------------------------------------------------------------------------
  // registrations

  #state(service: string): ServiceState {
    let state = this.#services.get(service);
    if (state === undefined) {
      state = { service, wanted: new Map(), told: new Map(), toldEpoch: -1, running: false, pending: undefined };
      this.#services.set(service, state);
    }
    return state;
  }

  async #update(instance: Instance, change: (w: Wanted) => Wanted): Promise<void> {
    const state = this.#state(instance.service);
    const key = keyOf(instance);
    const current = state.wanted.get(key);
    if (current === undefined)
      throw new NacosRequestError(
        'gRPC',
        'InstanceRequest',
        404,
        `${instance.service} ${key} was not registered by this registry (over gRPC an instance is updated by registering it again)`,
        'gRPC',
      );
    // kept even when the call fails: a redo after a reconnect sends the latest state
    state.wanted.set(key, change(current));
    await this.#sync(state);
  }

  /** Brings the service's registrations in line; resolves once a sync that started after this call ends. */
  #sync(state: ServiceState): Promise<void> {
    if (state.pending === undefined) {
      let resolve!: () => void;
      let reject!: (error: unknown) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      // a redo may not wait for it; callers that do still get the rejection
      promise.catch(() => {});
      state.pending = { promise, resolve, reject };
    }
    const pending = state.pending;
    if (!state.running) void this.#drain(state);
    return pending.promise;
  }

  async #drain(state: ServiceState): Promise<void> {
    state.running = true;
    while (state.pending !== undefined) {
      const pending = state.pending;
      state.pending = undefined;
      try {
        await this.#applyUntilDeadline(state);
        pending.resolve();
      } catch (error) {
        pending.reject(error);
      }
    }
    state.running = false;
  }

  /**
   * A connection that fails under a request is replaced within moments: the plan is made again on the
   * next one until `requestTimeoutMs` has passed, as Java retries a request while it reconnects.
   */
  async #applyUntilDeadline(state: ServiceState): Promise<void> {
    const deadline = Date.now() + this.#o.requestTimeoutMs;
    for (;;) {
      // no connection to be had: the caller hears it now (a redo follows the next connection)
      const epoch = await this.#conn.ready('wait');
      try {
        await this.#apply(state, epoch);
        return;
      } catch (error) {
        if (!(error instanceof NacosUnavailableError) || this.#closed || Date.now() >= deadline) throw error;
        // the connection failed under the request; until the loss is noticed it still looks ready
        await new Promise((resolve) => setTimeout(resolve, RETRY_PAUSE_MS));
      }
    }
  }

  async #apply(state: ServiceState, epoch: number): Promise<void> {
    if (state.toldEpoch !== epoch) {
      // a new connection holds nothing of ours
      state.told = new Map();
      state.toldEpoch = epoch;
    }
    const steps = planService([...state.wanted.values()], state.told);
    for (const step of steps) {
      if (step.kind === 'deregister') {
        await this.#call(
          'InstanceRequest',
          { ...this.#naming(state.service), type: 'deregisterInstance', instance: this.#json(step.instance) },
          'wait',
          epoch,
        );
        // Nacos drops the connection's whole registration of the service (rnacos only the one named)
        state.told = new Map();
        continue;
      }
      const metadataNews = step.instances.filter((i) => state.told.get(i.key)?.metadata !== JSON.stringify(i.metadata));
      // until the answer comes, the server may or may not hold them: a later plan sends them again
      for (const i of step.instances) state.told.set(i.key, { ...toldOf(i), nacosWeight: Number.NaN });
      const single = step.instances.length === 1 ? step.instances[0] : undefined;
      if (single !== undefined)
        await this.#call(
          'InstanceRequest',
          { ...this.#naming(state.service), type: 'registerInstance', instance: this.#json(single) },
          'wait',
          epoch,
        );
      else
        await this.#call(
          'BatchInstanceRequest',
          {
            ...this.#naming(state.service),
            type: 'batchRegisterInstance',
            instances: step.instances.map((i) => this.#json(i)),
          },
          'wait',
          epoch,
        );
      state.told = new Map(step.instances.map((i) => [i.key, toldOf(i)]));
      if (metadataNews.length > 0) await this.#checkMetadata(state.service, metadataNews);
    }
    this.#afterSync(state, epoch);
  }

  /**
   * rnacos keeps the metadata of an ip:port's first registration, for 60 s after it left too, and
   * gives it to every later gRPC registration of that ip:port: a provider restarted on the same
   * address would keep its predecessor's `lossless.registered-at` (no warm-up at its consumers) and
   * `lossless.instance-id`. When what is held differs from what was registered, the metadata is set
   * through the OpenAPI, which rnacos lets win. Best effort: Nacos itself never differs, and without
   * the HTTP API it is only logged. Keys someone else added are left alone.
   */
  async #checkMetadata(service: string, sent: readonly Sent[]): Promise<void> {
    let hosts: NacosHost[];
    try {
      const info = await this.#query(service, 'wait');
      hosts = Array.isArray(info.hosts) ? (info.hosts as NacosHost[]) : [];
    } catch {
      return;
    }
    for (const i of sent) {
      const host = hosts.find((h) => h.ip === i.ip && h.port === i.port);
      const held = (typeof host?.metadata === 'object' && host.metadata !== null ? host.metadata : {}) as Record<
        string,
        unknown
      >;
      // a disabled instance is not listed: nothing to compare
      if (host === undefined || Object.entries(i.metadata).every(([k, v]) => held[k] === v)) continue;
      try {
        await this.#http.call('PUT', '/nacos/v1/ns/instance', {
          serviceName: service,
          groupName: this.#o.group,
          clusterName: this.#o.cluster,
          ip: i.ip,
          port: String(i.port),
          ephemeral: 'true',
          weight: String(i.sentWeight),
          enabled: String(i.enabled),
          metadata: JSON.stringify(i.metadata),
        });
        this.#log.debug({ service, instance: i.key }, 'Nacos held older metadata; set it through the OpenAPI');
      } catch (error) {
        this.#log.warn(
          { err: error, code: (error as { code?: unknown }).code, service, instance: i.key },
          'Nacos holds metadata of an earlier registration of this address and it could not be replaced',
        );
      }
    }
  }

  /** Watchers of registrations the connection now holds hear `present`; newly (re-)enabled ones must be seen again. */
  #afterSync(state: ServiceState, epoch: number): void {
    const sub = this.#subs.get(state.service);
    if (sub === undefined || this.#conn.readyEpoch !== epoch) return;
    for (const watcher of sub.watchers) {
      const wanted = state.wanted.get(watcher.key);
      if (wanted === undefined || !state.told.has(watcher.key)) continue;
      if (!wanted.enabled) watcher.seen = false;
      this.#emit(watcher, { kind: 'present', instance: this.#instanceOf(state.service, wanted) });
    }
  }

  #redo(epoch: number): void {
    for (const sub of this.#subs.values()) {
      // another server's clock: start the ordering of lists afresh
      sub.lastRefTime = undefined;
      void this.#subscribeRemote(sub);
    }
    for (const state of this.#services.values()) {
      if (state.wanted.size === 0) continue;
      const attempt = (): void => {
        this.#sync(state).catch((error: unknown) => {
          if (this.#closed || this.#conn.readyEpoch !== epoch) return; // the next connection redoes it
          this.#log.warn(
            { err: error, code: (error as { code?: unknown }).code, service: state.service },
            'registering again after a reconnect failed; retrying',
          );
          setTimeout(attempt, REDO_RETRY_MS).unref();
        });
      };
      attempt();
    }
  }

  #onLost(error: Error): void {
    const unavailable = new NacosUnavailableError(this.#o.servers, error);
    for (const sub of this.#subs.values()) {
      sub.subscribedEpoch = undefined;
      for (const watcher of sub.watchers) {
        watcher.seen = false;
        this.#emit(watcher, { kind: 'unreachable', error: unavailable });
      }
      for (const { onError } of sub.listeners) if (onError) guard(this.#log, () => onError(unavailable));
    }
  }

  // ----------------------------------------------------------------------------------------------
  // subscriptions and pushes

  #subscription(service: string): Subscription {
    let sub = this.#subs.get(service);
    if (sub !== undefined) return sub;
    const created: Subscription = {
      service,
      listeners: new Set(),
      watchers: new Set(),
      instances: undefined,
      signature: undefined,
      lastRefTime: undefined,
      subscribedEpoch: undefined,
      // the safety net: pushes deliver changes, this catches one that was lost
      poll: setInterval(() => void this.#poll(created), this.#o.pollMs),
    };
    created.poll.unref();
    sub = created;
    this.#subs.set(service, sub);
    void this.#subscribeRemote(sub);
    return sub;
  }

  #release(sub: Subscription): void {
    if (sub.listeners.size > 0 || sub.watchers.size > 0 || this.#subs.get(sub.service) !== sub) return;
    clearInterval(sub.poll);
    this.#subs.delete(sub.service);
    if (sub.subscribedEpoch !== undefined && sub.subscribedEpoch === this.#conn.readyEpoch)
      this.#call(
        'SubscribeServiceRequest',
        { ...this.#naming(sub.service), subscribe: false, clusters: '' },
        'fail-fast-when-lost',
      ).catch(() => {});
  }

  async #subscribeRemote(sub: Subscription): Promise<void> {
    try {
      const epoch = await this.#conn.ready('wait');
      if (this.#subs.get(sub.service) !== sub || sub.subscribedEpoch === epoch) return;
      const body = await this.#call(
        'SubscribeServiceRequest',
        { ...this.#naming(sub.service), subscribe: true, clusters: '' },
        'wait',
        epoch,
      );
      sub.subscribedEpoch = epoch;
      this.#accept(sub, body.serviceInfo);
    } catch (error) {
      if (this.#closed || this.#subs.get(sub.service) !== sub) return;
      // the connection's next ready (or the poll) subscribes again
      this.#fail(sub, error);
    }
  }

  async #poll(sub: Subscription): Promise<void> {
    if (this.#closed) return;
    if (this.#conn.readyEpoch !== undefined && sub.subscribedEpoch !== this.#conn.readyEpoch) {
      await this.#subscribeRemote(sub);
      return;
    }
    try {
      this.#accept(sub, await this.#query(sub.service));
    } catch (error) {
      if (!this.#closed && this.#subs.get(sub.service) === sub) this.#fail(sub, error);
    }
  }

  #fail(sub: Subscription, error: unknown): void {
    const err = error instanceof Error ? error : new Error(String(error));
    for (const { onError } of sub.listeners) if (onError) guard(this.#log, () => onError(err));
  }

  #onPush(body: Record<string, unknown>): void {
    const info = body.serviceInfo;
    if (typeof info !== 'object' || info === null) return;
    const i = info as Record<string, unknown>;
    if (typeof body.namespace === 'string' && body.namespace !== '' && body.namespace !== this.#o.namespace) return;
    let name = String(body.serviceName ?? i.name ?? '');
    let group = String(body.groupName ?? i.groupName ?? this.#o.group);
    const split = name.indexOf('@@');
    if (split >= 0) {
      group = name.slice(0, split);
      name = name.slice(split + 2);
    }
    if (group !== this.#o.group) return;
    const sub = this.#subs.get(name);
    if (sub !== undefined) this.#accept(sub, info);
  }

  /** Delivers a list from a subscription answer, a push or a poll: only when newer, and only when changed. */
  #accept(sub: Subscription, info: unknown): void {
    if (typeof info !== 'object' || info === null || this.#subs.get(sub.service) !== sub) return;
    const i = info as Record<string, unknown>;
    const refTime = typeof i.lastRefTime === 'number' ? i.lastRefTime : 0;
    if (sub.lastRefTime !== undefined && refTime < sub.lastRefTime) return;
    sub.lastRefTime = refTime;
    const hosts = Array.isArray(i.hosts) ? (i.hosts as NacosHost[]) : [];
    this.#checkWatchers(sub, hosts);
    const instances = this.#hosts(sub.service, i);
    const signature = JSON.stringify(instances);
    if (signature === sub.signature) return;
    sub.signature = signature;
    sub.instances = instances;
    for (const { listener } of sub.listeners) guard(this.#log, () => listener(instances));
  }

  /** A registration held, enabled, listed once and then missing from a list: Nacos no longer holds it. */
  #checkWatchers(sub: Subscription, hosts: readonly NacosHost[]): void {
    const state = this.#services.get(sub.service);
    for (const watcher of sub.watchers) {
      const wanted = state?.wanted.get(watcher.key);
      const told = state?.toldEpoch === this.#conn.readyEpoch ? state?.told.get(watcher.key) : undefined;
      if (wanted === undefined || !wanted.enabled || told === undefined || !told.enabled) continue;
      const listed = hosts.some((h) => h.ip === watcher.ip && h.port === watcher.port);
      if (listed) {
        watcher.seen = true;
        this.#emit(watcher, { kind: 'present', instance: this.#instanceOf(sub.service, wanted) });
      } else if (watcher.seen) {
        watcher.seen = false;
        this.#emit(watcher, { kind: 'absent', reason: `Nacos sent a list of ${sub.service} without ${watcher.key}` });
      }
    }
  }

  #emit(watcher: Watcher, state: RegistrationState): void {
    if (watcher.last === state.kind) return;
    watcher.last = state.kind;
    guard(this.#log, () => watcher.listener(state));
  }

  // ----------------------------------------------------------------------------------------------
  // requests

  async #query(service: string, wait: WaitPolicy = 'fail-fast-when-lost'): Promise<Record<string, unknown>> {
    const body = await this.#call(
      'ServiceQueryRequest',
      { ...this.#naming(service), cluster: '', healthyOnly: false },
      wait,
    );
    const info = body.serviceInfo;
    return typeof info === 'object' && info !== null ? (info as Record<string, unknown>) : {};
  }

  #hosts(service: string, info: Record<string, unknown>): Instance[] {
    const hosts = Array.isArray(info.hosts) ? (info.hosts as NacosHost[]) : [];
    const out: Instance[] = [];
    for (const host of hosts) {
      const instance = toInstance(service, host, this.#log);
      if (instance !== undefined) out.push(instance);
    }
    return out.sort(byId);
  }

  /** A request with the access token; refused once, the token is renewed and the request sent again. */
  async #call(
    type: string,
    body: Record<string, unknown>,
    wait: WaitPolicy,
    epoch?: number,
  ): Promise<Record<string, unknown>> {
    const send = async (): Promise<Record<string, unknown>> => {
      const token = await this.#http.accessToken();
      return this.#conn.request(type, body, {
        headers: token === undefined ? {} : { accessToken: token },
        wait,
        ...(epoch !== undefined ? { epoch } : {}),
      });
    };
    try {
      try {
        return await send();
      } catch (error) {
        if (!(error instanceof ServerAnswerError) || error.errorCode !== 403 || this.#o.username === undefined)
          throw error;
        this.#http.dropToken();
        return await send();
      }
    } catch (error) {
      if (!(error instanceof ServerAnswerError)) throw error;
      if (error.errorCode === 403 && this.#o.username !== undefined)
        throw new NacosAuthError(this.#o.servers.join(', '), 403, error.message, 'gRPC');
      throw new NacosRequestError('gRPC', type, error.errorCode, error.message, 'gRPC');
    }
  }

  #naming(service: string): Record<string, unknown> {
    return { module: 'naming', namespace: this.#o.namespace, groupName: this.#o.group, serviceName: service };
  }

  #json(i: Sent): Record<string, unknown> {
    return {
      ip: i.ip,
      port: i.port,
      weight: i.sentWeight,
      healthy: true,
      enabled: i.enabled,
      ephemeral: true,
      clusterName: this.#o.cluster,
      metadata: i.metadata,
    };
  }

  #instanceOf(service: string, wanted: Wanted): Instance {
    const metadata = wanted.metadata;
    return {
      service,
      id: metadata[INSTANCE_ID_KEY] ?? wanted.key,
      ip: wanted.ip,
      port: wanted.port,
      weight: fromNacosWeight(wanted.nacosWeight),
      enabled: wanted.enabled,
      healthy: true,
      metadata,
    };
  }
}

/** The host's first non-internal IPv4 address, as Java's NetUtils.localIp() reports it. */
function lanAddress(): string {
  for (const addresses of Object.values(os.networkInterfaces())) {
    for (const a of addresses ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

function guard(log: Logger, fn: () => void): void {
  try {
    fn();
  } catch (error) {
    log.error({ err: error }, 'a Nacos subscriber or watcher threw');
  }
}
