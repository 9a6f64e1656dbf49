// What the client's three interceptors cost by themselves, with no network: retry, balance and
// breaker (or any of them: the first argument, `none` for the bare dispatch) over a dispatch that
// holds --concurrency requests and answers each at once when the next ones arrive. Prints ns per
// request per round. On a noisy machine, count instructions instead: run it under callgrind with
// two request counts and divide the difference by the extra requests:
//
//   node test/bench/micro-chain.mjs all
//   N=20000 ROUNDS=1 valgrind --tool=callgrind node test/bench/micro-chain.mjs all   (then N=60000)

import { Breakers, balance, breaker, RetryBudget, retry, ServiceTable } from '@lossless/client';
import { silentLogger } from '@lossless/core';

const layers = process.argv[2] ?? 'all';
if (!/^(all|none|[a-z,]+)$/.test(layers)) {
  console.error('usage: node test/bench/micro-chain.mjs [all|none|retry,balance,breaker]');
  process.exit(2);
}
const N = Number(process.env.N ?? 300_000);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const CONCURRENCY = 50;

const instances = [1, 2, 3].map((i) => ({
  service: 'svc',
  id: `i${i}`,
  ip: '127.0.0.1',
  port: 8000 + i,
  weight: 100,
  enabled: true,
  healthy: true,
  metadata: { 'lossless.registered-at': String(Date.now() - 3_600_000) },
}));
const registry = {
  kind: 'bench',
  list: async () => instances,
  subscribe(_service, listener) {
    queueMicrotask(() => listener(instances));
    return () => {};
  },
  close: async () => {},
};
const table = new ServiceTable({
  registry,
  logger: silentLogger,
  now: () => performance.now(),
  refreshIntervalMs: 100,
});
await table.get('svc').ready;
const breakers = new Breakers({
  errorThresholdPercentage: 50,
  volumeThreshold: 10,
  resetTimeoutMs: 5000,
  rollingWindowMs: 10_000,
  connectionFailures: 5,
});

const controller = { aborted: false, paused: false, reason: null, abort() {}, pause() {}, resume() {} };
const BODY = Buffer.from('ok');
const answer = (h) => {
  h.onRequestStart?.(controller, {});
  h.onRequestSent?.();
  h.onResponseStart?.(controller, 200, {}, 'OK');
  h.onResponseData?.(controller, BODY);
  h.onResponseEnd?.(controller, {});
};
const ring = new Array(CONCURRENCY);
let slot = 0;
const bare = (_opts, h) => {
  const held = ring[slot];
  if (held !== undefined) answer(held);
  ring[slot] = h;
  slot = (slot + 1) % CONCURRENCY;
  return true;
};

const serviceOf = (origin) => (origin === 'http://svc' ? 'svc' : undefined);
const has = (name) => layers === 'all' || layers.split(',').includes(name);
let dispatch = bare;
if (has('breaker')) dispatch = breaker(breakers, 'x-lossless-offline')(dispatch);
if (has('balance'))
  dispatch = balance({
    table,
    breakers,
    markerHeader: 'x-lossless-offline',
    curve: { floor: 0.1, aggression: 1 },
    defaultWarmupMs: 60_000,
    serviceOf,
    now: () => performance.now(),
    wallNow: Date.now,
    random: Math.random,
  })(dispatch);
if (has('retry'))
  dispatch = retry({
    attempts: 3,
    budget: new RetryBudget(0.1, 10),
    minDelayMs: 10,
    maxDelayMs: 250,
    timeoutMs: 30_000,
    idempotencyHeader: 'idempotency-key',
    markerHeader: 'x-lossless-offline',
    serviceOf,
  })(dispatch);

// without balance, requests go straight to an instance origin
const opts = { origin: has('balance') ? 'http://svc' : 'http://127.0.0.1:8001', path: '/', method: 'GET', headers: {} };
const caller = {
  onRequestStart() {},
  onResponseStart() {},
  onResponseData() {},
  onResponseEnd() {},
  onResponseError(_c, error) {
    throw error;
  },
};
const turn = () => new Promise((resolve) => setImmediate(resolve));

for (let r = 0; r < ROUNDS; r++) {
  for (let i = 0; i < 50_000; i++) dispatch(opts, caller);
  await turn();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) {
    dispatch(opts, caller);
    if ((i & 1023) === 0) await turn(); // let timers and microtasks run, as a server would
  }
  await turn();
  console.log(`${layers}: ${(Number(process.hrtime.bigint() - t0) / N).toFixed(0)} ns/request`);
}
process.exit(0);
