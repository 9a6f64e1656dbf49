// One provider process of the rolling-restart demo. The same express app in four shutdown modes:
//   lossless     @lossless/express: delayed registration, marker, adaptive drain
//   naive        registers at once; exits on SIGTERM (Node's default)
//   close-only   registers at once; on SIGTERM server.close(), exit once closed
//   fixed-sleep  registers at once; on SIGTERM deregister, sleep --sleep-ms, close, exit (the seed's recipe)
// Every mode counts its requests with core's in-flight tracker (measurement only) and prints JSON
// events on stdout: ready, sigterm (what was in flight), exit (requests that arrived after SIGTERM).
// GET/POST /work?ms=N answers 200 after N ms.

import diagnosticsChannel from 'node:diagnostics_channel';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { CHANNELS, InFlightTracker, registryFromUrl } from '@lossless/core';
import { lossless } from '@lossless/express';
import { createNacosRegistry } from '@lossless/nacos';
import express from 'express';

const { values: args } = parseArgs({
  options: {
    mode: { type: 'string', default: 'lossless' },
    registry: { type: 'string' },
    service: { type: 'string', default: 'demo-service' },
    name: { type: 'string', default: 'p' },
    'quiet-window-ms': { type: 'string', default: '1000' },
    'sleep-ms': { type: 'string', default: '3000' },
  },
});
const schemes = { nacos: createNacosRegistry };
const emit = (event, fields = {}) =>
  console.log(JSON.stringify({ event, name: args.name, pid: process.pid, ...fields }));

const app = express();
// when the last request arrived and the last response closed (ms, wall clock), for the drain's
// exit condition: nothing in flight, and the quiet window passed since max(last arrival, registry left)
let lastArrivalAt = 0;
let lastDoneAt = 0;
app.use((_req, res, next) => {
  lastArrivalAt = Date.now();
  res.on('close', () => {
    lastDoneAt = Date.now();
  });
  next();
});
app.all('/work', (req, res) => {
  const ms = Math.min(Number(req.query.ms ?? 1), 10_000);
  const answer = () => res.json({ name: args.name, workedMs: ms });
  if (ms <= 0) answer();
  else setTimeout(answer, ms);
});

// measurement, identical in every mode
const tracker = new InFlightTracker();
let sigtermAt;
let arrivedBefore = 0;
let registryLeftAt;
diagnosticsChannel.subscribe(CHANNELS.registry, ({ operation, ok }) => {
  if (operation !== 'register' && ok) registryLeftAt = Date.now();
});
const onSigtermMeasure = () => {
  sigtermAt = Date.now();
  arrivedBefore = tracker.total;
  // the demo's requests say how long they take (?ms=N): what is left of the longest one
  const remaining = tracker
    .snapshot()
    .map((r) => Number(new URL(r.url, 'http://x').searchParams.get('ms') ?? 0) - r.ageMs);
  emit('sigterm', {
    inFlight: tracker.size,
    longestInFlightMs: Math.round(tracker.oldestAgeMs()),
    longestRemainingMs: Math.round(Math.max(0, ...remaining)),
  });
};
const reportExit = (extra = {}) => {
  const now = Date.now();
  // lossless: the moment its exit condition held; the time from there to the exit call is its own delay
  const quiet = Number(args['quiet-window-ms']);
  const conditionAt = Math.max(lastDoneAt, Math.max(lastArrivalAt, registryLeftAt ?? sigtermAt) + quiet);
  emit('exit', {
    arrivedAfterSigterm: tracker.total - arrivedBefore,
    drainMs: now - sigtermAt,
    lastArrivalAfterSigtermMs: Math.max(0, lastArrivalAt - sigtermAt),
    exitDelayMs: args.mode === 'lossless' ? now - conditionAt : null,
    ...extra,
  });
};

if (args.mode === 'lossless') {
  const provider = lossless(app, {
    service: args.service,
    registry: args.registry,
    registrySchemes: schemes,
    admin: { port: 0 },
    drain: { quietWindowMs: Number(args['quiet-window-ms']) },
    // lossless exits by itself once drained; report first
    exit: (code) => {
      reportExit();
      process.exit(code);
    },
  });
  process.prependListener('SIGTERM', onSigtermMeasure);
  const server = await provider.listen(0, '127.0.0.1');
  tracker.attach(server);
  emit('ready', { port: server.address().port, adminPort: provider.adminAddress?.port });
} else {
  const registry = registryFromUrl(args.registry, { schemes });
  const server = createServer(app);
  tracker.attach(server);
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
    metadata: { 'lossless.registered-at': String(Date.now()) },
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
    // close-only and fixed-sleep: stop accepting, let what is in flight finish, exit
    server.close(() => {
      reportExit();
      process.exit(0);
    });
  });
}
