// The `lossless` load-balancing policy for grpc-js (experimental.registerLoadBalancerType), fed by the
// `lossless:` resolver. One connection per instance (grpc-js' LeafLoadBalancer, pick-first over one
// address); calls go to the ready ones by weighted power-of-two-choices: each instance's registry
// weight times its warm-up factor (@lossless/client's warm-up code: a new instance ramps from 10 %
// over the window its provider advertises; no ramp when every instance is new), the one with fewer
// calls in flight per unit of weight winning. It leaves an instance out:
//   - when a call's trailing metadata carries the offline marker: ejected (the discovery's table
//     keeps it out until it registers again) and the registry read again;
//   - when its connection ends while ready (grpc-js turns a GOAWAY, and a dropped connection, into
//     READY -> IDLE and says no more): at once, and the registry is read again. It connects again only
//     if the registry still lists it (a connection lost, a maximum connection age), or after
//     RECONNECT_FALLBACK_MS if no list comes; a lossless provider sends GOAWAY only once it left the
//     registry, so it is gone by then. A policy that reconnected at once (round_robin) would keep
//     calling a draining instance until its listener closes.
// A pick that finds no ready instance waits (QUEUE) while one is connecting, and fails with
// UNAVAILABLE only when none can be reached; that status carries UNSENT_KEY, so that the retry
// interceptor (retry.ts) knows no byte of the call left.

import {
  type ChannelOptions,
  connectivityState as ConnectivityState,
  experimental,
  Metadata,
  status,
} from '@grpc/grpc-js';
import type { Endpoint } from '@lossless/client';
import { effectiveWeights, pickWeightedP2C } from '@lossless/client/internal';
import { addressOf, type Discovery } from './discovery.js';
import { DISCOVERY_OPTION, POLICY, SERVICE_ATTRIBUTE } from './resolver.js';

type State = ConnectivityState;

/** Trailing metadata key of an UNAVAILABLE status that no byte of the call caused. */
export const UNSENT_KEY = 'lossless-unsent';
/** An instance whose connection ended reconnects after this when no registry list came meanwhile, in ms. */
export const RECONNECT_FALLBACK_MS = 1000;
/** While an instance warms up, weights are computed again at most this often, in ms. */
const WEIGHT_STEP_MS = 100;

export class LosslessBalancerConfig implements experimental.TypedLoadBalancingConfig {
  getLoadBalancerName(): string {
    return POLICY;
  }
  toJsonObject(): object {
    return { [POLICY]: {} };
  }
  static createFromJson(_json: unknown): LosslessBalancerConfig {
    return new LosslessBalancerConfig();
  }
}

interface Child {
  readonly address: string;
  readonly leaf: experimental.LeafLoadBalancer;
  /** The table's view of the instance (warm-up facts, calls in flight). */
  endpoint: Endpoint;
  state: State;
  picker: experimental.Picker;
  /** Its connection ended: not connected again until the registry is read. */
  parked: boolean;
  fallback: NodeJS.Timeout | undefined;
  /** Ejected after a marker: out of every pick from now on. */
  ejected: boolean;
}

export class LosslessBalancer implements experimental.LoadBalancer {
  readonly #helper: experimental.ChannelControlHelper;
  readonly #children = new Map<string, Child>();
  #discovery: Discovery | undefined;
  #service = '';
  #options: ChannelOptions = {};
  #note = '';
  #error: string | null = null;
  #paused = false;

  constructor(helper: experimental.ChannelControlHelper) {
    this.#helper = helper;
  }

  getTypeName(): string {
    return POLICY;
  }

