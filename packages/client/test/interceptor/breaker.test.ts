// The breaker interceptor by itself, over a dispatch that records what it was given: what it reports
// to the breakers for each outcome, and that every callback reaches the caller unchanged (the
// pass-through base).

import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import { describe, expect, it } from 'vitest';
import type { Breakers } from '../../src/breaker/breakers.js';
import { RequestTimeoutError } from '../../src/errors.js';
import { breaker } from '../../src/interceptor/breaker.js';
import type { Controller } from '../../src/interceptor/pass-through.js';

const ORIGIN = 'http://127.0.0.1:8001';
const MARKER = 'x-lossless-offline';

/** Breakers that record what they are told; `open` says whether admit() refuses. */
function recordingBreakers(open = false) {
  const told: string[] = [];
  const breakers = {
    admit: (origin: string) => {
      told.push(`admit ${origin}`);
      return !open;
    },
    answered: (origin: string) => told.push(`answered ${origin}`),
    success: (origin: string) => told.push(`success ${origin}`),
    failure: (origin: string, error: Error) => told.push(`failure ${origin} ${error.message}`),
    abandoned: (origin: string) => told.push(`abandoned ${origin}`),
  } as unknown as Breakers;
  return { breakers, told };
}

/** A caller's handler that records every callback with its arguments. */
function recordingHandler() {
  const calls: unknown[][] = [];
  const record =
    (name: string) =>
    (...args: unknown[]) => {
      calls.push([name, ...args]);
    };
  const handler: Dispatcher.DispatchHandler = {
    onRequestStart: record('onRequestStart'),
    onRequestUpgrade: record('onRequestUpgrade'),
    onResponseStarted: record('onResponseStarted'),
    onResponseStart: record('onResponseStart'),
    onResponseData: record('onResponseData'),
    onResponseEnd: record('onResponseEnd'),
    onResponseError: record('onResponseError'),
    onBodySent: record('onBodySent'),
    onRequestSent: record('onRequestSent'),
  } as Dispatcher.DispatchHandler;
  return { handler, calls };
}

const controller = { aborted: false, paused: false, reason: null, abort() {}, pause() {}, resume() {} } as Controller;

/** Dispatches one request through the interceptor; returns the handler the next dispatch got. */
function through(breakers: Breakers, caller: Dispatcher.DispatchHandler) {
  const given: { opts?: Dispatcher.DispatchOptions; handler?: Dispatcher.DispatchHandler } = {};
  const dispatch = breaker(
    breakers,
    MARKER,
  )((opts, handler) => {
    given.opts = opts;
    given.handler = handler;
    return true;
  });
  const returned = dispatch({ origin: ORIGIN, path: '/', method: 'GET' }, caller);
  return { returned, given };
}

