import { Readable } from 'node:stream';
import { silentLogger } from '@lossless/core';
import { Dispatcher } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { createClient, type LosslessClient } from '../../src/client.js';
import { ServiceTable } from '../../src/discovery/table.js';
import { balance } from '../../src/interceptor/balance.js';
import { retry } from '../../src/interceptor/retry.js';
import { RetryBudget } from '../../src/retry/policy.js';
import {
  instance,
  seeded,
  seedOf,
  startServer,
  stopServer,
  TestRegistry,
  type TestServer,
  until,
  withDeadline,
} from '../helpers.js';

const MARKER = 'x-lossless-offline';

// ---------------------------------------------------------------------------------------------
// a fake dispatch: each attempt plays one scripted outcome

type Outcome =
  | 'refused' // onConnect, onError ECONNREFUSED; the request was not written
  | 'reset-before-write' // onConnect, onError ECONNRESET; not written
  | 'reset-after-write' // onConnect, onRequestSent, onError ECONNRESET
  | '503+marker' // a draining instance answered 503 with the offline marker
  | '500'
  | 'ok'
  | 'hang' // written, never answered (until aborted)
  | 'stall-body'; // 200 and a first chunk, then nothing (until aborted)

interface Attempt {
  readonly origin: string;
  readonly method: string;
  readonly outcome: Outcome;
}

function coded(message: string, code: string): Error & { code: string } {
  return Object.assign(new Error(message), { code });
}

interface Fake {
  readonly dispatch: Dispatcher['dispatch'];
  readonly attempts: Attempt[];
  /** Attempts that ended (answered or failed). */
  ended: number;
}

/** A controller as undici hands one to a handler: abort ends the attempt with onResponseError. */
function fakeController(onAbort: (reason: Error) => void): Dispatcher.DispatchController {
  let aborted = false;
  let reason: Error | null = null;
  let paused = false;
  return {
    get aborted() {
      return aborted;
    },
    get reason() {
      return reason;
    },
    get paused() {
      return paused;
    },
    abort(r: Error) {
      if (aborted) return;
      aborted = true;
      reason = r;
      onAbort(r);
    },
    pause() {
      paused = true;
    },
    resume() {
      paused = false;
    },
  };
}

function fakeDispatch(script: readonly Outcome[]): Fake {
  const fake: Fake = {
    attempts: [],
    ended: 0,
    dispatch: ((opts: Dispatcher.DispatchOptions, h: Dispatcher.DispatchHandler) => {
      const outcome = script[fake.attempts.length] ?? 'ok';
      fake.attempts.push({ origin: String(opts.origin), method: String(opts.method), outcome });
      let done = false;
      const end = (): void => {
        done = true;
        fake.ended++;
      };
      const controller = fakeController((reason) => {
        if (done) return;
        end();
        h.onResponseError?.(controller, reason);
      });
      const respond = (status: number, headers: Record<string, string>, body: string): void => {
        h.onResponseStart?.(controller, status, headers, String(status));
        h.onResponseData?.(controller, Buffer.from(body));
        end();
        h.onResponseEnd?.(controller, {});
      };
      setImmediate(() => {
        h.onRequestStart?.(controller, {});
        if (done) return;
        switch (outcome) {
          case 'refused':
            end();
            h.onResponseError?.(controller, coded('connect ECONNREFUSED', 'ECONNREFUSED'));
            return;
          case 'reset-before-write':
            end();
            h.onResponseError?.(controller, coded('read ECONNRESET', 'ECONNRESET'));
            return;
          case 'reset-after-write':
            h.onRequestSent?.();
            end();
            h.onResponseError?.(controller, coded('read ECONNRESET', 'ECONNRESET'));
            return;
          case '503+marker':
            h.onRequestSent?.();
            respond(503, { [MARKER]: 'draining' }, 'draining');
            return;
          case '500':
            h.onRequestSent?.();
            respond(500, {}, 'boom');
            return;
          case 'ok':
            h.onRequestSent?.();
            respond(200, { 'content-type': 'text/plain' }, `ok from ${String(opts.origin)}`);
            return;
          case 'hang':
            h.onRequestSent?.();
            return;
          case 'stall-body':
            h.onRequestSent?.();
            h.onResponseStart?.(controller, 200, {}, 'OK');
            h.onResponseData?.(controller, Buffer.from('partial'));
            return;
        }
      });
      return true;
    }) as Dispatcher['dispatch'],
  };
  return fake;
}

