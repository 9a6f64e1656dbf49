// What this client knows of each service: the instances the registry lists, when it first saw each
// registration, which ones it took out of rotation after an offline marker, and how many requests
// each has in flight. A service is subscribed to on first use.

import { type DiscoveryRegistry, type Instance, type Logger, METADATA_KEYS } from '@lossless/core';
import { instanceProblem } from '@lossless/core/internal';
import type { Rotation } from '../balancing/rotation.js';
import { ejectChannel, type RefreshEvent, refreshChannel, registryErrorChannel } from '../channels.js';

/** How long the wait for a service's first list keeps the process alive, at most, in ms. */
const FIRST_LIST_HOLD_MS = 30_000;
/** How long an ejected registration is remembered, in ms. */
const EJECTION_MEMORY_MS = 10 * 60_000;
/**
 * How long an instance that went offline (marker, or gone from the list) stays a last resort, in ms:
 * longer than a provider's default drain (drain.maxDrainMs 25 s) lasts.
 */
const LAST_RESORT_MS = 30_000;
/**
 * How long an ejection lasts when the registration carries no registration time (a static list, a
 * registry lossless did not register in), in ms: a restart at the same address cannot be told from
 * the instance that went offline, so the address comes back once a drain is surely over, as a last
 * resort does. Were it still draining, its next marked answer ejects it again.
 */
const UNTIMED_EJECTION_MS = LAST_RESORT_MS;

export interface Endpoint {
  /** The latest listing of this registration (replaced in place: requests in flight hold this object). */
  instance: Instance;
  readonly origin: string;
  /** `service/id`: stable key of the instance for breakers, ejection and metrics. */
  readonly key: string;
  /** Monotonic ms when this client first saw this registration. */
  readonly firstSeen: number;
  /** True when it was in the first list of the service. */
  readonly initial: boolean;
  readonly registeredAt: number | undefined;
  warmupMs: number | undefined;
  inFlight: number;
}

export interface ServiceState {
  readonly name: string;
  /** Usable endpoints: enabled, healthy, weight > 0, not ejected. A new array whenever it changes. */
  endpoints: Endpoint[];
  /**
   * Instances that went offline lately (an offline marker, or gone from the list) and may still be
   * serving their drain: used only while `endpoints` is empty, as kube-proxy uses serving-and-
   * terminating endpoints when no ready one is left (every instance draining at once: a scale to
   * zero, a Recreate deployment). A new array whenever it changes.
   */
  lastResort: Endpoint[];
  /** The balancer's pick structure for `endpoints`, built on first use after each change. */
  rotation: Rotation | undefined;
  readonly ready: Promise<void>;
  /** True once a first list arrived (or the first attempt failed and the wait gave up). */
  loaded: boolean;
  lastError: Error | undefined;
}

export interface TableOptions {
  readonly registry: DiscoveryRegistry;
  readonly logger: Logger;
  readonly now: () => number;
  /** Smallest interval between two marker-triggered refreshes of one service, in ms. */
  readonly refreshIntervalMs: number;
  /** Called with the origin of a registration the registry no longer lists. */
  readonly onLeave?: (origin: string) => void;
  /**
   * Called whenever a service's usable instances may have changed (a list arrived, an instance was
   * ejected): for callers that push the list on (a grpc-js resolver) rather than read it per request.
   */
  readonly onChange?: (service: string) => void;
}