describe('the breaker interceptor', () => {
  it('refuses at once on an open circuit: LOSSLESS_ERR_CIRCUIT_OPEN, nothing dispatched', () => {
    const { breakers, told } = recordingBreakers(true);
    const { handler, calls } = recordingHandler();
    const { returned, given } = through(breakers, handler);
    expect(returned).toBe(true);
    expect(given.handler).toBeUndefined();
    expect(told).toEqual([`admit ${ORIGIN}`]);
    expect(calls).toHaveLength(1);
    const [name, , error] = calls[0] as [string, unknown, Error & { code: string; origin: string }];
    expect(name).toBe('onResponseError');
    expect(error).toMatchObject({ code: 'LOSSLESS_ERR_CIRCUIT_OPEN', origin: ORIGIN });
  });

  it('reports an answered 2xx as a success once it ended', () => {
    const { breakers, told } = recordingBreakers();
    const { handler } = recordingHandler();
    const h = through(breakers, handler).given.handler as Dispatcher.DispatchHandler;
    h.onResponseStart?.(controller, 200, {}, 'OK');
    expect(told).toEqual([`admit ${ORIGIN}`, `answered ${ORIGIN}`]);
    h.onResponseEnd?.(controller, {});
    expect(told.at(-1)).toBe(`success ${ORIGIN}`);
  });

  it("does not count a request aborted from above (its caller gave up), but counts the client's overall timeout", () => {
    const aborted = { ...controller, aborted: true } as Controller;
    const { breakers, told } = recordingBreakers();
    const gaveUp = through(breakers, recordingHandler().handler).given.handler as Dispatcher.DispatchHandler;
    gaveUp.onResponseError?.(aborted, new Error('the caller gave up'));
    expect(told).toEqual([`admit ${ORIGIN}`, `abandoned ${ORIGIN}`]);
    const late = through(breakers, recordingHandler().handler).given.handler as Dispatcher.DispatchHandler;
    late.onResponseError?.(aborted, new RequestTimeoutError('svc', 1000, []));
    expect(told.slice(2)).toEqual([
      `admit ${ORIGIN}`,
      `failure ${ORIGIN} ${new RequestTimeoutError('svc', 1000, []).message}`,
    ]);
  });

  it("counts each outcome once: an error undici reports after the end (the caller's onResponseEnd threw) is no failure", () => {
    const { breakers, told } = recordingBreakers();
    const h = through(breakers, recordingHandler().handler).given.handler as Dispatcher.DispatchHandler;
    h.onResponseStart?.(controller, 200, {}, 'OK');
    h.onResponseEnd?.(controller, {});
    h.onResponseError?.(controller, new Error('thrown by the caller'));
    h.onRequestUpgrade?.(controller, 101, {}, {} as Duplex);
    expect(told).toEqual([`admit ${ORIGIN}`, `answered ${ORIGIN}`, `success ${ORIGIN}`]);
  });

  it.each([500, 502, 503, 504])('reports a %i as a failure', (status) => {
    const { breakers, told } = recordingBreakers();
    const h = through(breakers, recordingHandler().handler).given.handler as Dispatcher.DispatchHandler;
    h.onResponseStart?.(controller, status, {}, '');
    h.onResponseEnd?.(controller, {});
    expect(told).toEqual([`admit ${ORIGIN}`, `answered ${ORIGIN}`, `failure ${ORIGIN} HTTP ${status}`]);
  });

  it('does not count the marked 503 of an instance going offline, nor a 4xx, as failures', () => {
    for (const [status, headers] of [
      [503, { [MARKER]: 'draining' }],
      [404, {}],
      [499, {}],
    ] as const) {
      const { breakers, told } = recordingBreakers();
      const h = through(breakers, recordingHandler().handler).given.handler as Dispatcher.DispatchHandler;
      h.onResponseStart?.(controller, status, headers, '');
      h.onResponseEnd?.(controller, {});
      expect(told.at(-1), `${status}`).toBe(`success ${ORIGIN}`);
    }
    // a marker on a 500 does not excuse it
    const { breakers, told } = recordingBreakers();
    const h = through(breakers, recordingHandler().handler).given.handler as Dispatcher.DispatchHandler;
    h.onResponseStart?.(controller, 500, { [MARKER]: 'draining' }, '');
    h.onResponseEnd?.(controller, {});
    expect(told.at(-1)).toBe(`failure ${ORIGIN} HTTP 500`);
  });

  it('ignores informational answers (1xx): neither answered nor counted', () => {
    const { breakers, told } = recordingBreakers();
    const h = through(breakers, recordingHandler().handler).given.handler as Dispatcher.DispatchHandler;
    h.onResponseStart?.(controller, 100, {}, 'Continue');
    expect(told).toEqual([`admit ${ORIGIN}`]);
    h.onResponseStart?.(controller, 200, {}, 'OK');
    h.onResponseEnd?.(controller, {});
    expect(told).toEqual([`admit ${ORIGIN}`, `answered ${ORIGIN}`, `success ${ORIGIN}`]);
  });

  it('reports an error as a failure before passing it on', () => {
    const { breakers, told } = recordingBreakers();
    const { handler, calls } = recordingHandler();
    const h = through(breakers, handler).given.handler as Dispatcher.DispatchHandler;
    const error = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    let toldWhenPassedOn: string[] = [];
    (handler as { onResponseError: unknown }).onResponseError = () => {
      toldWhenPassedOn = [...told];
    };
    h.onResponseError?.(controller, error);
    expect(toldWhenPassedOn).toEqual([`admit ${ORIGIN}`, `failure ${ORIGIN} connect ECONNREFUSED`]);
    expect(calls).toEqual([]);
  });

  it('reports an upgrade as a success', () => {
    const { breakers, told } = recordingBreakers();
    const h = through(breakers, recordingHandler().handler).given.handler as Dispatcher.DispatchHandler;
    h.onRequestUpgrade?.(controller, 101, {}, {} as Duplex);
    expect(told.at(-1)).toBe(`success ${ORIGIN}`);
  });

  it('passes every callback on to the caller with its arguments', () => {
    const { breakers } = recordingBreakers();
    const { handler, calls } = recordingHandler();
    const h = through(breakers, handler).given.handler as Dispatcher.DispatchHandler;
    const socket = {} as Duplex;
    const chunk = Buffer.from('ok');
    const error = new Error('boom');
    h.onRequestStart?.(controller, { ctx: 1 });
    h.onRequestSent?.();
    h.onBodySent?.(chunk);
    h.onResponseStarted?.();
    h.onResponseStart?.(controller, 200, { a: '1' }, 'OK');
    h.onResponseData?.(controller, chunk);
    h.onResponseEnd?.(controller, { t: '1' });
    // the end is the last callback: one after it reaches nothing (the handler let go of the caller's)
    h.onResponseError?.(controller, error);
    expect(calls).toEqual([
      ['onRequestStart', controller, { ctx: 1 }],
      ['onRequestSent'],
      ['onBodySent', chunk],
      ['onResponseStarted'],
      ['onResponseStart', controller, 200, { a: '1' }, 'OK'],
      ['onResponseData', controller, chunk],
      ['onResponseEnd', controller, { t: '1' }],
    ]);
    // an upgrade and an error are last callbacks too, each passed on with its arguments
    const upgraded = recordingHandler();
    const u = through(breakers, upgraded.handler).given.handler as Dispatcher.DispatchHandler;
    u.onRequestUpgrade?.(controller, 101, { u: '1' }, socket);
    u.onResponseEnd?.(controller, {});
    expect(upgraded.calls).toEqual([['onRequestUpgrade', controller, 101, { u: '1' }, socket]]);
    const failed = recordingHandler();
    const f = through(breakers, failed.handler).given.handler as Dispatcher.DispatchHandler;
    f.onResponseError?.(controller, error);
    f.onResponseEnd?.(controller, {});
    expect(failed.calls).toEqual([['onResponseError', controller, error]]);
  });

  it('passes on to a caller that has only some of the callbacks', () => {
    const { breakers } = recordingBreakers();
    const ended: unknown[] = [];
    const h = through(breakers, { onResponseEnd: (_c, t) => ended.push(t) } as Dispatcher.DispatchHandler).given
      .handler as Dispatcher.DispatchHandler;
    expect(() => {
      h.onRequestStart?.(controller, {});
      h.onRequestSent?.();
      h.onBodySent?.(Buffer.from('x'));
      h.onResponseStarted?.();
      h.onResponseStart?.(controller, 200, {}, 'OK');
      h.onResponseData?.(controller, Buffer.from('x'));
      h.onResponseEnd?.(controller, {});
      h.onRequestUpgrade?.(controller, 101, {}, {} as Duplex);
      h.onResponseError?.(controller, new Error('x'));
    }).not.toThrow();
    expect(ended).toEqual([{}]);
  });
});
