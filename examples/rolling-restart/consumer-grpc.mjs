// The consumer process of the rolling-restart demo over gRPC (`--protocol grpc`): the open-loop load of
// load.mjs, as consumer.mjs sends it (20 % "writes" stand for the POSTs), calling demo.Work/Do through
// either
//   lossless  @lossless/grpc/client: a grpc-js client of lossless:///SERVICE (warm-up weights,
//             ejection on the marker and on GOAWAY, retries of what was not sent)
//   plain     one grpc-js client per instance the registry lists, in round robin, no retries: what
//             most callers do.
// Started with fork(): reports progress and, when told to stop (or after --max-seconds), its results.

import * as grpc from '@grpc/grpc-js';
import { registryFromUrl } from '@lossless/core';
import { createDiscovery } from '@lossless/grpc/client';
import { createNacosRegistry } from '@lossless/nacos';
import { flags } from './flags.mjs';
import { WorkClient } from './grpc-service.mjs';
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
  },
  `Usage: node examples/rolling-restart/consumer-grpc.mjs [--client lossless|plain] [--registry URL]
  [--service NAME] [--rate N] [--seed N] [--max-seconds S] [--timeout-ms MS]
Started by demo.mjs --protocol grpc with fork(): results go back over IPC.`,
);
const schemes = { nacos: createNacosRegistry };
const rate = Number(args.rate);
const timeoutMs = Number(args['timeout-ms']);
const insecure = grpc.credentials.createInsecure();

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

runLoad({
  client: makeClient(),
  classify,
  describe: (error) =>
    `${grpc.status[error?.code] ?? error?.code ?? ''} ${String(error?.details ?? error?.message ?? error)}`,
  rate,
  seed: Number(args.seed),
  timeoutMs,
  maxSeconds: Number(args['max-seconds']),
});
