// balance: turns `http://<service>/...` into an instance of the service (discovery + warm-up weighted
// power-of-two-choices, rotation.ts), counts requests in flight per instance, and ejects an instance
// the moment a response carries the offline marker.

import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import { Rotation } from '../balancing/rotation.js';
import type { WarmupCurve } from '../balancing/warmup.js';
import type { Breakers } from '../breaker/breakers.js';
import { markerChannel, pickChannel } from '../channels.js';
import type { Endpoint, ServiceState, ServiceTable } from '../discovery/table.js';
import { AllCircuitsOpenError, NoInstanceError } from '../errors.js';
import { type Controller, type DispatchFn, type Headers, type Interceptor, PassThrough } from './pass-through.js';

/**
 * Carried on the handler `retry` dispatches to `balance` (not in the dispatch options, which would
 * cost a copy of them per request): which instances this request tried.
 */
export const kAttempt = Symbol('lossless.attempt');

export interface AttemptContext {
  /** The service named by the request's origin, or the origin itself when it names none. */
  readonly service: string;
  /** Whether the origin names a service (else balance leaves the request alone). */
  readonly named: boolean;
  /**
   * Instance ids tried, in order (for errors and events), never picked again for this request (a
   * few at most: a list beats a set). Ids are unique within a service, as endpoint keys are. A list
   * handed out never changes.
   */
  readonly tried: readonly string[];
  /** Notes the instance a pick chose (most requests make one attempt: no list is made for it). */
  picked(id: string): void;
}

type AttemptHandler = Dispatcher.DispatchHandler & { readonly [kAttempt]?: AttemptContext };

export interface BalanceDeps {
  readonly table: ServiceTable;
  readonly breakers: Breakers | undefined;
  readonly markerHeader: string;
  readonly curve: WarmupCurve;
  readonly defaultWarmupMs: number;
  readonly serviceOf: (origin: string) => string | undefined;
  readonly now: () => number;
  readonly wallNow: () => number;
  readonly random: () => number;
}

export function balance(deps: BalanceDeps): Interceptor {
  return (dispatch) => (opts, handler: AttemptHandler) => {
    // retry looked the origin up already (a map lookup that hashes a new string each request)
    const ctx = handler[kAttempt];
    const service = ctx === undefined ? deps.serviceOf(String(opts.origin)) : ctx.named ? ctx.service : undefined;
    if (service === undefined) return dispatch(opts, handler);
    const state = deps.table.get(service);
    if (state.loaded) return route(deps, dispatch, state, opts, handler);
    routeWhenLoaded(deps, dispatch, state, opts, handler);
    return true;
  };
}

// Closures live in functions of their own here and below: a function whose parameters or locals a
// closure captures allocates their context on every call, whichever branch it takes (about 50-80
// bytes a request on the path that makes no closure).

function routeWhenLoaded(
  deps: BalanceDeps,
  dispatch: DispatchFn,
  state: ServiceState,
  opts: Dispatcher.DispatchOptions,
  handler: AttemptHandler,
): void {
  state.ready.then(() => route(deps, dispatch, state, opts, handler));
}

/**
 * The rotation of a service now: the one built last, unless its list changed or a warm-up step
 * passed. With no usable instance left, the instances still draining (the table's last resort).
 */
export function rotationOf(deps: BalanceDeps, state: ServiceState): Rotation {
  const endpoints = state.endpoints.length > 0 ? state.endpoints : deps.table.lastResort(state);
  let rotation = state.rotation;
  // no instance warming up: the rotation holds until the list changes, and needs no clock read
  if (rotation !== undefined && rotation.endpoints === endpoints && rotation.validUntil === Number.POSITIVE_INFINITY)
    return rotation;
  const now = deps.now();
  if (rotation === undefined || rotation.endpoints !== endpoints || now >= rotation.validUntil) {
    rotation = new Rotation(endpoints, now, deps.wallNow(), deps.defaultWarmupMs, deps.curve);
    state.rotation = rotation;
  }
  return rotation;
}

