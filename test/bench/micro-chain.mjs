// What the client's three interceptors cost by themselves, with no network: retry, balance and
// breaker (or any of them: the first argument, `none` for the bare dispatch) over a dispatch that
// holds 50 requests and answers each at once when the next ones arrive. Prints ns per request per
// round; compare `none` with `all` in the same run, on a quiet machine.
//
//   node test/bench/micro-chain.mjs all
//   node test/bench/micro-chain.mjs none --requests 300000 --rounds 3

import { Breakers, balance, breaker, RetryBudget, retry, ServiceTable } from '@lossless/client/internal';
import { silentLogger } from '@lossless/core';
import { flags, usageError } from './report.mjs';

const USAGE =
  'Usage: node test/bench/micro-chain.mjs [all|none|retry,balance,breaker] [--requests 300000] [--rounds 3]';
const { values: args, positionals } = flags(
  {
    requests: { type: 'string', default: '300000' },
    rounds: { type: 'string', default: '3' },
  },
  USAGE,
  { allowPositionals: true },
);
if (positionals.length > 1) usageError(`expected one list of layers, got ${positionals.join(' ')}`, USAGE);
const layers = positionals[0] ?? 'all';
if (!/^(all|none|(retry|balance|breaker)(,(retry|balance|breaker))*)$/.test(layers)) {
  usageError(`layers: expected all, none or a list of retry, balance, breaker, got ${layers}`, USAGE);
}
const N = Number(args.requests);
const ROUNDS = Number(args.rounds);
if (!Number.isInteger(N) || N < 1000 || N > 100_000_000)
  usageError(`--requests: expected an integer >= 1000, got ${args.requests}`, USAGE);
if (!Number.isInteger(ROUNDS) || ROUNDS < 1 || ROUNDS > 50)
  usageError(`--rounds: expected an integer in 1..50, got ${args.rounds}`, USAGE);
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