// ---------------------------------------------------------------------------------------------
// the caller: undici's controller handler API, collected in a promise

interface Result {
  status: number | undefined;
  body: string;
  /** How many times the caller got response headers (a retried response must not leak). */
  headerCalls: number;
  error: (Error & { code?: string; tried?: readonly string[] }) | undefined;
}

interface Call {
  readonly result: Promise<Result>;
  abort(reason: Error): void;
}

function call(dispatch: Dispatcher['dispatch'], opts: Partial<Dispatcher.DispatchOptions> = {}): Call {
  let controller: Dispatcher.DispatchController | undefined;
  const result = new Promise<Result>((resolve) => {
    const r: Result = { status: undefined, body: '', headerCalls: 0, error: undefined };
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(c) {
        controller = c;
      },
      onResponseStart(_c, status) {
        r.status = status;
        r.headerCalls++;
      },
      onResponseData(_c, chunk) {
        r.body += chunk.toString();
      },
      onResponseEnd() {
        resolve(r);
      },
      onResponseError(_c, error) {
        r.error = error;
        resolve(r);
      },
    };
    dispatch({ origin: 'http://svc', path: '/things', method: 'GET', ...opts } as Dispatcher.DispatchOptions, handler);
  });
  return {
    result,
    abort(reason) {
      if (controller === undefined) throw new Error('the caller was not given a controller');
      controller.abort(reason);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// retry + balance over the fake, with a service of three instances

const INSTANCES = [
  instance('svc', 'i1', { ip: '10.0.0.1' }),
  instance('svc', 'i2', { ip: '10.0.0.2' }),
  instance('svc', 'i3', { ip: '10.0.0.3' }),
];
const ORIGINS = INSTANCES.map((i) => `http://${i.ip}:${i.port}`);

const tables: ServiceTable[] = [];
afterEach(() => {
  for (const t of tables.splice(0)) t.close();
});

interface StackOptions {
  readonly attempts?: number;
  readonly budget?: RetryBudget;
  readonly timeoutMs?: number;
  readonly minDelayMs?: number;
  readonly maxDelayMs?: number;
  readonly registry?: TestRegistry;
}

function stack(script: readonly Outcome[], o: StackOptions = {}) {
  const registry = o.registry ?? new TestRegistry([...INSTANCES]);
  const table = new ServiceTable({
    registry,
    logger: silentLogger,
    now: () => performance.now(),
    refreshIntervalMs: 0,
  });
  tables.push(table);
  const serviceOf = (origin: string): string | undefined => (origin === 'http://svc' ? 'svc' : undefined);
  const fake = fakeDispatch(script);
  const retryDeps = {
    attempts: o.attempts ?? 3,
    budget: o.budget ?? new RetryBudget(0.1, 10),
    minDelayMs: o.minDelayMs ?? 0,
    maxDelayMs: o.maxDelayMs ?? o.minDelayMs ?? 0,
    timeoutMs: o.timeoutMs ?? 0,
    idempotencyHeader: 'idempotency-key',
    markerHeader: MARKER,
    serviceOf,
  };
  const balanceDeps = {
    table,
    breakers: undefined,
    markerHeader: MARKER,
    curve: { floor: 0.1, aggression: 1 },
    defaultWarmupMs: 60_000,
    serviceOf,
    now: () => performance.now(),
    wallNow: () => Date.now(),
    random: seeded(seedOf(script.join(','))),
  };
  const dispatch = retry(retryDeps)(balance(balanceDeps)(fake.dispatch));
  return { fake, registry, table, dispatch, retryDeps, balanceDeps };
}

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);

function requestOf(method: string): Partial<Dispatcher.DispatchOptions> {
  return {
    method: method as Dispatcher.HttpMethod,
    ...(BODY_METHODS.has(method) ? { body: '{"n":1}', headers: { 'content-type': 'application/json' } } : {}),
  };
}

// method, failure of the first attempt, whether a second attempt happens: written out in full
const MATRIX: [method: string, phase: Outcome, retried: boolean][] = [
  ['GET', 'refused', true],
  ['GET', 'reset-before-write', true],
  ['GET', 'reset-after-write', true],
  ['GET', '503+marker', true],
  ['GET', '500', false],
  ['GET', 'ok', false],
  ['HEAD', 'refused', true],
  ['HEAD', 'reset-before-write', true],
  ['HEAD', 'reset-after-write', true],
  ['HEAD', '503+marker', true],
  ['HEAD', '500', false],
  ['HEAD', 'ok', false],
  ['OPTIONS', 'refused', true],
  ['OPTIONS', 'reset-before-write', true],
  ['OPTIONS', 'reset-after-write', true],
  ['OPTIONS', '503+marker', true],
  ['OPTIONS', '500', false],
  ['OPTIONS', 'ok', false],
  ['PUT', 'refused', true],
  ['PUT', 'reset-before-write', true],
  ['PUT', 'reset-after-write', true],
  ['PUT', '503+marker', true],
  ['PUT', '500', false],
  ['PUT', 'ok', false],
  ['DELETE', 'refused', true],
  ['DELETE', 'reset-before-write', true],
  ['DELETE', 'reset-after-write', true],
  ['DELETE', '503+marker', true],
  ['DELETE', '500', false],
  ['DELETE', 'ok', false],
  ['POST', 'refused', true],
  ['POST', 'reset-before-write', true],
  ['POST', 'reset-after-write', false],
  ['POST', '503+marker', true],
  ['POST', '500', false],
  ['POST', 'ok', false],
  ['PATCH', 'refused', true],
  ['PATCH', 'reset-before-write', true],
  ['PATCH', 'reset-after-write', false],
  ['PATCH', '503+marker', true],
  ['PATCH', '500', false],
  ['PATCH', 'ok', false],
];

describe('the retry safety matrix (retry + balance over a fake dispatch)', () => {
  it.each(MATRIX)('%s, first attempt %s: retried = %s', async (method, phase, retried) => {
    const { fake, dispatch } = stack([phase, 'ok', 'ok']);
    const r = await withDeadline(call(dispatch, requestOf(method)).result, 5000, `${method} ${phase}`);
    expect(fake.attempts.map((a) => a.outcome)).toEqual(retried ? [phase, 'ok'] : [phase]);
    expect(fake.attempts.every((a) => a.method === method)).toBe(true);
    expect(r.headerCalls).toBeLessThanOrEqual(1);
    if (retried) {
      expect(r.error).toBeUndefined();
      expect(r.status).toBe(200);
      expect(fake.attempts[1]?.origin, 'the retry went to another instance').not.toBe(fake.attempts[0]?.origin);
    } else if (phase === 'reset-after-write') {
      expect(r.error?.code).toBe('ECONNRESET');
      expect(r.status).toBeUndefined();
    } else {
      expect(r.error).toBeUndefined();
      expect(r.status).toBe(phase === '500' ? 500 : 200);
    }
  });
});

describe('retries', () => {
  it.each<[string, Record<string, string> | string[] | string[][]]>([
    ['an object', { 'idempotency-key': 'k-1', 'content-type': 'application/json' }],
    ['an object, other case', { 'Idempotency-Key': 'k-2' }],
    ['a flat array', ['content-type', 'application/json', 'Idempotency-Key', 'k-3']],
    // what fetch hands its dispatcher
    [
      'pairs, as fetch passes them',
      [
        ['content-type', 'application/json'],
        ['idempotency-key', 'k-4'],
      ],
    ],
  ])('retries a POST with an idempotency-key header (%s) after it was written', async (_, headers) => {
    const { fake, dispatch } = stack(['reset-after-write', 'ok']);
    const r = await call(dispatch, { method: 'POST', body: 'x', headers: headers as string[] }).result;
    expect(fake.attempts.map((a) => a.outcome)).toEqual(['reset-after-write', 'ok']);
    expect(r.status).toBe(200);
  });

  it('does not retry a PATCH reset after it was written without an idempotency key (another header is not enough)', async () => {
    const { fake, dispatch } = stack(['reset-after-write', 'ok']);
    const r = await call(dispatch, { method: 'PATCH', body: 'x', headers: { 'x-idempotency': 'no' } }).result;
    expect(fake.attempts).toHaveLength(1);
    expect(r.error?.code).toBe('ECONNRESET');
  });

  it.each<[string, Outcome]>([
    ['POST', 'refused'],
    ['POST', 'reset-before-write'],
    ['PUT', 'refused'],
    ['PUT', 'reset-before-write'],
    ['PUT', 'reset-after-write'],
  ])('never retries a %s whose body is a stream (%s)', async (method, phase) => {
    const { fake, dispatch } = stack([phase, 'ok']);
    const headers = { 'idempotency-key': 'k' };
    const r = await call(dispatch, {
      method: method as Dispatcher.HttpMethod,
      body: Readable.from(['a', 'b']),
      headers,
    }).result;
    expect(fake.attempts).toHaveLength(1);
    expect(r.error?.code).toBe(phase === 'refused' ? 'ECONNREFUSED' : 'ECONNRESET');
  });

  it('hands a marked 503 to the caller when the body is a stream (it cannot be sent again)', async () => {
    const { fake, dispatch } = stack(['503+marker', 'ok']);
    const r = await call(dispatch, { method: 'POST', body: Readable.from(['a']) }).result;
    expect(fake.attempts).toHaveLength(1);
    expect(r.status).toBe(503);
    expect(r.body).toBe('draining');
  });

  it('does not leak the discarded 503 to the caller', async () => {
    const { fake, dispatch } = stack(['503+marker', 'ok']);
    const r = await call(dispatch).result;
    expect(fake.attempts.map((a) => a.outcome)).toEqual(['503+marker', 'ok']);
    expect(r.headerCalls).toBe(1);
    expect(r.status).toBe(200);
    expect(r.body).not.toContain('draining');
  });

  it('sends each retry to an instance this request has not tried', async () => {
    const { fake, dispatch } = stack(['refused', 'reset-before-write', 'ok']);
    const r = await call(dispatch, requestOf('POST')).result;
    expect(r.status).toBe(200);
    const origins = fake.attempts.map((a) => a.origin);
    expect(origins).toHaveLength(3);
    expect(new Set(origins).size).toBe(3);
    expect([...origins].sort()).toEqual([...ORIGINS].sort());
  });

  it('stops after `attempts` attempts with the last error', async () => {
    const { fake, dispatch } = stack(['refused', 'refused', 'refused', 'ok']);
    const r = await call(dispatch).result;
    expect(fake.attempts).toHaveLength(3);
    expect(r.error?.code).toBe('ECONNREFUSED');
  });

  it('fails with LOSSLESS_ERR_NO_INSTANCE naming what was tried once every instance was tried', async () => {
    const { fake, dispatch } = stack(['refused', 'refused', 'refused', 'ok', 'ok'], { attempts: 5 });
    const r = await call(dispatch).result;
    expect(fake.attempts).toHaveLength(3);
    expect(r.error?.code).toBe('LOSSLESS_ERR_NO_INSTANCE');
    expect(r.error?.message).toContain('"svc"');
    for (const id of ['i1', 'i2', 'i3']) expect(r.error?.message).toContain(id);
    expect([...(r.error?.tried ?? [])].sort()).toEqual(['i1', 'i2', 'i3']);
  });

  it('fails with LOSSLESS_ERR_NO_INSTANCE when the service has no instance at all', async () => {
    const { fake, dispatch } = stack(['ok'], { registry: new TestRegistry([]) });
    const r = await call(dispatch).result;
    expect(fake.attempts).toHaveLength(0);
    expect(r.error?.code).toBe('LOSSLESS_ERR_NO_INSTANCE');
    expect(r.error?.message).toContain('"svc"');
  });

  it('fails with LOSSLESS_ERR_RETRY_BUDGET, naming the service and what was tried, when no retry is left', async () => {
    const { fake, dispatch } = stack(['reset-after-write', 'ok'], { budget: new RetryBudget(0, 0) });
    const r = await call(dispatch).result;
    expect(fake.attempts).toHaveLength(1);
    expect(r.error?.code).toBe('LOSSLESS_ERR_RETRY_BUDGET');
    expect(r.error?.message).toContain('"svc"');
    const tried = fake.attempts[0]?.origin;
    const id = INSTANCES.find((i) => `http://${i.ip}:${i.port}` === tried)?.id as string;
    expect(r.error?.message).toContain(id);
    expect(r.error?.tried).toEqual([id]);
    expect((r.error?.cause as { code?: string } | undefined)?.code).toBe('ECONNRESET');
  });

  it('spends no budget on attempts that were never written (refused, reset before write): they add no load', async () => {
    const budget = new RetryBudget(0, 0);
    for (const failure of ['refused', 'reset-before-write'] as const) {
      const { fake, dispatch } = stack([failure, failure, 'ok'], { budget });
      expect((await call(dispatch, { method: 'POST' }).result).status).toBe(200);
      expect(fake.attempts).toHaveLength(3);
    }
  });

  it('shares the budget between requests: a burst of 1 allows one retry in all', async () => {
    const budget = new RetryBudget(0, 1);
    const first = stack(['reset-after-write', 'ok'], { budget });
    expect((await call(first.dispatch).result).status).toBe(200);
    expect(first.fake.attempts).toHaveLength(2);
    const second = stack(['reset-after-write', 'ok'], { budget });
    expect((await call(second.dispatch).result).error?.code).toBe('LOSSLESS_ERR_RETRY_BUDGET');
    expect(second.fake.attempts).toHaveLength(1);
  });

  it('earns budget back per request: ratio 0.5 allows a retry every second request', async () => {
    const budget = new RetryBudget(0.5, 1);
    budget.tryAcquire(); // spend the initial token
    const outcomes: string[] = [];
    for (let i = 0; i < 4; i++) {
      const s = stack(['reset-after-write', 'ok'], { budget });
      const r = await call(s.dispatch).result;
      outcomes.push(r.error?.code ?? String(r.status));
    }
    expect(outcomes).toEqual(['LOSSLESS_ERR_RETRY_BUDGET', '200', 'LOSSLESS_ERR_RETRY_BUDGET', '200']);
  });
});

describe('the overall timeout and the caller’s abort', () => {
  it('fails with LOSSLESS_ERR_TIMEOUT, naming the service and what was tried, when an attempt hangs', async () => {
    const { fake, dispatch } = stack(['hang'], { timeoutMs: 50 });
    const r = await withDeadline(call(dispatch).result, 3000, 'the timeout');
    expect(r.error?.code).toBe('LOSSLESS_ERR_TIMEOUT');
    expect(r.error?.message).toContain('"svc"');
    expect(r.error?.message).toContain('50 ms');
    const id = INSTANCES.find((i) => `http://${i.ip}:${i.port}` === fake.attempts[0]?.origin)?.id as string;
    expect(r.error?.message).toContain(id);
    expect(fake.attempts).toHaveLength(1);
    expect(fake.ended, 'the hanging attempt was aborted').toBe(1);
  });

  it('fails with LOSSLESS_ERR_TIMEOUT during the backoff before a retry, without the retry', async () => {
    const { fake, dispatch } = stack(['refused', 'ok'], { timeoutMs: 50, minDelayMs: 60_000 });
    const r = await withDeadline(call(dispatch).result, 3000, 'the timeout');
    expect(r.error?.code).toBe('LOSSLESS_ERR_TIMEOUT');
    expect(fake.attempts).toHaveLength(1);
  });

  it('fails with LOSSLESS_ERR_TIMEOUT when the response body stalls (the timeout is overall)', async () => {
    const { fake, dispatch } = stack(['stall-body'], { timeoutMs: 50 });
    const r = await withDeadline(call(dispatch).result, 2000, 'the timeout of a stalled body');
    expect(r.status).toBe(200);
    expect(r.error?.code).toBe('LOSSLESS_ERR_TIMEOUT');
    expect(fake.ended, 'the stalled attempt was aborted').toBe(1);
  });

  it('fails with LOSSLESS_ERR_TIMEOUT when the registry never delivers a first list', async () => {
    const registry = new TestRegistry([...INSTANCES]);
    registry.deliverOnSubscribe = false;
    const { fake, dispatch } = stack(['ok'], { timeoutMs: 50, registry });
    const r = await withDeadline(call(dispatch).result, 2000, 'the timeout while the registry is silent');
    expect(r.error?.code).toBe('LOSSLESS_ERR_TIMEOUT');
    expect(fake.attempts).toHaveLength(0);
  });

  it('stops retrying when the caller aborts during the backoff', async () => {
    const { fake, dispatch } = stack(['refused', 'ok', 'ok'], { minDelayMs: 60_000 });
    const c = call(dispatch);
    await until(() => fake.ended === 1, 'the first attempt to fail');
    const reason = new Error('caller gave up');
    c.abort(reason);
    const r = await withDeadline(c.result, 3000, 'the abort');
    expect(r.error).toBe(reason);
    expect(fake.attempts).toHaveLength(1);
  });

  it('aborts the attempt under way and does not retry when the caller aborts', async () => {
    const { fake, dispatch } = stack(['hang', 'ok', 'ok']);
    const c = call(dispatch);
    await until(() => fake.attempts.length === 1, 'the first attempt');
    await new Promise((resolve) => setImmediate(resolve)); // let it connect
    const reason = new Error('caller gave up');
    c.abort(reason);
    const r = await withDeadline(c.result, 3000, 'the abort');
    expect(r.error).toBe(reason);
    expect(fake.ended).toBe(1);
    expect(fake.attempts).toHaveLength(1);
  });

  it('passes the abort to a response already handed to the caller', async () => {
    const { fake, dispatch } = stack(['stall-body']);
    const c = call(dispatch);
    await until(() => fake.attempts.length === 1 && fake.ended === 0, 'the response to start');
    await new Promise((resolve) => setImmediate(resolve));
    const reason = new Error('caller gave up');
    c.abort(reason);
    const r = await withDeadline(c.result, 3000, 'the abort');
    expect(r.status).toBe(200);
    expect(r.error).toBe(reason);
    expect(fake.ended).toBe(1);
  });
});

// ---------------------------------------------------------------------------------------------
// composed as createClient composes them: undici's Dispatcher.compose wraps every hop

class FakeDispatcher extends Dispatcher {
  readonly #dispatch: Dispatcher['dispatch'];
  constructor(dispatch: Dispatcher['dispatch']) {
    super();
    this.#dispatch = dispatch;
  }
  override dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    return this.#dispatch(opts, handler);
  }
}

