// The retry interceptor by itself, over a dispatch the test drives by hand: what the caller's
// controller does to the attempt under way, which idempotency keys count in every header format,
// the budget a marked 503 spends, and the retry event.

import diagnosticsChannel from 'node:diagnostics_channel';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Dispatcher } from 'undici';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CLIENT_CHANNELS, type RetryEvent } from '../../src/channels.js';
import { retry } from '../../src/interceptor/retry.js';
import { RetryBudget } from '../../src/retry/policy.js';

const MARKER = 'x-lossless-offline';

interface AttemptController extends Dispatcher.DispatchController {
  readonly rawHeaders?: Buffer[];
  readonly rawTrailers?: Buffer[];
}

/** One attempt the test plays: its handler, and a controller that records what it was told. */
interface Attempt {
  readonly handler: Dispatcher.DispatchHandler;
  readonly controller: AttemptController & { told: string[] };
}

function harness(o: { budget?: RetryBudget; attempts?: number; timeoutMs?: number } = {}) {
  const attempts: Attempt[] = [];
  const dispatch = retry({
    attempts: o.attempts ?? 3,
    budget: o.budget ?? new RetryBudget(0.1, 10),
    minDelayMs: 0,
    maxDelayMs: 0,
    timeoutMs: o.timeoutMs ?? 0,
    idempotencyHeader: 'idempotency-key',
    markerHeader: MARKER,
    serviceOf: (origin) => (origin === 'http://svc' ? 'svc' : undefined),
  })((_opts, handler) => {
    const told: string[] = [];
    const controller = {
      told,
      aborted: false,
      paused: false,
      reason: null as Error | null,
      rawHeaders: [Buffer.from('x-raw'), Buffer.from('1')],
      rawTrailers: [Buffer.from('x-trailer'), Buffer.from('2')],
      abort(reason: Error) {
        told.push(`abort ${reason.message}`);
        this.aborted = true;
        this.reason = reason;
      },
      pause() {
        told.push('pause');
      },
      resume() {
        told.push('resume');
      },
    };
    attempts.push({ handler, controller });
    return true;
  });
  return { dispatch, attempts };
}

/** The caller: records its callbacks and keeps the controller retry gave it. */
function caller() {
  const seen: string[] = [];
  let controller: Dispatcher.DispatchController | undefined;
  let failure: (Error & { code?: string }) | undefined;
  const handler: Dispatcher.DispatchHandler = {
    onRequestStart: (c) => {
      controller = c;
    },
    onResponseStart: (_c, status) => seen.push(`start ${status}`),
    onResponseData: (_c, chunk) => seen.push(`data ${chunk}`),
    onResponseEnd: () => seen.push('end'),
    onResponseError: (_c, error) => {
      failure = error;
      seen.push(`error ${(error as Error & { code?: string }).code ?? error.message}`);
    },
  };
  return {
    handler,
    seen,
    get controller() {
      if (controller === undefined) throw new Error('no controller yet');
      return controller as AttemptController;
    },
    get failure() {
      return failure;
    },
  };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));
const coded = (message: string, code: string) => Object.assign(new Error(message), { code });

function answer(a: Attempt, status: number, headers: Record<string, string> = {}, body = 'ok'): void {
  a.handler.onRequestSent?.();
  a.handler.onResponseStart?.(a.controller, status, headers, String(status));
  a.handler.onResponseData?.(a.controller, Buffer.from(body));
  a.handler.onResponseEnd?.(a.controller, {});
}

const subscribers: [string, (message: unknown) => void][] = [];
afterEach(() => {
  for (const [name, fn] of subscribers.splice(0)) diagnosticsChannel.unsubscribe(name, fn);
});

