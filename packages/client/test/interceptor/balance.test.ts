// The balance interceptor by itself, over a dispatch that records what it was given: which origins
// it leaves alone, the requests it counts in flight per instance, what it skips, the errors it
// answers with when nothing is left, the marker, and the events it publishes.

import diagnosticsChannel from 'node:diagnostics_channel';
import type { Duplex } from 'node:stream';
import { silentLogger } from '@lossless/core';
import type { Dispatcher } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { Breakers } from '../../src/breaker/breakers.js';
import { CLIENT_CHANNELS, type MarkerEvent, type PickEvent } from '../../src/channels.js';
import { ServiceTable } from '../../src/discovery/table.js';
import {
  type AttemptContext,
  type BalanceDeps,
  balance,
  idleController,
  kAttempt,
  rotationOf,
} from '../../src/interceptor/balance.js';
import type { Controller } from '../../src/interceptor/pass-through.js';
import { instance, TestRegistry } from '../helpers.js';

const MARKER = 'x-lossless-offline';
const controller = idleController();

const tables: ServiceTable[] = [];
const subscribers: [string, (message: unknown) => void][] = [];
afterEach(() => {
  for (const t of tables.splice(0)) t.close();
  for (const [name, fn] of subscribers.splice(0)) diagnosticsChannel.unsubscribe(name, fn);
});

function listen<T>(name: string): T[] {
  const events: T[] = [];
  const fn = (message: unknown) => events.push(message as T);
  diagnosticsChannel.subscribe(name, fn);
  subscribers.push([name, fn]);
  return events;
}

async function setup(o: { instances?: number; breakers?: Breakers; now?: () => number } = {}) {
  const registry = new TestRegistry(
    Array.from({ length: o.instances ?? 3 }, (_, i) => instance('svc', `i${i}`, { ip: `10.0.0.${i + 1}` })),
  );
  const now = o.now ?? (() => performance.now());
  const table = new ServiceTable({ registry, logger: silentLogger, now, refreshIntervalMs: 0 });
  tables.push(table);
  await table.get('svc').ready;
  const deps: BalanceDeps = {
    table,
    breakers: o.breakers,
    markerHeader: MARKER,
    curve: { floor: 0.1, aggression: 1 },
    defaultWarmupMs: 60_000,
    serviceOf: (origin) => (origin === 'http://svc' ? 'svc' : undefined),
    now,
    wallNow: Date.now,
    random: Math.random,
  };
  const given: { opts: Dispatcher.DispatchOptions; handler: Dispatcher.DispatchHandler }[] = [];
  const dispatch = balance(deps)((opts, handler) => {
    given.push({ opts, handler });
    return true;
  });
  return { registry, table, deps, dispatch, given };
}

/** The retry interceptor's context for a request that tried `tried`. */
function context(tried: string[]): AttemptContext {
  return {
    service: 'svc',
    named: true,
    tried,
    picked(id) {
      this.tried = [...this.tried, id];
    },
  } as AttemptContext & { tried: string[] };
}

/** A caller that records the callbacks it gets; `ctx`: the retry interceptor's context, when given. */
function caller(ctx?: AttemptContext) {
  const seen: unknown[] = [];
  const handler = {
    ...(ctx === undefined ? {} : { [kAttempt]: ctx }),
    onResponseStart: (_c: Controller, status: number) => seen.push(status),
    onResponseEnd: () => seen.push('end'),
    onResponseError: (_c: Controller, error: Error) => seen.push(error),
    onRequestUpgrade: () => seen.push('upgrade'),
  } as unknown as Dispatcher.DispatchHandler;
  return { handler, seen };
}

const GET = { origin: 'http://svc', path: '/', method: 'GET' } as Dispatcher.DispatchOptions;

/** Breakers whose circuit opens at an origin's first refused connection. */
function openOnFirstRefusal(): Breakers {
  return new Breakers({
    errorThresholdPercentage: 50,
    volumeThreshold: 10,
    resetTimeoutMs: 60_000,
    rollingWindowMs: 10_000,
    connectionFailures: 1,
  });
}

/** A request to `origin` whose connection was refused: its circuit opens. */
function refuse(breakers: Breakers, origin: string): void {
  breakers.admit(origin);
  breakers.failure(origin, Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }));
}

