// The consumer process of the rolling-restart demo: open-loop load at a fixed arrival rate, latency
// measured from each request's intended send time (so a stall is not hidden), through either
//   lossless  @lossless/client (marker ejection, safe retries, breakers, warm-up weights), or
//   plain     undici Pools in round robin over the registry's instances: what most callers do.
// With --race-ms D (plain only), the plain client takes new instances from the registry but drops an
// instance only D ms after the demo sent it SIGTERM (the demo says when, over IPC), whatever the
// registry says meanwhile: the endpoint race of Kubernetes, where kube-proxy and ingresses keep
// routing to a terminating pod until the endpoint removal reaches them.
// Started with fork() (serialization 'advanced'): reports progress and, when told to stop (or after
// --max-seconds), its results.
// --ca FILE: instances registered as secure are called over https trusting that certificate; undici
// negotiates HTTP/2 with them (the demo's --protocol h2).

import { readFileSync } from 'node:fs';
import { createClient } from '@lossless/client';
import { registryFromUrl } from '@lossless/core';
import { createNacosRegistry } from '@lossless/nacos';
import { Pool } from 'undici';
import { flags } from './flags.mjs';

const args = flags(
  {
    client: { type: 'string', default: 'lossless' },
    registry: { type: 'string' },
    service: { type: 'string', default: 'demo-service' },
    rate: { type: 'string', default: '200' },
    seed: { type: 'string', default: '1' },
    'max-seconds': { type: 'string', default: '300' },
    'timeout-ms': { type: 'string', default: '10000' },
    ca: { type: 'string' },
    'race-ms': { type: 'string' },
  },
  `Usage: node examples/rolling-restart/consumer.mjs [--client lossless|plain] [--registry URL] [--service NAME]
  [--rate N] [--seed N] [--max-seconds S] [--timeout-ms MS] [--race-ms D] [--ca FILE]
Started by demo.mjs with fork(): results go back over IPC.`,
);
const ca = args.ca === undefined ? undefined : readFileSync(args.ca, 'utf8');
const schemes = { nacos: createNacosRegistry };
const rate = Number(args.rate);
const timeoutMs = Number(args['timeout-ms']);
const raceMs = args['race-ms'] === undefined ? undefined : Number(args['race-ms']);

// mulberry32: the same request mix for the same seed
let state = Number(args.seed) >>> 0;
const random = () => {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
/** About 95 % fast (~1 ms), 5 % ~200 ms, 0.1 % ~2 s; 20 % POST. */
function nextRequest() {
  const r = random();
  const ms = r < 0.001 ? 2000 : r < 0.051 ? 200 : 1;
  return { ms, method: random() < 0.2 ? 'POST' : 'GET' };
}

function makeClient() {
  if (args.client === 'lossless') {
    const client = createClient({
      registry: args.registry,
      registrySchemes: schemes,
      timeoutMs,
      // the demo's instances are new together at start-up; warm-up applies to replacements
      warmup: { windowMs: 5000 },
      ...(ca === undefined ? {} : { connect: { ca } }),
    });
    return {
      send: async ({ ms, method }) => {
        const res = await client.request(`http://${args.service}/work?ms=${ms}`, {
          method,
          ...(method === 'POST' ? { body: '{"order":1}', headers: { 'content-type': 'application/json' } } : {}),
        });
        await res.body.dump();
        return res.statusCode;
      },
      close: () => client.close(),
    };
  }
  // plain: round robin over what the registry lists, no marker handling, no retries
  const registry = registryFromUrl(args.registry, { schemes });
  let pools = [];
  const byOrigin = new Map();
  const pool = (origin) => {
    if (!byOrigin.has(origin))
      byOrigin.set(
        origin,
        new Pool(origin, { keepAliveTimeout: 4000, ...(ca === undefined ? {} : { connect: { ca } }) }),
      );
    return byOrigin.get(origin);
  };
  let next = 0;
  // --race-ms: the instances in rotation, and those dropped (never taken back from a stale list)
  const rotation = new Set();
  const dropped = new Set();
  if (raceMs !== undefined) {
    process.on('message', (message) => {
      if (message?.type !== 'terminating') return;
      setTimeout(
        () => {
          dropped.add(message.origin);
          rotation.delete(message.origin);
          pools = [...rotation].map(pool);
        },
        Math.max(0, message.at + raceMs - Date.now()),
      );
    });
  }
  const ready = new Promise((resolve) => {
    registry.subscribe(args.service, (instances) => {
      const listed = instances
        .filter((i) => i.enabled && i.healthy && i.weight > 0)
        .map((i) => `${i.metadata.secure === 'true' ? 'https' : 'http'}://${i.ip}:${i.port}`);
      if (raceMs === undefined) pools = listed.map(pool);
      else {
        // only additions come from the registry; removals come D ms after SIGTERM
        for (const origin of listed) if (!dropped.has(origin)) rotation.add(origin);
        pools = [...rotation].map(pool);
      }
      if (pools.length > 0) resolve();
    });
  });
  return {
    send: async ({ ms, method }) => {
      await ready;
      const pool = pools[next++ % pools.length];
      const res = await pool.request({
        path: `/work?ms=${ms}`,
        method,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        ...(method === 'POST' ? { body: '{"order":1}', headers: { 'content-type': 'application/json' } } : {}),
      });
      await res.body.dump();
      return res.statusCode;
    },
    close: async () => {
      await Promise.all([...byOrigin.values()].map((p) => p.close()));
      await registry.close();
    },
  };
}

function classify(error) {
  // a spent retry budget or a timeout reports what actually failed as its cause
  const code = error?.code === 'LOSSLESS_ERR_RETRY_BUDGET' ? error.cause?.code : (error?.code ?? error?.cause?.code);
  if (code === 'ECONNREFUSED') return 'refused';
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EPIPE' || code === 'UND_ERR_CLOSED')
    return 'reset';
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'LOSSLESS_ERR_TIMEOUT')
    return 'timeout';
  return 'other';
}

