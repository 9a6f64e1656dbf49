// The consumer process of the rolling-restart demo over gRPC (`--protocol grpc`): the same open-loop
// load as consumer.mjs (a fixed arrival rate, latency from each call's intended send time, the same
// request mix: 20 % "writes" stand for the POSTs), calling demo.Work/Do through either
//   lossless  @lossless/grpc/client: a grpc-js client of lossless:///SERVICE (warm-up weights,
//             ejection on the marker and on GOAWAY, retries of what was not sent)
//   plain     one grpc-js client per instance the registry lists, in round robin, no retries: what
//             most callers do.
// Started with fork(): reports progress and, when told to stop (or after --max-seconds), its results.

import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { registryFromUrl } from '@lossless/core';
import { createDiscovery } from '@lossless/grpc/client';
import { createNacosRegistry } from '@lossless/nacos';
import { WorkClient } from './grpc-service.mjs';

const { values: args } = parseArgs({
  options: {
    client: { type: 'string', default: 'lossless' },
    registry: { type: 'string' },
    service: { type: 'string', default: 'demo-service' },
    rate: { type: 'string', default: '200' },
    seed: { type: 'string', default: '1' },
    'max-seconds': { type: 'string', default: '300' },
    'timeout-ms': { type: 'string', default: '10000' },
  },
});
const schemes = { nacos: createNacosRegistry };
const rate = Number(args.rate);
const timeoutMs = Number(args['timeout-ms']);
const insecure = grpc.credentials.createInsecure();

// mulberry32: the same request mix for the same seed
let state = Number(args.seed) >>> 0;
const random = () => {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
/** About 95 % fast (~1 ms), 5 % ~200 ms, 0.1 % ~2 s; 20 % writes. */
function nextRequest() {
  const r = random();
  const ms = r < 0.001 ? 2000 : r < 0.051 ? 200 : 1;
  return { ms, method: random() < 0.2 ? 'POST' : 'GET' };
}

/** One call; resolves with 200 for OK, rejects with the gRPC error otherwise. */
function work(client, { ms, method }) {
  return new Promise((resolve, reject) => {
    client.do({ ms, write: method === 'POST' }, { deadline: Date.now() + timeoutMs }, (error) =>
      error ? reject(error) : resolve(200),
    );
  });
}

function makeClient() {
  if (args.client === 'lossless') {
    const discovery = createDiscovery({
      registry: args.registry,
      registrySchemes: schemes,
      // the demo's instances are new together at start-up; warm-up applies to replacements
      warmup: { windowMs: 5000 },
    });
    const client = new WorkClient(`lossless:///${args.service}`, insecure, discovery.clientOptions);
    return {
      send: (request) => work(client, request),
      close: async () => {
        client.close();
        await discovery.close();
      },
    };
  }
  // plain: round robin over what the registry lists, one grpc-js client per instance, no retries
  const registry = registryFromUrl(args.registry, { schemes });
  let clients = [];
  const byAddress = new Map();
  let next = 0;
  const ready = new Promise((resolve) => {
    registry.subscribe(args.service, (instances) => {
      clients = instances
        .filter((i) => i.enabled && i.healthy && i.weight > 0)
        .map((i) => {
          const address = `${i.ip}:${i.port}`;
          if (!byAddress.has(address)) byAddress.set(address, new WorkClient(address, insecure));
          return byAddress.get(address);
        });
      if (clients.length > 0) resolve();
    });
  });
  return {
    send: async (request) => {
      await ready;
      return work(clients[next++ % clients.length], request);
    },
    close: async () => {
      for (const c of byAddress.values()) c.close();
      await registry.close();
    },
  };
}

/** gRPC failures in the demo's classes: refused (never reached a server), reset, timeout, other. */
function classify(error) {
  const { code, details = '' } = error ?? {};
  if (code === grpc.status.UNAVAILABLE && /ECONNREFUSED|No connection established|could be reached/.test(details))
    return 'refused';
  if (code === grpc.status.UNAVAILABLE || code === grpc.status.CANCELLED) return 'reset';
  if (code === grpc.status.DEADLINE_EXCEEDED) return 'timeout';
  return 'other';
}

const client = makeClient();
const started = Date.now();
const t0 = performance.now();
// per request: intended time (ms since start), latency (ms), outcome
const intended = [];
const latency = [];
const outcome = []; // 'ok' | 'refused' | 'reset' | 'status5xx' | 'timeout' | 'other'
const counts = { ok: 0, refused: 0, reset: 0, status5xx: 0, timeout: 0, other: 0 };
const examples = new Map(); // failure message -> count
let sent = 0;
let stopping = false;
let pending = 0;

function fire(i, at) {
  const request = nextRequest();
  sent++;
  pending++;
  intended[i] = at;
  client
    .send(request)
    .then(
      (status) => (status >= 500 ? 'status5xx' : 'ok'),
      (error) => {
        const kind = classify(error);
        const text = `${kind}: ${grpc.status[error?.code] ?? error?.code ?? ''} ${String(
          error?.details ?? error?.message ?? error,
        )
          .replace(/\d+\.\d+\.\d+\.\d+:\d+/g, 'IP:PORT')
          .replace(/"demo-\d+"/, '"demo"')}`;
        if (examples.size < 20 || examples.has(text)) examples.set(text, (examples.get(text) ?? 0) + 1);
        return kind;
      },
    )
    .then((kind) => {
      latency[i] = performance.now() - t0 - at;
      outcome[i] = kind;
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
      intended,
      latency,
      outcome,
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
