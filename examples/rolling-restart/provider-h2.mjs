// One HTTP/2 provider process of the rolling-restart demo (`--protocol h2`): a node:http2 secure
// server (TLS, allowHTTP1) with the demo's self-signed certificate, in the demo's shutdown modes:
//   lossless     @lossless/core on the http2 server: delayed registration, the marker on every
//                response, GOAWAY on every session, adaptive drain, sessions closed at the end
//   naive        registers at once; exits on SIGTERM (Node's default)
//   close-only   registers at once; on SIGTERM the http2 server's own close(), exit once closed:
//                it leaves sessions open (nodejs/node#57611), so it waits until killed
//   fixed-sleep  registers at once; on SIGTERM deregister, sleep --sleep-ms, close, exit
// As provider.mjs does for HTTP/1.1: core's in-flight tracker counts requests (measurement only) and
// JSON events go to stdout (ready, sigterm, exit). GET/POST /work?ms=N answers 200 after N ms.
//
//   node provider-h2.mjs --tls-dir DIR --registry URL [--mode M] [--service S] [--name N]
//     [--quiet-window-ms MS] [--sleep-ms MS]        (DIR holds key.pem and cert.pem)

import diagnosticsChannel from 'node:diagnostics_channel';
import { readFileSync } from 'node:fs';
import { createSecureServer } from 'node:http2';
import { join } from 'node:path';
import { CHANNELS, createProvider, registryFromUrl } from '@lossless/core';
import { InFlightTracker } from '@lossless/core/internal';
import { createNacosRegistry } from '@lossless/nacos';
import { flags, usageError } from './flags.mjs';

const USAGE = `Usage: node examples/rolling-restart/provider-h2.mjs --tls-dir DIR --registry URL [--mode MODE]
  [--service NAME] [--name N] [--quiet-window-ms MS] [--sleep-ms MS]
Started by demo.mjs --protocol h2: a node:http2 secure provider with the demo's certificate.`;
const args = flags(
  {
    mode: { type: 'string', default: 'lossless' },
    registry: { type: 'string' },
    'tls-dir': { type: 'string' },
    service: { type: 'string', default: 'demo-service' },
    name: { type: 'string', default: 'p' },
    'quiet-window-ms': { type: 'string', default: '1000' },
    'sleep-ms': { type: 'string', default: '3000' },
  },
  USAGE,
);
if (args['tls-dir'] === undefined) usageError('--tls-dir is required (a folder with key.pem and cert.pem)', USAGE);
const schemes = { nacos: createNacosRegistry };
const emit = (event, fields = {}) =>
  console.log(JSON.stringify({ event, name: args.name, pid: process.pid, protocol: 'h2', ...fields }));

let lastArrivalAt = 0;
let lastDoneAt = 0;
const server = createSecureServer(
  {
    key: readFileSync(join(args['tls-dir'], 'key.pem')),
    cert: readFileSync(join(args['tls-dir'], 'cert.pem')),
    allowHTTP1: true,
  },
  (req, res) => {
    lastArrivalAt = Date.now();
    res.on('close', () => {
      lastDoneAt = Date.now();
    });
    const url = new URL(req.url, 'https://x');
    if (url.pathname !== '/work') {
      res.statusCode = 404;
      res.end();
      return;
    }
    req.resume();
    const ms = Math.min(Number(url.searchParams.get('ms') ?? 1), 10_000);
    const answer = () => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ name: args.name, workedMs: ms }));
    };
    if (ms <= 0) answer();
    else setTimeout(answer, ms);
  },
);

// measurement, identical in every mode
const tracker = new InFlightTracker();
tracker.attach(server);
let sigtermAt;
let arrivedBefore = 0;
let registryLeftAt;
diagnosticsChannel.subscribe(CHANNELS.registry, ({ operation, ok }) => {
  if (operation !== 'register' && ok) registryLeftAt = Date.now();
});
const onSigtermMeasure = () => {
  sigtermAt = Date.now();
  arrivedBefore = tracker.total;
  const remaining = tracker
    .snapshot()
    .map((r) => Number(new URL(r.url, 'http://x').searchParams.get('ms') ?? 0) - r.ageMs);
  emit('sigterm', {
    inFlight: tracker.size,
    longestInFlightMs: Math.round(tracker.oldestAgeMs()),
    longestRemainingMs: Math.round(Math.max(0, ...remaining)),
  });
};
const reportExit = () => {
  const now = Date.now();
  const quiet = Number(args['quiet-window-ms']);
  const conditionAt = Math.max(lastDoneAt, Math.max(lastArrivalAt, registryLeftAt ?? sigtermAt) + quiet);
  emit('exit', {
    arrivedAfterSigterm: tracker.total - arrivedBefore,
    drainMs: now - sigtermAt,
    lastArrivalAfterSigtermMs: Math.max(0, lastArrivalAt - sigtermAt),
    exitDelayMs: args.mode === 'lossless' ? now - conditionAt : null,
  });
};

if (args.mode === 'lossless') {
  const provider = createProvider({
    service: args.service,
    server,
    registry: args.registry,
    registrySchemes: schemes,
    admin: { port: 0 },
    drain: { quietWindowMs: Number(args['quiet-window-ms']) },
    exit: (code) => {
      reportExit();
      process.exit(code);
    },
  });
  process.prependListener('SIGTERM', onSigtermMeasure);
  server.listen(0, '127.0.0.1');
  await provider.start();
  emit('ready', { port: server.address().port, adminPort: provider.adminAddress?.port });
} else {
  const registry = registryFromUrl(args.registry, { schemes });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = server.address().port;
  const instance = {
    service: args.service,
    id: `127.0.0.1:${port}`,
    ip: '127.0.0.1',
    port,
    weight: 100,
    enabled: true,
    healthy: true,
    metadata: { 'lossless.registered-at': String(Date.now()), secure: 'true' },
  };
  await registry.register(instance);
  emit('ready', { port });
  process.on('SIGTERM', async () => {
    onSigtermMeasure();
    if (args.mode === 'naive') {
      reportExit();
      process.exit(0);
    }
    if (args.mode === 'fixed-sleep') {
      await registry.deregister(instance).catch(() => {});
      await new Promise((resolve) => setTimeout(resolve, Number(args['sleep-ms'])));
    }
    server.close(() => {
      reportExit();
      process.exit(0);
    });
  });
}
