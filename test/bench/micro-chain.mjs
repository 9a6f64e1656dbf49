import { Breakers, balance, breaker, RetryBudget, retry, ServiceTable } from '@lossless/client';
import { silentLogger } from '@lossless/core';

const lists = new Map([
  [
    'svc',
    [1, 2, 3].map((i) => ({
      service: 'svc',
      id: `i${i}`,
      ip: '127.0.0.1',
      port: 8000 + i,
      weight: 100,
      enabled: true,
      healthy: true,
      metadata: { 'lossless.registered-at': String(Date.now() - 3600000) },
    })),
  ],
]);
const registry = {
  kind: 'b',
  list: async (s) => lists.get(s),
  subscribe(s, l) {
    queueMicrotask(() => l(lists.get(s)));
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
  rollingWindowMs: 10000,
  connectionFailures: 5,
});
const controller = { aborted: false, paused: false, reason: null, abort() {}, pause() {}, resume() {} };
const ring = new Array(50);
let slot = 0;
const answer = (h) => {
  h.onRequestStart?.(controller, {});
  h.onRequestSent?.();
  h.onResponseStart?.(controller, 200, {}, 'OK');
  h.onResponseData?.(controller, Buffer.from('ok'));
  h.onResponseEnd?.(controller, {});
};
const base = (opts, h) => {
  const held = ring[slot];
  if (held) answer(held);
  ring[slot] = h;
  slot = (slot + 1) % 50;
  return true;
};
const serviceOf = (o) => (o === 'http://svc' ? 'svc' : undefined);
const layers = process.argv[2] ?? 'all';
let dispatch = base;
if (layers.includes('breaker') || layers === 'all') dispatch = breaker(breakers, 'x-lossless-offline')(dispatch);
if (layers.includes('balance') || layers === 'all')
  dispatch = balance({
    table,
    breakers,
    markerHeader: 'x-lossless-offline',
    curve: { floor: 0.1, aggression: 1 },
    defaultWarmupMs: 60000,
    serviceOf,
    now: () => performance.now(),
    wallNow: Date.now,
    random: Math.random,
  })(dispatch);
if (layers.includes('retry') || layers === 'all')
  dispatch = retry({
    attempts: 3,
    budget: new RetryBudget(0.1, 10),
    minDelayMs: 10,
    maxDelayMs: 250,
    timeoutMs: 30000,
    idempotencyHeader: 'idempotency-key',
    markerHeader: 'x-lossless-offline',
    serviceOf,
  })(dispatch);
const opts = { origin: 'http://svc', path: '/', method: 'GET', headers: {} };
const caller = {
  onRequestStart() {},
  onResponseStart() {},
  onResponseData() {},
  onResponseEnd() {},
  onResponseError(c, e) {
    throw e;
  },
};
const N = Number(process.env.N ?? 300000);
for (let r = 0; r < Number(process.env.ROUNDS ?? 3); r++) {
  for (let i = 0; i < 50000; i++) dispatch(opts, caller);
  await new Promise((r) => setImmediate(r));
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) {
    dispatch(opts, caller);
    if ((i & 1023) === 0) await new Promise((r) => setImmediate(r));
  }
  await new Promise((r) => setImmediate(r));
  console.log(layers, (Number(process.hrtime.bigint() - t0) / N).toFixed(0), 'ns/req');
}
process.exit(0);