interface Entry extends ServiceState {
  /** Every listed registration by address and id (`identityOf`), usable or not (keeps firstSeen across updates). */
  known: Map<string, Endpoint>;
  /** Registrations listed before and not now, with when they went (a flap keeps their warm-up). */
  gone: Map<string, { endpoint: Endpoint; at: number }>;
  /** Ejected instances: address and id -> the registration time that was ejected, and when. */
  ejected: Map<string, { registeredAt: string; at: number }>;
  /** Went offline lately, by address and id (the source of `lastResort`). */
  offline: Map<string, { endpoint: Endpoint; at: number }>;
  unsubscribe: () => void;
  /**
   * A list came (not only an error): the registrations of the first one are those that were serving
   * before this client saw them (`initial`), even when a failed read made the entry `loaded` first.
   */
  listed: boolean;
  lastListed: readonly Instance[];
  refreshing: boolean;
  refreshAgain: boolean;
  lastRefresh: number;
  refreshTimer: NodeJS.Timeout | undefined;
  markReady: () => void;
  /** Ejections and refreshes triggered by markers, for the storm bound and for tests. */
  refreshes: number;
  /** Why the next refresh happens (the latest request wins). */
  refreshReason: RefreshEvent['reason'];
  /** An empty list waits for the registry to confirm it: a failed read is tried again. */
  confirming: boolean;
  /** Lists pushed by the subscription so far: a read that a newer push overtook is dropped. */
  pushes: number;
  /** Ends the ejections of registrations with no registration time (UNTIMED_EJECTION_MS). */
  ejectionTimer: NodeJS.Timeout | undefined;
}

export class ServiceTable {
  readonly #o: TableOptions;
  readonly #entries = new Map<string, Entry>();
  #closed = false;

  constructor(options: TableOptions) {
    this.#o = options;
  }