describe('the balance interceptor', () => {
  it('leaves an origin that is not a service alone: the same options and handler', async () => {
    const { dispatch, given } = await setup();
    const opts = { origin: 'http://10.9.9.9:80', path: '/', method: 'GET' } as Dispatcher.DispatchOptions;
    const { handler } = caller();
    expect(dispatch(opts, handler)).toBe(true);
    expect(given).toHaveLength(1);
    expect(given[0]?.opts).toBe(opts);
    expect(given[0]?.handler).toBe(handler);
  });

  it('sends a request for a service to one of its instances, the rest of the request unchanged', async () => {
    const { dispatch, given } = await setup();
    expect(dispatch({ ...GET, headers: { a: '1' } }, caller().handler)).toBe(true);
    expect(given[0]?.opts).toMatchObject({ path: '/', method: 'GET', headers: { a: '1' } });
    expect(['http://10.0.0.1:8080', 'http://10.0.0.2:8080', 'http://10.0.0.3:8080']).toContain(given[0]?.opts.origin);
  });

  it('holds a request for a service it has not seen until its first list, and says it took the request', async () => {
    const { deps, registry } = await setup();
    registry.deliverOnSubscribe = false;
    const given: Dispatcher.DispatchOptions[] = [];
    const dispatch = balance({ ...deps, serviceOf: (origin) => origin.slice('http://'.length) })((opts) => {
      given.push(opts);
      return true;
    });
    expect(dispatch({ ...GET, origin: 'http://other' }, caller().handler)).toBe(true);
    await new Promise((resolve) => setImmediate(resolve));
    expect(given).toHaveLength(0);
    registry.push([instance('other', 'o1', { ip: '10.0.1.1' })], 'other');
    await new Promise((resolve) => setImmediate(resolve));
    expect(given.map((o) => o.origin)).toEqual(['http://10.0.1.1:8080']);
  });

  it('counts a request in flight on its instance until it ends, fails or upgrades, once', async () => {
    const { dispatch, given, table } = await setup({ instances: 1 });
    const endpoint = () => table.get('svc').endpoints[0];
    for (const finish of ['end', 'error', 'upgrade'] as const) {
      dispatch(GET, caller().handler);
      const h = given.at(-1)?.handler as Dispatcher.DispatchHandler;
      expect(endpoint()?.inFlight, finish).toBe(1);
      h.onResponseStart?.(controller, 200, {}, 'OK');
      expect(endpoint()?.inFlight).toBe(1);
      if (finish === 'end') h.onResponseEnd?.(controller, {});
      if (finish === 'error') h.onResponseError?.(controller, new Error('x'));
      if (finish === 'upgrade') h.onRequestUpgrade?.(controller, 101, {}, {} as Duplex);
      expect(endpoint()?.inFlight, finish).toBe(0);
      // a late second callback does not count it out twice
      h.onResponseError?.(controller, new Error('late'));
      h.onResponseEnd?.(controller, {});
      expect(endpoint()?.inFlight, finish).toBe(0);
    }
  });

  it('passes every outcome on to the caller, and nothing after the last one', async () => {
    const { dispatch, given } = await setup({ instances: 1 });
    const error = new Error('reset');
    const outcomes: [string, (h: Dispatcher.DispatchHandler) => void, unknown[]][] = [
      ['end', (h) => h.onResponseEnd?.(controller, {}), [204, 'end']],
      ['error', (h) => h.onResponseError?.(controller, error), [204, error]],
      ['upgrade', (h) => h.onRequestUpgrade?.(controller, 101, {}, {} as Duplex), [204, 'upgrade']],
    ];
    for (const [name, finish, seen] of outcomes) {
      const c = caller();
      dispatch(GET, c.handler);
      const h = given.at(-1)?.handler as Dispatcher.DispatchHandler;
      h.onResponseStart?.(controller, 204, {}, 'No Content');
      finish(h);
      // undici calls one of them once; one more reaches nothing (the handler let go of the caller's)
      h.onResponseEnd?.(controller, {});
      h.onResponseError?.(controller, new Error('late'));
      expect(c.seen, name).toEqual(seen);
    }
  });

  it('never sends an attempt to an instance its request already tried, and notes the one it picks', async () => {
    const { dispatch, given, table } = await setup();
    const [a, b] = table.get('svc').endpoints;
    const tried = [a?.instance.id ?? '', b?.instance.id ?? ''];
    for (let i = 0; i < 20; i++) dispatch(GET, caller(context([...tried])).handler);
    expect(new Set(given.map((g) => g.opts.origin))).toEqual(new Set(['http://10.0.0.3:8080']));
    const noted = context([]);
    dispatch(GET, caller(noted).handler);
    const picked = table.get('svc').endpoints.find((e) => e.origin === given.at(-1)?.opts.origin);
    expect(noted.tried).toEqual([picked?.instance.id]);
  });

  it('skips instances whose circuit is open', async () => {
    const breakers = openOnFirstRefusal();
    const { dispatch, given } = await setup({ breakers });
    refuse(breakers, 'http://10.0.0.1:8080');
    expect(breakers.isOpen('http://10.0.0.1:8080')).toBe(true);
    for (let i = 0; i < 30; i++) dispatch(GET, caller().handler);
    expect(given.map((g) => g.opts.origin)).not.toContain('http://10.0.0.1:8080');
    breakers.shutdown();
  });

  it('answers LOSSLESS_ERR_ALL_CIRCUITS_OPEN when every instance left is in an open circuit', async () => {
    const breakers = openOnFirstRefusal();
    const { dispatch, given, table } = await setup({ breakers, instances: 2 });
    const [a, b] = table.get('svc').endpoints;
    // a tried already, b in an open circuit: what is left is all open
    refuse(breakers, b?.origin ?? '');
    const c1 = caller(context([a?.instance.id ?? '']));
    expect(dispatch(GET, c1.handler)).toBe(true);
    expect(given).toHaveLength(0);
    expect(c1.seen[0]).toMatchObject({ code: 'LOSSLESS_ERR_ALL_CIRCUITS_OPEN' });
    // nothing tried, a closed circuit left: that one is picked
    dispatch(GET, caller().handler);
    expect(given.map((g) => g.opts.origin)).toEqual([a?.origin]);
    breakers.shutdown();
  });

  it('answers LOSSLESS_ERR_NO_INSTANCE naming what was tried once every instance was tried', async () => {
    const { dispatch, given, table } = await setup({ instances: 2 });
    const [a, b] = table.get('svc').endpoints;
    const tried = [a?.instance.id ?? '', b?.instance.id ?? ''];
    const c = caller(context(tried));
    dispatch(GET, c.handler);
    expect(given).toHaveLength(0);
    expect(c.seen[0]).toMatchObject({ code: 'LOSSLESS_ERR_NO_INSTANCE', tried });
  });

  it('answers LOSSLESS_ERR_NO_INSTANCE when every instance was tried, even one whose circuit opened since', async () => {
    const breakers = openOnFirstRefusal();
    const { dispatch, given, table } = await setup({ breakers, instances: 2 });
    const [a, b] = table.get('svc').endpoints;
    // b refused the connection of this request's last attempt: its circuit opened
    refuse(breakers, b?.origin ?? '');
    const tried = [a?.instance.id ?? '', b?.instance.id ?? ''];
    const c = caller(context(tried));
    dispatch(GET, c.handler);
    expect(given).toHaveLength(0);
    expect(c.seen[0]).toMatchObject({ code: 'LOSSLESS_ERR_NO_INSTANCE', tried });
    breakers.shutdown();
  });

  it('answers LOSSLESS_ERR_NO_INSTANCE, having tried nothing, for a service with no instance', async () => {
    const { dispatch, given } = await setup({ instances: 0 });
    const c = caller();
    dispatch(GET, c.handler);
    expect(given).toHaveLength(0);
    expect(c.seen[0]).toMatchObject({ code: 'LOSSLESS_ERR_NO_INSTANCE', tried: [] });
  });

  it('takes an instance whose answer carries the marker out of rotation, and says so', async () => {
    const markers = listen<MarkerEvent>(CLIENT_CHANNELS.marker);
    const { dispatch, given, table } = await setup({ instances: 2 });
    dispatch(GET, caller().handler);
    const picked = given[0]?.opts.origin;
    const first = given[0]?.handler as Dispatcher.DispatchHandler;
    first.onResponseStart?.(controller, 503, { [MARKER]: 'draining' }, '');
    expect(table.get('svc').endpoints.map((e) => e.origin)).not.toContain(picked);
    expect(markers).toEqual([expect.objectContaining({ service: 'svc', origin: picked, status: 503 })]);
    // an answer without the marker changes nothing
    dispatch(GET, caller().handler);
    const second = given[1]?.handler as Dispatcher.DispatchHandler;
    second.onResponseStart?.(controller, 200, {}, 'OK');
    expect(table.get('svc').endpoints).toHaveLength(1);
  });

  it('publishes each pick: the instance, its weight and warm-up factor, requests in flight, the attempt', async () => {
    const picks = listen<PickEvent>(CLIENT_CHANNELS.pick);
    const { dispatch, given } = await setup({ instances: 1 });
    dispatch(GET, caller().handler);
    dispatch(GET, caller(context(['x', 'y'])).handler);
    expect(given).toHaveLength(2);
    expect(picks).toEqual([
      {
        service: 'svc',
        instance: 'i0',
        origin: 'http://10.0.0.1:8080',
        weight: 100,
        warmupFactor: 1,
        inFlight: 0,
        attempt: 1,
      },
      // the retry's context: its third attempt (two tried before this pick was noted)
      {
        service: 'svc',
        instance: 'i0',
        origin: 'http://10.0.0.1:8080',
        weight: 100,
        warmupFactor: 1,
        inFlight: 1,
        attempt: 3,
      },
    ]);
  });

  it('keeps the rotation while nothing changed, builds it again once the warm-up moved on', async () => {
    let t = 1000;
    const { deps, table, registry } = await setup({ now: () => t });
    const state = table.get('svc');
    const first = rotationOf(deps, state);
    expect(rotationOf(deps, state)).toBe(first);
    // a new instance arrives: a new list, and it warms up, so the rotation has an end
    registry.push([...registry.listed, instance('svc', 'new', { ip: '10.0.0.9' })]);
    const second = rotationOf(deps, table.get('svc'));
    expect(second).not.toBe(first);
    expect(Number.isFinite(second.validUntil)).toBe(true);
    t = second.validUntil - 1;
    expect(rotationOf(deps, table.get('svc'))).toBe(second);
    t = second.validUntil;
    expect(rotationOf(deps, table.get('svc'))).not.toBe(second);
  });

  it('hands errors raised before dispatch an idle controller: nothing aborted or paused', () => {
    const c = idleController();
    expect(c).toMatchObject({ aborted: false, paused: false, reason: null });
    expect(() => {
      c.abort(new Error('x'));
      c.pause();
      c.resume();
    }).not.toThrow();
  });
});