describe("composed with undici's Dispatcher.compose (as createClient does)", () => {
  function composed(script: readonly Outcome[]) {
    const s = stack(script);
    const dispatcher = new FakeDispatcher(s.fake.dispatch).compose(balance(s.balanceDeps), retry(s.retryDeps));
    return { fake: s.fake, dispatch: dispatcher.dispatch.bind(dispatcher) as Dispatcher['dispatch'] };
  }

  it('retries a GET reset after it was written', async () => {
    const { fake, dispatch } = composed(['reset-after-write', 'ok']);
    const r = await call(dispatch, { method: 'GET' }).result;
    expect(fake.attempts).toHaveLength(2);
    expect(r.status).toBe(200);
  });

  it('does not retry a POST reset after it was written (onRequestSent must reach the retry interceptor)', async () => {
    const { fake, dispatch } = composed(['reset-after-write', 'ok']);
    const r = await call(dispatch, requestOf('POST')).result;
    expect(fake.attempts.map((a) => a.outcome)).toEqual(['reset-after-write']);
    expect(r.error?.code).toBe('ECONNRESET');
  });
});

// ---------------------------------------------------------------------------------------------
// the same through createClient and real servers

describe('through createClient and real servers', () => {
  const servers: TestServer[] = [];
  const clients: LosslessClient[] = [];
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await Promise.all(servers.splice(0).map(stopServer));
  });

  /** Three servers that read the whole request, then reset the connection without answering. */
  async function resettingService(): Promise<{ client: LosslessClient; servers: TestServer[] }> {
    const started = await Promise.all(
      [1, 2, 3].map(() =>
        startServer((req) => {
          req.resume();
          req.on('end', () => req.socket.destroy());
        }),
      ),
    );
    servers.push(...started);
    const registry = new TestRegistry(started.map((s, i) => instance('svc', `s${i + 1}`, { port: s.port })));
    const client = createClient({
      registry,
      services: ['svc'],
      retry: { minDelayMs: 0, maxDelayMs: 0 },
      clock: { random: seeded(seedOf('resetting')) },
    });
    clients.push(client);
    return { client, servers: started };
  }

  const totalHits = (list: TestServer[]): number => list.reduce((n, s) => n + s.hits, 0);

  it('retries a GET whose connection was reset after it was written, on every instance', async () => {
    const { client, servers: list } = await resettingService();
    const error = await client.request('http://svc/x', { method: 'GET' }).then(
      () => undefined,
      (e: Error & { code?: string }) => e,
    );
    expect(error).toBeDefined();
    expect(totalHits(list)).toBe(3);
    expect(list.map((s) => s.hits)).toEqual([1, 1, 1]);
  });

  it('sends a POST whose connection was reset after it was written only once', async () => {
    const { client, servers: list } = await resettingService();
    const error = await client
      .request('http://svc/orders', {
        method: 'POST',
        body: '{"order":1}',
        headers: { 'content-type': 'application/json' },
      })
      .then(
        () => undefined,
        (e: Error & { code?: string }) => e,
      );
    expect(error).toBeDefined();
    expect(totalHits(list), 'POST requests the providers received').toBe(1);
  });
});