describe('the retry interceptor', () => {
  it("passes the caller's pause, resume and abort to the attempt under way, and answers for it", async () => {
    const { dispatch, attempts } = harness();
    const c = caller();
    dispatch({ origin: 'http://svc', path: '/', method: 'GET' }, c.handler);
    // paused before the attempt started: the attempt starts paused
    c.controller.pause();
    expect(c.controller.paused).toBe(true);
    const a = attempts[0] as Attempt;
    a.handler.onRequestStart?.(a.controller, {});
    expect(a.controller.told).toEqual(['pause']);
    c.controller.resume();
    expect(c.controller.paused).toBe(false);
    expect(a.controller.told).toEqual(['pause', 'resume']);
    // the raw headers and trailers are the attempt's
    expect(c.controller.rawHeaders).toBe(a.controller.rawHeaders);
    expect(c.controller.rawTrailers).toBe(a.controller.rawTrailers);
    // abort: the attempt is aborted, the caller answered with the reason, nothing retried
    expect(c.controller.aborted).toBe(false);
    expect(c.controller.reason).toBeNull();
    const reason = new Error('caller gave up');
    c.controller.abort(reason);
    expect(c.controller.aborted).toBe(true);
    expect(c.controller.reason).toBe(reason);
    expect(a.controller.told.at(-1)).toBe('abort caller gave up');
    expect(c.seen).toEqual(['error caller gave up']);
    // undici fails the aborted attempt with the caller's reason: not retried, and left as it was
    a.handler.onResponseError?.(a.controller, reason);
    await settle();
    expect(attempts).toHaveLength(1);
    expect(c.seen).toEqual(['error caller gave up']);
    expect(Object.keys(reason)).toEqual([]);
  });

  it('holds a timer only while a request is under way: answered, failed or aborted at its start, none is left', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const { dispatch, attempts } = harness({ timeoutMs: 30_000 });
      const answered = caller();
      dispatch({ origin: 'http://svc', path: '/', method: 'GET' }, answered.handler);
      expect(vi.getTimerCount()).toBe(1);
      answer(attempts[0] as Attempt, 200);
      expect(answered.seen).toEqual(['start 200', 'data ok', 'end']);
      expect(vi.getTimerCount()).toBe(0);

      const failed = caller();
      dispatch({ origin: 'http://svc', path: '/', method: 'POST', body: 'x' }, failed.handler);
      const a = attempts[1] as Attempt;
      a.handler.onRequestSent?.();
      a.handler.onResponseError?.(a.controller, coded('reset', 'ECONNRESET'));
      await settle();
      expect(failed.seen).toEqual(['error ECONNRESET']); // a POST that was written: not retried
      expect(vi.getTimerCount()).toBe(0);

      // a caller that aborts as soon as it gets the controller is answered, and nothing is timed
      const seen: string[] = [];
      dispatch(
        { origin: 'http://svc', path: '/', method: 'GET' },
        {
          onRequestStart: (c) => c.abort(new Error('not wanted')),
          onResponseError: (_c, error) => seen.push(error.message),
        },
      );
      expect(seen).toEqual(['not wanted']);
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('answers a request that outlives timeoutMs with LOSSLESS_ERR_TIMEOUT and aborts its attempt', () => {
    vi.useFakeTimers();
    try {
      const { dispatch, attempts } = harness({ timeoutMs: 1000 });
      const c = caller();
      dispatch({ origin: 'http://svc', path: '/', method: 'GET' }, c.handler);
      const a = attempts[0] as Attempt;
      a.handler.onRequestStart?.(a.controller, {});
      vi.advanceTimersByTime(999);
      expect(c.seen).toEqual([]);
      vi.advanceTimersByTime(1);
      expect(c.seen).toEqual(['error LOSSLESS_ERR_TIMEOUT']);
      expect(a.controller.told).toEqual([expect.stringMatching(/^abort /)]);
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('ends an attempt that starts after the request timed out without the timeout (the instance never had it)', () => {
    vi.useFakeTimers();
    try {
      const { dispatch, attempts } = harness({ timeoutMs: 1000 });
      const c = caller();
      dispatch({ origin: 'http://svc', path: '/', method: 'GET' }, c.handler);
      vi.advanceTimersByTime(1000);
      expect(c.seen).toEqual(['error LOSSLESS_ERR_TIMEOUT']);
      // the attempt was waiting (for the registry's first list): it starts now, and ends at once
      const a = attempts[0] as Attempt;
      a.handler.onRequestStart?.(a.controller, {});
      expect(a.controller.told).toEqual(['abort the request is over']);
      expect(a.controller.reason?.name).toBe('Error');
    } finally {
      vi.useRealTimers();
    }
  });

  it('aborts an attempt that starts after the caller aborted', () => {
    const { dispatch, attempts } = harness();
    const c = caller();
    dispatch({ origin: 'http://svc', path: '/', method: 'GET' }, c.handler);
    c.controller.abort(new Error('early'));
    const a = attempts[0] as Attempt;
    a.handler.onRequestStart?.(a.controller, {});
    expect(a.controller.told).toEqual(['abort early']);
  });

  it('after the response was handed on, an abort goes to that attempt alone', () => {
    const { dispatch, attempts } = harness();
    const c = caller();
    dispatch({ origin: 'http://svc', path: '/', method: 'GET' }, c.handler);
    const a = attempts[0] as Attempt;
    a.handler.onRequestStart?.(a.controller, {});
    a.handler.onResponseStart?.(a.controller, 200, {}, 'OK');
    c.controller.abort(new Error('body no longer wanted'));
    expect(a.controller.told).toEqual(['abort body no longer wanted']);
    // the caller hears of it from the attempt, once
    expect(c.seen).toEqual(['start 200']);
    a.handler.onResponseError?.(a.controller, new Error('body no longer wanted'));
    expect(c.seen).toEqual(['start 200', 'error body no longer wanted']);
  });

  it.each<[string, Dispatcher.DispatchOptions['headers'], boolean]>([
    ['an object', { 'Idempotency-Key': 'k' }, true],
    ['an object with another header', { 'x-idempotency': 'k' }, false],
    ['a flat array', ['content-type', 'text/plain', 'idempotency-key', 'k'], true],
    ['a flat array whose value is the name', ['x-other', 'idempotency-key'], false],
    ['pairs', [['IDEMPOTENCY-KEY', 'k']] as unknown as string[], true],
    ['pairs with another header', [['x-other', 'idempotency-key']] as unknown as string[], false],
    ['a Map', new Map([['idempotency-key', 'k']]) as unknown as Record<string, string>, true],
    ['a Map with another header', new Map([['x-other', 'k']]) as unknown as Record<string, string>, false],
    ['none', undefined, false],
    ['null', null as unknown as undefined, false],
  ])('a POST reset after it was written, its headers %s: retried = %s', async (_, headers, retried) => {
    const { dispatch, attempts } = harness();
    const c = caller();
    dispatch({ origin: 'http://svc', path: '/', method: 'POST', body: 'x', headers }, c.handler);
    const a = attempts[0] as Attempt;
    a.handler.onRequestStart?.(a.controller, {});
    a.handler.onRequestSent?.();
    a.handler.onResponseError?.(a.controller, coded('read ECONNRESET', 'ECONNRESET'));
    await settle();
    await settle();
    expect(attempts).toHaveLength(retried ? 2 : 1);
    if (!retried) expect(c.failure?.code).toBe('ECONNRESET');
  });

  it("lets go of the caller's handler once the request is over: the run undici keeps after it holds none of it", async () => {
    // undici keeps a request's handler (here, the run) a while after the request ended; a caller's
    // handler the run still held would be kept with it, its response body and all, and promoted
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const { dispatch, attempts } = harness();
    const dispatched = (method: string): WeakRef<object> => {
      const handler: Dispatcher.DispatchHandler & { body?: Buffer } = { body: Buffer.alloc(1 << 20) };
      dispatch({ origin: 'http://svc', path: '/', method, body: method === 'POST' ? 'x' : null }, handler);
      return new WeakRef(handler);
    };
    const answered = dispatched('GET');
    answer(attempts[0] as Attempt, 200);
    const failed = dispatched('POST');
    const a = attempts[1] as Attempt;
    a.handler.onRequestSent?.();
    a.handler.onResponseError?.(a.controller, coded('reset', 'ECONNRESET'));
    await settle();
    const running = dispatched('GET');
    await settle(); // a WeakRef holds its target until the job that made it is over
    gc();
    expect(attempts).toHaveLength(3); // the runs, as undici would keep them
    expect(answered.deref()).toBeUndefined();
    expect(failed.deref()).toBeUndefined();
    expect(running.deref()).toBeDefined(); // under way: still the run's to call
  });

  it('a marked 503 spends one retry token, not two', async () => {
    // no token earned per request, one to spend
    const budget = new RetryBudget(0, 1);
    const { dispatch, attempts } = harness({ budget });
    const c = caller();
    dispatch({ origin: 'http://svc', path: '/', method: 'GET' }, c.handler);
    const first = attempts[0] as Attempt;
    first.handler.onRequestStart?.(first.controller, {});
    answer(first, 503, { [MARKER]: 'draining' }, 'draining');
    await settle();
    await settle();
    expect(attempts).toHaveLength(2);
    const second = attempts[1] as Attempt;
    second.handler.onRequestStart?.(second.controller, {});
    answer(second, 200);
    expect(c.seen).toEqual(['start 200', 'data ok', 'end']);
    expect(budget.tokens).toBe(0);
  });

  it('publishes each retry: the service, the attempt that failed, what was tried, why', async () => {
    const events: RetryEvent[] = [];
    const fn = (message: unknown) => events.push(message as RetryEvent);
    diagnosticsChannel.subscribe(CLIENT_CHANNELS.retry, fn);
    subscribers.push([CLIENT_CHANNELS.retry, fn]);
    const { dispatch, attempts } = harness();
    const c = caller();
    dispatch({ origin: 'http://svc', path: '/', method: 'GET' }, c.handler);
    const a = attempts[0] as Attempt;
    a.handler.onRequestStart?.(a.controller, {});
    a.handler.onResponseError?.(a.controller, coded('connect ECONNREFUSED', 'ECONNREFUSED'));
    await settle();
    await settle();
    expect(events).toEqual([{ service: 'svc', attempt: 1, tried: [], reason: 'ECONNREFUSED' }]);
    expect(attempts).toHaveLength(2);
  });
});
