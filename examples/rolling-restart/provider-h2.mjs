// One HTTP/2 provider process of the rolling-restart demo (`--protocol h2`): a node:http2 secure
// server (TLS, allowHTTP1) with the demo's self-signed certificate, in the demo's shutdown modes:
//   lossless     @lossless/core on the http2 server: delayed registration, the marker on every
//                response, GOAWAY on every session, adaptive drain, sessions closed at the end
//   naive        registers at once; exits on SIGTERM (Node's default)
//   close-only   registers at once; on SIGTERM the http2 server's own close(), exit once closed:
//                it leaves sessions open (nodejs/node#57611), so it waits until killed
//   fixed-sleep  registers at once; on SIGTERM deregister, sleep --sleep-ms, close, exit
// As provider.mjs does for HTTP/1.1: core's in-flight tracker counts requests (measurement only) and
// JSON events go to stdout (measure.mjs: ready, sigterm, exit). GET/POST /work?ms=N answers 200 after N ms.
//
//   node provider-h2.mjs --tls-dir DIR --registry URL [--mode M] [--service S] [--name N]
//     [--quiet-window-ms MS] [--sleep-ms MS]        (DIR holds key.pem and cert.pem)

import { readFileSync } from 'node:fs';
import { createSecureServer } from 'node:http2';
import { join } from 'node:path';
import { createProvider, registryFromUrl } from '@lossless/core';
import { InFlightTracker } from '@lossless/core/internal';
import { createNacosRegistry } from '@lossless/nacos';
import { flags, usageError } from './flags.mjs';
import { drainMeasure, trackerLoad } from './measure.mjs';

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
// measurement, identical in every mode
const tracker = new InFlightTracker();
const measure = drainMeasure({
  name: args.name,
  mode: args.mode,
  quietWindowMs: Number(args['quiet-window-ms']),
  load: trackerLoad(tracker),
  protocol: 'h2',
});
const { emit, onSigterm, reportExit } = measure;
const server = createSecureServer(
  {
    key: readFileSync(join(args['tls-dir'], 'key.pem')),
    cert: readFileSync(join(args['tls-dir'], 'cert.pem')),
    allowHTTP1: true,
  },
  (req, res) => {
    measure.arrived();
    res.on('close', measure.done);
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

tracker.attach(server);

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
  process.prependListener('SIGTERM', onSigterm);
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
    onSigterm();
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