function route(
  deps: BalanceDeps,
  dispatch: DispatchFn,
  state: ServiceState,
  opts: Dispatcher.DispatchOptions,
  handler: AttemptHandler,
): boolean {
  const rotation = rotationOf(deps, state);
  const ctx = handler[kAttempt];
  const breakers = deps.breakers;
  const index = rotation.pick(deps.random, skipOf(ctx, breakers));
  if (index < 0) {
    handler.onResponseError?.(idleController(), noInstance(state, rotation, ctx, breakers));
    return true;
  }
  const endpoint = rotation.endpoints[index] as Endpoint;
  ctx?.picked(endpoint.instance.id);
  if (pickChannel.hasSubscribers) {
    const weight = rotation.weights[index] as number;
    pickChannel.publish({
      service: state.name,
      instance: endpoint.instance.id,
      origin: endpoint.origin,
      weight,
      warmupFactor: endpoint.instance.weight > 0 ? weight / endpoint.instance.weight : 1,
      inFlight: endpoint.inFlight,
      attempt: ctx?.tried.length ?? 1,
    });
  }
  endpoint.inFlight++;
  return dispatch({ ...opts, origin: endpoint.origin }, new BalanceHandler(handler, deps, state.name, endpoint));
}

/**
 * What a pick must pass over: the instances this request tried, and those in an open circuit; none
 * on a first attempt while every circuit is closed (and then no closure, nor its context, is made).
 */
function skipOf(
  ctx: AttemptContext | undefined,
  breakers: Breakers | undefined,
): ((e: Endpoint) => boolean) | undefined {
  if (ctx !== undefined && ctx.tried.length > 0) return skipTried(ctx.tried, breakers);
  return breakers?.anyOpen() === true ? skipOpen(breakers) : undefined;
}

function skipTried(tried: readonly string[], breakers: Breakers | undefined): (e: Endpoint) => boolean {
  return breakers !== undefined
    ? (e) => tried.includes(e.instance.id) || breakers.isOpen(e.origin)
    : (e) => tried.includes(e.instance.id);
}

function skipOpen(breakers: Breakers): (e: Endpoint) => boolean {
  return (e) => breakers.isOpen(e.origin);
}

function noInstance(
  state: ServiceState,
  rotation: Rotation,
  ctx: AttemptContext | undefined,
  breakers: Breakers | undefined,
): Error {
  const open = rotation.endpoints.filter((e) => breakers?.isOpen(e.origin) === true);
  const untried = rotation.endpoints.filter((e) => !ctx?.tried.includes(e.instance.id));
  // open circuits are the reason only when they are what is left: once every instance was tried,
  // the request has seen them all fail or go (NoInstanceError says which it tried)
  if (untried.length > 0 && untried.every((e) => open.includes(e)))
    return new AllCircuitsOpenError(
      state.name,
      open.map((e) => e.instance.id),
    );
  return new NoInstanceError(state.name, ctx?.tried ?? []);
}

class BalanceHandler extends PassThrough {
  readonly #deps: BalanceDeps;
  readonly #service: string;
  readonly #endpoint: Endpoint;

  constructor(next: Dispatcher.DispatchHandler, deps: BalanceDeps, service: string, endpoint: Endpoint) {
    super(next);
    this.#deps = deps;
    this.#service = service;
    this.#endpoint = endpoint;
  }

  override onResponseStart(controller: Controller, statusCode: number, headers: Headers, statusMessage?: string): void {
    if (headers[this.#deps.markerHeader] !== undefined) {
      const e = this.#endpoint;
      if (markerChannel.hasSubscribers)
        markerChannel.publish({
          service: this.#service,
          instance: e.instance.id,
          origin: e.origin,
          status: statusCode,
        });
      this.#deps.table.eject(this.#service, e.key, e.origin);
    }
    this.next.onResponseStart?.(controller, statusCode, headers, statusMessage);
  }

  override onResponseEnd(controller: Controller, trailers: Headers): void {
    this.#release();
    this.last().onResponseEnd?.(controller, trailers);
  }

  override onResponseError(controller: Controller, error: Error): void {
    this.#release();
    this.last().onResponseError?.(controller, error);
  }

  override onRequestUpgrade(controller: Controller, statusCode: number, headers: Headers, socket: Duplex): void {
    this.#release();
    this.last().onRequestUpgrade?.(controller, statusCode, headers, socket);
  }

  /** The request left its instance (called before its last callback is passed on, once). */
  #release(): void {
    if (!this.ended) this.#endpoint.inFlight--;
  }
}

/** The controller handed with an error raised before anything was dispatched: nothing to abort. */
export function idleController(): Controller {
  return {
    aborted: false,
    paused: false,
    reason: null,
    abort() {},
    pause() {},
    resume() {},
  };
}