  updateAddressList(
    endpointList: experimental.StatusOr<experimental.Endpoint[]>,
    _config: experimental.TypedLoadBalancingConfig,
    options: ChannelOptions,
    note: string,
  ): boolean {
    this.#options = options;
    this.#note = note;
    this.#discovery = options[DISCOVERY_OPTION] as Discovery | undefined;
    this.#service = String(options[SERVICE_ATTRIBUTE] ?? this.#service);
    if (!endpointList.ok) {
      if (this.#children.size === 0)
        this.#helper.updateState(
          ConnectivityState.TRANSIENT_FAILURE,
          unavailable(endpointList.error.details),
          endpointList.error.details,
        );
      return true;
    }
    const byAddress = this.#tableEndpoints();
    const listed = new Set<string>();
    this.#paused = true;
    for (const e of endpointList.value) {
      const a = e.addresses[0];
      if (a === undefined || !('port' in a)) continue;
      const address = addressOf(a.host, a.port);
      const endpoint = byAddress.get(address);
      if (endpoint === undefined) continue;
      listed.add(address);
      const child = this.#children.get(address);
      if (child !== undefined) {
        child.endpoint = endpoint;
        // listed after an ejection: a new registration at the same address, or the last resort of a
        // service whose instances are all going away (the table leaves the ejected one out otherwise)
        child.ejected = false;
        // still listed after its connection ended: a connection lost, not an instance gone
        if (child.parked) this.#unpark(child);
        continue;
      }
      this.#add(address, e, endpoint);
    }
    for (const [address, child] of this.#children) if (!listed.has(address)) this.#remove(child);
    this.#paused = false;
    this.#update();
    return true;
  }

  exitIdle(): void {
    for (const child of this.#children.values())
      if (child.state === ConnectivityState.IDLE && !child.parked) child.leaf.exitIdle();
  }

  resetBackoff(): void {}

  destroy(): void {
    for (const child of [...this.#children.values()]) this.#remove(child);
  }

  /** The table's endpoints of the service by address (usable ones, else the last resort). */
  #tableEndpoints(): Map<string, Endpoint> {
    const map = new Map<string, Endpoint>();
    const discovery = this.#discovery;
    if (discovery === undefined) return map;
    for (const e of discovery.endpoints(discovery.service(this.#service)))
      map.set(addressOf(e.instance.ip, e.instance.port), e);
    return map;
  }

  #add(address: string, grpcEndpoint: experimental.Endpoint, endpoint: Endpoint): void {
    const child: Child = {
      address,
      endpoint,
      leaf: undefined as never,
      state: ConnectivityState.IDLE,
      picker: new experimental.QueuePicker(this),
      parked: false,
      fallback: undefined,
      ejected: false,
    };
    const helper = experimental.createChildChannelControlHelper(this.#helper, {
      updateState: (state, picker, error) => this.#childState(child, state, picker, error),
    });
    (child as { leaf: experimental.LeafLoadBalancer }).leaf = new experimental.LeafLoadBalancer(
      grpcEndpoint,
      helper,
      this.#options,
      this.#note,
    );
    this.#children.set(address, child);
    child.leaf.startConnecting();
  }

  #remove(child: Child): void {
    clearTimeout(child.fallback);
    this.#children.delete(child.address);
    child.leaf.destroy();
  }

  #childState(child: Child, state: State, picker: experimental.Picker, error: string | null): void {
    if (!this.#children.has(child.address)) return;
    const previous = child.state;
    child.state = state;
    child.picker = picker;
    if (error !== null) this.#error = error;
    if (previous === ConnectivityState.READY && state === ConnectivityState.IDLE) this.#park(child);
    this.#update();
  }

  /** Its connection ended while ready (GOAWAY, or lost): out of the picks until the registry is read. */
  #park(child: Child): void {
    child.parked = true;
    clearTimeout(child.fallback);
    child.fallback = setTimeout(() => this.#unpark(child), RECONNECT_FALLBACK_MS);
    child.fallback.unref();
    this.#helper.requestReresolution();
  }

  #unpark(child: Child): void {
    clearTimeout(child.fallback);
    child.fallback = undefined;
    if (!child.parked || !this.#children.has(child.address)) return;
    child.parked = false;
    if (child.state === ConnectivityState.IDLE) child.leaf.exitIdle();
  }

  /** A call's trailers carried the marker: out of the picks now, out of the table until it registers again. */
  #eject(child: Child): void {
    const discovery = this.#discovery;
    // an instance called as a last resort (every instance is going away) stays: it is all there is
    if (child.ejected || discovery === undefined) return;
    if (!discovery.service(this.#service).endpoints.includes(child.endpoint)) return;
    child.ejected = true;
    const { key, origin } = child.endpoint;
    discovery.table.eject(this.#service, key, origin, 'marker');
    this.#update();
  }

  #update(): void {
    if (this.#paused) return;
    const ready: Child[] = [];
    let connecting = false;
    for (const child of this.#children.values()) {
      if (child.ejected) continue;
      if (child.state === ConnectivityState.READY) ready.push(child);
      else if (child.state === ConnectivityState.CONNECTING) connecting = true;
      else if (child.state === ConnectivityState.IDLE && !child.parked) connecting = true;
    }
    if (ready.length > 0) {
      this.#helper.updateState(ConnectivityState.READY, new WeightedPicker(ready, this), null);
      return;
    }
    if (connecting || this.#children.size === 0) {
      // nothing ready yet: calls wait; parked instances are tried again rather than nothing
      for (const child of this.#children.values()) if (child.parked) this.#unpark(child);
      if (this.#children.size > 0) {
        this.#helper.updateState(ConnectivityState.CONNECTING, new experimental.QueuePicker(this), null);
        return;
      }
    }
    const details =
      this.#children.size === 0
        ? `no instance of ${this.#service} to call${this.#note === '' ? '' : ` (${this.#note})`}`
        : `no instance of ${this.#service} could be reached: ${this.#error ?? 'connection failed'}`;
    this.#helper.updateState(ConnectivityState.TRANSIENT_FAILURE, unavailable(details), details);
  }

  /** For the picker: the discovery's clock, curve and defaults. */
  get discovery(): Discovery | undefined {
    return this.#discovery;
  }

  /** For the picker: a call on `child` ended with these trailers. */
  ended(child: Child, trailers: Metadata): void {
    const marker = this.#discovery?.options.markerHeader;
    if (marker !== undefined && trailers.get(marker).length > 0) this.#eject(child);
  }
}

class WeightedPicker implements experimental.Picker {
  readonly #children: Child[];
  readonly #balancer: LosslessBalancer;
  readonly #candidates: { weight: number; readonly child: Child; readonly inFlight: number }[];
  #validUntil = Number.NEGATIVE_INFINITY;

  constructor(children: Child[], balancer: LosslessBalancer) {
    this.#children = children;
    this.#balancer = balancer;
    this.#candidates = children.map((child) => ({
      weight: 1,
      child,
      get inFlight() {
        return child.endpoint.inFlight;
      },
    }));
  }

  pick(args: experimental.PickArgs): experimental.PickResult {
    const discovery = this.#balancer.discovery;
    let i = 0;
    if (this.#children.length > 1) {
      const now = discovery?.options.clock.now() ?? 0;
      if (discovery !== undefined && now >= this.#validUntil) this.#weigh(discovery, now);
      i = Math.max(0, pickWeightedP2C(this.#candidates, discovery?.options.clock.random));
    }
    const child = this.#children[i] as Child;
    const result = child.picker.pick(args);
    if (result.pickResultType !== experimental.PickResultType.COMPLETE) return result;
    const balancer = this.#balancer;
    // the registration the call went to (a new one may replace it in the table meanwhile)
    const endpoint = child.endpoint;
    return {
      ...result,
      onCallStarted: () => {
        endpoint.inFlight++;
        result.onCallStarted?.();
      },
      onCallEnded: (code, details, trailers) => {
        endpoint.inFlight--;
        balancer.ended(child, trailers);
        result.onCallEnded?.(code, details, trailers);
      },
    };
  }

  #weigh(discovery: Discovery, now: number): void {
    const { options } = discovery;
    const endpoints = this.#children.map((c) => c.endpoint);
    const weights = effectiveWeights(endpoints, now, options.clock.wallNow(), options.warmup.windowMs, {
      floor: options.warmup.floor,
      aggression: options.warmup.aggression,
    });
    let warming = false;
    weights.forEach((w, i) => {
      const c = this.#candidates[i] as { weight: number; child: Child };
      if (w < c.child.endpoint.instance.weight) warming = true;
      c.weight = w;
    });
    this.#validUntil = warming ? now + WEIGHT_STEP_MS : Number.POSITIVE_INFINITY;
  }
}

function unavailable(details: string): experimental.Picker {
  const metadata = new Metadata();
  metadata.set(UNSENT_KEY, '1');
  return new experimental.UnavailablePicker({ code: status.UNAVAILABLE, details, metadata });
}
