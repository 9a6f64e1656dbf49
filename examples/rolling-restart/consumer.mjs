// The consumer process of the rolling-restart demo: the open-loop load of load.mjs, through either
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
import { runLoad } from './load.mjs';

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

runLoad({
  client: makeClient(),
  classify,
  describe: (error) => `${error?.code ?? ''} ${String(error?.message ?? error)}`,
  rate,
  seed: Number(args.seed),
  timeoutMs,
  maxSeconds: Number(args['max-seconds']),
});