  /** The state of `service`, subscribing on first use (after close(): an empty state, no subscription). */
  get(service: string): ServiceState {
    const existing = this.#entries.get(service);
    if (existing !== undefined) return existing;
    if (this.#closed) return closedState(service);
    return this.#create(service);
  }

  // (apart from get(): a function whose locals a closure captures allocates their context on every
  // call, and get() runs on every request's path)
  #create(service: string): Entry {
    // The first list comes through the registry's watchers and polls, which are unref'd: a one-shot
    // script waiting for it (a request, or `service(name).ready`) must not exit before it comes.
    // Held for FIRST_LIST_HOLD_MS at most: a registry that never answers must not keep a process alive.
    const hold = setTimeout(() => {}, FIRST_LIST_HOLD_MS);
    let markReady!: () => void;
    const ready = new Promise<void>((resolve) => {
      markReady = () => {
        clearTimeout(hold);
        resolve();
      };
    });
    const entry: Entry = {
      name: service,
      endpoints: [],
      lastResort: [],
      rotation: undefined,
      ready,
      loaded: false,
      lastError: undefined,
      known: new Map(),
      gone: new Map(),
      ejected: new Map(),
      offline: new Map(),
      unsubscribe: () => {},
      listed: false,
      lastListed: [],
      refreshing: false,
      refreshAgain: false,
      lastRefresh: Number.NEGATIVE_INFINITY,
      refreshTimer: undefined,
      markReady,
      refreshes: 0,
      refreshReason: 'api',
      confirming: false,
      pushes: 0,
      ejectionTimer: undefined,
    };
    this.#entries.set(service, entry);
    entry.unsubscribe = this.#o.registry.subscribe(
      service,
      (instances) => {
        entry.pushes++;
        this.#onList(entry, instances, false);
      },
      (error) => this.#onError(entry, error),
    );
    return entry;
  }

  /**
   * Takes an instance out of rotation at once (it answered with the offline marker) and asks the
   * registry again. It comes back only with a new registration. `origin` tells apart registrations
   * that share an id (a misconfigured fleet): only the one that answered is taken out.
   */
  eject(service: string, key: string, origin?: string, reason: 'marker' | 'goaway' = 'marker'): void {
    const entry = this.#entries.get(service);
    if (entry === undefined) return;
    const endpoint = entry.endpoints.find((e) => e.key === key && (origin === undefined || e.origin === origin));
    if (endpoint === undefined) return;
    this.#eject(entry, endpoint, reason);
  }

  /**
   * Takes every instance at `origin` out of rotation, in whichever service lists it (its HTTP/2
   * session got GOAWAY: the connection, not a response, says it is going away), as eject() does.
   */
  ejectOrigin(origin: string, reason: 'marker' | 'goaway'): void {
    // compared as URLs: undici reports `https://10.0.0.1` where the table has `https://10.0.0.1:443`
    const wanted = canonicalOrigin(origin);
    for (const entry of this.#entries.values()) {
      const endpoint = entry.endpoints.find((e) => canonicalOrigin(e.origin) === wanted);
      if (endpoint !== undefined) this.#eject(entry, endpoint, reason);
    }
  }

  #eject(entry: Entry, endpoint: Endpoint, reason: 'marker' | 'goaway'): void {
    const service = entry.name;
    const now = this.#o.now();
    const registeredAt = endpoint.instance.metadata[METADATA_KEYS.registeredAt] ?? '';
    entry.ejected.set(identityOf(endpoint.instance), { registeredAt, at: now });
    if (registeredAt === '') this.#armEjectionTimer(entry);
    entry.endpoints = entry.endpoints.filter((e) => e !== endpoint);
    entry.offline.set(identityOf(endpoint.instance), { endpoint, at: now });
    this.#updateLastResort(entry, now);
    this.#o.onChange?.(service);
    this.#o.logger.debug(
      { service, instance: endpoint.instance.id, reason },
      reason === 'marker' ? 'instance ejected after an offline marker' : 'instance ejected after an HTTP/2 GOAWAY',
    );
    if (ejectChannel.hasSubscribers)
      ejectChannel.publish({ service, instance: endpoint.instance.id, origin: endpoint.origin, reason });
    this.refresh(service, reason);
  }

  /** One registry read for the service, coalesced and at most one per refreshIntervalMs. */
  refresh(service: string, reason: RefreshEvent['reason'] = 'api'): void {
    const entry = this.#entries.get(service);
    if (entry === undefined || this.#closed) return;
    entry.refreshReason = reason;
    if (entry.refreshing) {
      entry.refreshAgain = true;
      return;
    }
    if (entry.refreshTimer !== undefined) return;
    const wait = entry.lastRefresh + this.#o.refreshIntervalMs - this.#o.now();
    if (wait > 0) {
      entry.refreshTimer = setTimeout(() => {
        entry.refreshTimer = undefined;
        this.refresh(service, entry.refreshReason);
      }, wait);
      entry.refreshTimer.unref();
      return;
    }
    entry.refreshing = true;
    entry.lastRefresh = this.#o.now();
    entry.refreshes++;
    if (refreshChannel.hasSubscribers) refreshChannel.publish({ service, reason: entry.refreshReason });
    const pushes = entry.pushes;
    // a list() that throws instead of rejecting fails this read, not the refreshes after it
    new Promise<readonly Instance[]>((resolve) => resolve(this.#o.registry.list(service)))
      .then(
        (instances) => {
          // a push that came while this read was under way is newer than what the read answers
          if (entry.pushes !== pushes && !entry.confirming) return;
          this.#onList(entry, instances, true);
        },
        (error: Error) => this.#onError(entry, error),
      )
      .finally(() => {
        entry.refreshing = false;
        if (entry.refreshAgain) {
          entry.refreshAgain = false;
          this.refresh(service, entry.refreshReason);
        }
      });
  }

  /** The services used so far. */
  services(): string[] {
    return [...this.#entries.keys()];
  }

  /** The service's last resort now, without the instances that went offline too long ago. */
  lastResort(state: ServiceState): Endpoint[] {
    const entry = state as Entry;
    if (entry.lastResort.length > 0) {
      const now = this.#o.now();
      for (const off of entry.offline.values()) {
        if (now - off.at > LAST_RESORT_MS) {
          this.#updateLastResort(entry, now);
          break;
        }
      }
    }
    return entry.lastResort;
  }

  /** Registry reads triggered for `service` since it was first used (markers, suspicious empties). */
  refreshCount(service: string): number {
    return this.#entries.get(service)?.refreshes ?? 0;
  }

  /** Lists the service again, without a registry read, once its oldest untimed ejection has ended. */
  #armEjectionTimer(entry: Entry): void {
    if (entry.ejectionTimer !== undefined || this.#closed) return;
    entry.ejectionTimer = setTimeout(() => {
      entry.ejectionTimer = undefined;
      if (this.#closed) return;
      this.#onList(entry, entry.lastListed, true);
      for (const ejected of entry.ejected.values())
        if (ejected.registeredAt === '') {
          this.#armEjectionTimer(entry);
          break;
        }
    }, UNTIMED_EJECTION_MS + 1);
    entry.ejectionTimer.unref();
  }

  close(): void {
    this.#closed = true;
    for (const entry of this.#entries.values()) {
      entry.unsubscribe();
      clearTimeout(entry.refreshTimer);
      clearTimeout(entry.ejectionTimer);
      entry.markReady();
    }
  }

  #onList(entry: Entry, instances: readonly Instance[], confirmed: boolean): void {
    // An empty answer after a non-empty one is believed only when the registry confirms it.
    if (instances.length === 0 && entry.lastListed.length > 0 && !confirmed) {
      this.#o.logger.debug({ service: entry.name }, 'empty instance list: asking the registry to confirm');
      entry.confirming = true;
      this.refresh(entry.name, 'empty-list');
      return;
    }
    entry.confirming = false;
    entry.lastListed = instances;
    const now = this.#o.now();
    // ejections end here, before the list is read: after EJECTION_MEMORY_MS, or UNTIMED_EJECTION_MS
    // for a registration with no registration time (remembered even when the instance is no longer
    // listed: a stale list must not bring the draining registration back)
    for (const [id, ejected] of entry.ejected)
      if (now - ejected.at > (ejected.registeredAt === '' ? UNTIMED_EJECTION_MS : EJECTION_MEMORY_MS))
        entry.ejected.delete(id);
    const first = !entry.listed;
    entry.listed = true;
    const known = new Map<string, Endpoint>();
    const usable: Endpoint[] = [];
    for (const instance of instances) {
      const problem = instanceProblem(instance);
      if (problem !== undefined) {
        this.#o.logger.warn(
          { service: entry.name, problem, code: 'LOSSLESS_ERR_BAD_INSTANCE' },
          'registry listed an invalid instance; skipped',
        );
        continue;
      }
      const registeredAt = instance.metadata[METADATA_KEYS.registeredAt];
      const identity = identityOf(instance);
      // a registration listed before, or listed until recently (a flapping registry): the same object,
      // so that its first sight (warm-up) and the requests in flight on it carry over
      const previous = entry.known.get(identity) ?? entry.gone.get(identity)?.endpoint;
      const same = previous !== undefined && previous.instance.metadata[METADATA_KEYS.registeredAt] === registeredAt;
      let endpoint: Endpoint;
      if (same && previous !== undefined) {
        endpoint = previous;
        endpoint.instance = instance;
        endpoint.warmupMs = warmupOf(instance);
      } else {
        endpoint = {
          instance,
          origin: originOf(instance),
          key: `${entry.name}/${instance.id}`,
          firstSeen: now,
          initial: first,
          registeredAt: parsePositive(registeredAt),
          warmupMs: warmupOf(instance),
          inFlight: 0,
        };
      }
      known.set(identity, endpoint);
      const ejected = entry.ejected.get(identity);
      if (ejected !== undefined) {
        if (ejected.registeredAt === (registeredAt ?? '')) continue; // the registration that went offline
        entry.ejected.delete(identity); // a new registration: back in rotation
      }
      if (instance.enabled && instance.healthy && instance.weight > 0) usable.push(endpoint);
    }
    // registrations no longer listed are remembered for a while, in case they come back
    for (const [identity, endpoint] of entry.known) {
      if (known.has(identity)) continue;
      entry.gone.set(identity, { endpoint, at: now });
      // deregistered first thing in its drain: it may serve a while longer
      if (!entry.offline.has(identity)) entry.offline.set(identity, { endpoint, at: now });
      this.#o.onLeave?.(endpoint.origin);
    }
    for (const identity of known.keys()) entry.gone.delete(identity);
    for (const [identity, gone] of entry.gone) if (now - gone.at > EJECTION_MEMORY_MS) entry.gone.delete(identity);
    entry.known = known;
    entry.endpoints = usable;
    // back in rotation: no longer a last resort
    for (const e of usable) entry.offline.delete(identityOf(e.instance));
    this.#updateLastResort(entry, now);
    entry.lastError = undefined;
    if (first) {
      entry.loaded = true;
      entry.markReady();
    }
    this.#o.onChange?.(entry.name);
  }

  /** Rebuilds `lastResort` from the instances that went offline within LAST_RESORT_MS. */
  #updateLastResort(entry: Entry, now: number): void {
    for (const [identity, off] of entry.offline) if (now - off.at > LAST_RESORT_MS) entry.offline.delete(identity);
    entry.lastResort = [...entry.offline.values()].map((off) => off.endpoint);
  }

  #onError(entry: Entry, error: Error): void {
    // keep the last good list; callers go on with it
    const outage = entry.lastError === undefined;
    entry.lastError = error;
    // an empty list waiting for confirmation is asked again (a refresh at most every
    // refreshIntervalMs): the registry will not send the same empty list twice
    if (entry.confirming) this.refresh(entry.name, 'empty-list');
    if (!entry.loaded) {
      // no list yet: let requests fail fast (no instance) instead of waiting for a registry that is down
      entry.loaded = true;
      entry.markReady();
    }
    // a warning for the first failure since the last good list, the others at debug (a registry that
    // is down is read again and again: for an empty list to confirm, for every marker)
    (outage ? this.#o.logger.warn : this.#o.logger.debug).call(
      this.#o.logger,
      { service: entry.name, err: error },
      'registry read failed; keeping the last good list',
    );
    if (registryErrorChannel.hasSubscribers) registryErrorChannel.publish({ service: entry.name, error });
  }
}