const client = makeClient();
const started = Date.now();
const t0 = performance.now();
/** A typed array that grows: a soak sends millions of requests, kept compact and cheap to send over IPC. */
class Column {
  constructor(Type, empty = 0) {
    this.empty = empty;
    this.values = new Type(1 << 16).fill(empty);
  }
  set(index, value) {
    if (index >= this.values.length) {
      const grown = new this.values.constructor(Math.max(this.values.length * 2, index + 1)).fill(this.empty);
      grown.set(this.values);
      this.values = grown;
    }
    this.values[index] = value;
  }
  slice(length) {
    return this.values.slice(0, length);
  }
}
// per request: intended time (ms since start), latency (ms), outcome (an index into OUTCOMES;
// UNFINISHED while the request is under way)
const OUTCOMES = ['ok', 'refused', 'reset', 'status5xx', 'timeout', 'other'];
const UNFINISHED = 255;
const intended = new Column(Float64Array);
const latency = new Column(Float64Array);
const outcome = new Column(Uint8Array, UNFINISHED);
const counts = { ok: 0, refused: 0, reset: 0, status5xx: 0, timeout: 0, other: 0 };
const examples = new Map(); // failure message -> count
let sent = 0;
let stopping = false;
let pending = 0;

function fire(i, at) {
  const request = nextRequest();
  sent++;
  pending++;
  intended.set(i, at);
  client
    .send(request)
    .then(
      (status) => (status >= 500 ? 'status5xx' : 'ok'),
      (error) => {
        const kind = classify(error);
        const text = `${kind}: ${error?.code ?? ''} ${String(error?.message ?? error)
          .replace(/\d+\.\d+\.\d+\.\d+:\d+/g, 'IP:PORT')
          .replace(/"demo-\d+"/, '"demo"')}`;
        if (examples.size < 20 || examples.has(text)) examples.set(text, (examples.get(text) ?? 0) + 1);
        return kind;
      },
    )
    .then((kind) => {
      latency.set(i, performance.now() - t0 - at);
      outcome.set(i, OUTCOMES.indexOf(kind));
      counts[kind]++;
      pending--;
    });
}

// open loop: every tick, send all requests whose intended time has come
const interval = 1000 / rate;
let i = 0;
const tick = setInterval(() => {
  const now = performance.now() - t0;
  while (!stopping && i * interval <= now) {
    fire(i, i * interval);
    i++;
  }
}, 1);
const report = (message, done) => {
  if (process.connected) process.send?.(message, done);
  else done?.();
};
const progress = setInterval(() => report({ type: 'progress', sent, pending, counts }), 250);
// the demo went away: stop at once (unless this process is the one finishing)
process.on('disconnect', () => {
  if (!stopping) process.exit(0);
});

async function finish() {
  if (stopping) return;
  stopping = true;
  clearInterval(tick);
  const deadline = Date.now() + timeoutMs + 1000;
  while (pending > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  clearInterval(progress);
  await client.close().catch(() => {});
  // exit only once the (large) result has been written to the channel
  report(
    {
      type: 'result',
      startedAt: started,
      intended: intended.slice(sent),
      latency: latency.slice(sent),
      outcome: outcome.slice(sent),
      outcomes: OUTCOMES,
      unfinishedCode: UNFINISHED,
      counts,
      sent,
      unfinished: pending,
      examples: [...examples].sort((a, b) => b[1] - a[1]).map(([text, n]) => `${n} × ${text}`),
    },
    () => {
      process.disconnect?.();
      process.exit(0);
    },
  );
}

process.on('message', (message) => {
  if (message?.type === 'stop') void finish();
});
process.on('SIGTERM', () => void finish());
setTimeout(() => void finish(), Number(args['max-seconds']) * 1000).unref();