/**
 * What tells registrations apart: the address and the id. Ids alone can repeat across addresses (a
 * fixed `instance.id` in a shared config), and then one marker would take out every one of them.
 */
function identityOf(instance: Instance): string {
  return `${originOf(instance)}/${instance.id}`;
}

/** Where to call an instance: https when it says it is secure (the metadata Spring Cloud reads too). */
function originOf(instance: Instance): string {
  const host = instance.ip.includes(':') ? `[${instance.ip}]` : instance.ip;
  const scheme = instance.metadata[METADATA_KEYS.secure] === 'true' ? 'https' : 'http';
  return `${scheme}://${host}:${instance.port}`;
}

/**
 * The warm-up window to apply, in ms: none (0) when the provider raises its registered weight itself
 * (the registry weight already carries the ramp), else what its metadata asks, else the client's default.
 */
function warmupOf(instance: Instance): number | undefined {
  if (instance.metadata[METADATA_KEYS.weightRamp] === 'provider') return 0;
  // 0 is the provider asking for no warm-up
  const raw = instance.metadata[METADATA_KEYS.warmupMs];
  if (raw === undefined || raw.trim() === '') return undefined;
  const ms = Number(raw);
  return Number.isFinite(ms) && ms >= 0 ? ms : undefined;
}

/** `scheme://host:port`, with the default port written out and the host as URLs spell it. */
function canonicalOrigin(origin: string): string {
  try {
    const url = new URL(origin);
    return `${url.protocol}//${url.hostname}:${url.port || (url.protocol === 'https:' ? '443' : '80')}`;
  } catch {
    return origin;
  }
}

/** The state of a service asked for after the table closed: no instance, nothing subscribed. */
function closedState(name: string): ServiceState {
  return {
    name,
    endpoints: [],
    lastResort: [],
    rotation: undefined,
    ready: Promise.resolve(),
    loaded: true,
    lastError: undefined,
  };
}

function parsePositive(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  return Number.isFinite(n) && n > 0 ? n : undefined;
}
