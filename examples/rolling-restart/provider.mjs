// One provider process of the rolling-restart demo. The same service in several shutdown modes:
//   lossless          @lossless/express: delayed registration, marker, adaptive drain
//   naive             registers at once; exits on SIGTERM (Node's default)
//   close-only        registers at once; on SIGTERM server.close(), exit once closed
//   fixed-sleep       registers at once; on SIGTERM deregister, sleep --sleep-ms, close, exit
// and the libraries users pick instead, each set up as its README tells (Kubernetes users, where it
// has a word for them); none knows about a registry: they register at once, and the demo takes them
// out of it at SIGTERM, as Kubernetes takes a pod out of its Service's endpoints:
//   terminus          @godaddy/terminus: beforeShutdown sleeps 5 s ("the readiness probe's period"),
//                     then stoppable closes the server, destroying sockets still open after 1 s
//                     (timeout, default); useExit0
//   lightship         lightship: shutdownDelay 5000 ms (its default outside local mode, "should match
//                     readinessProbe.periodSeconds"), then the shutdown handler server.close(); exits
//                     when the event loop is empty, or with code 1 a second after the handlers ran
//   http-terminator   http-terminator: on SIGTERM terminate() at once: idle sockets destroyed,
//                     `connection: close` on the others, destroyed after gracefulTerminationTimeout
//                     (not set: 1000 ms in 3.2.0's code, although its README says 5000); exit 0 then
//   close-with-grace  close-with-grace: on SIGTERM await server.close(); `delay` 10000 ms (default)
//                     is a deadline for that close, not a pause before it; exit 0 then
//   fastify           the same routes on fastify (return503OnClosing: true, its default): on SIGTERM
//                     await app.close() (requests arriving while it closes get 503), exit 0 then
// Every mode counts its requests with core's in-flight tracker (measurement only) and prints JSON
// events on stdout (measure.mjs): ready, sigterm (what was in flight), exit (requests that arrived
// after SIGTERM).
// GET/POST /work?ms=N answers 200 after N ms.

import { createServer } from 'node:http';
import { Server as NetServer } from 'node:net';
import { registryFromUrl } from '@lossless/core';
import { InFlightTracker } from '@lossless/core/internal';
import { lossless } from '@lossless/express';
import { createNacosRegistry } from '@lossless/nacos';
import express from 'express';
import { flags, usageError } from './flags.mjs';
import { drainMeasure, trackerLoad } from './measure.mjs';
import { MODES } from './modes.mjs';

const USAGE = `Usage: node examples/rolling-restart/provider.mjs [--mode ${MODES.join('|')}]
  [--registry URL] [--service NAME] [--name NAME] [--quiet-window-ms MS] [--sleep-ms MS]
Started by demo.mjs: one provider process; JSON events on stdout.`;

const args = flags(
  {
    mode: { type: 'string', default: 'lossless' },
    registry: { type: 'string' },
    service: { type: 'string', default: 'demo-service' },
    name: { type: 'string', default: 'p' },
    'quiet-window-ms': { type: 'string', default: '1000' },
    'sleep-ms': { type: 'string', default: '3000' },
  },
  USAGE,
);
if (!MODES.includes(args.mode)) usageError(`--mode must be one of ${MODES.join(', ')}`, USAGE);
const schemes = { nacos: createNacosRegistry };
// measurement, identical in every mode
const tracker = new InFlightTracker();
const measure = drainMeasure({
  name: args.name,
  mode: args.mode,
  quietWindowMs: Number(args['quiet-window-ms']),
  load: trackerLoad(tracker),
});
const { emit, onSigterm, reportExit } = measure;
const onArrival = (_req, res) => {
  measure.arrived();
  res.on('close', measure.done);
};
const workMs = (query) => Math.min(Number(query.ms ?? 1), 10_000);

const app = express();
app.use((req, res, next) => {
  onArrival(req, res);
  next();
});
app.all('/work', (req, res) => {
  const ms = workMs(req.query);
  const answer = () => res.json({ name: args.name, workedMs: ms });
  if (ms <= 0) answer();
  else setTimeout(answer, ms);
});

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
  process.prependListener('SIGTERM', onSigterm);
  const server = await provider.listen(0, '127.0.0.1');
  tracker.attach(server);
  emit('ready', { port: server.address().port, adminPort: provider.adminAddress?.port });
} else {
  const registry = registryFromUrl(args.registry, { schemes });
  const { server, shutdown, listen } = await peer(args.mode);
  tracker.attach(server);
  await (listen?.() ?? new Promise((resolve) => server.listen(0, '127.0.0.1', resolve)));
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
  // the peers exit in their own ways (process.exit in the library, or an empty event loop): the
  // report goes out on 'exit' (stdout is a pipe, written synchronously on Linux)
  process.on('exit', () => reportExit());
  process.prependListener('SIGTERM', onSigterm);
  emit('ready', { port, instance });
  if (shutdown !== undefined) {
    process.on('SIGTERM', async () => {
      if (args.mode === 'naive') process.exit(0);
      if (args.mode === 'fixed-sleep') {
        await registry.deregister(instance).catch(() => {});
        await new Promise((resolve) => setTimeout(resolve, Number(args['sleep-ms'])));
      }
      await shutdown();
      process.exit(0);
    });
  }
}

/**
 * The server of a mode other than lossless, with the library's shutdown wired in. `shutdown`, when
 * returned, is what this script's own SIGTERM handler runs; the libraries that handle the signal
 * themselves return none. `listen`, when returned, replaces server.listen(0, '127.0.0.1').
 */
async function peer(mode) {
  const closeServer = (server) => new Promise((resolve) => server.close(() => resolve()));
  switch (mode) {
    case 'naive':
    case 'close-only':
    case 'fixed-sleep': {
      // close-only and fixed-sleep: stop accepting, let what is in flight finish, exit
      const server = createServer(app);
      return { server, shutdown: () => closeServer(server) };
    }
    case 'terminus': {
      const { createTerminus } = await import('@godaddy/terminus');
      const server = createServer(app);
      // "How to set Terminus up with Kubernetes?" in its README: delay the shutdown by the readiness
      // probe's period (5 s there), and exit with 0
      createTerminus(server, {
        beforeShutdown: () => new Promise((resolve) => setTimeout(resolve, 5000)),
        useExit0: true,
      });
      return { server };
    }
    case 'lightship': {
      const { createLightship } = await import('lightship');
      const server = createServer(app);
      const lightship = await onLoopback(() =>
        // shutdownDelay: its default on Kubernetes, written out because lightship sets 0 outside it
        createLightship({ shutdownDelay: 5000 }),
      );
      lightship.registerShutdownHandler(() => {
        server.close();
      });
      server.once('listening', () => lightship.signalReady());
      return { server };
    }
    case 'http-terminator': {
      const { createHttpTerminator } = await import('http-terminator');
      const server = createServer(app);
      const httpTerminator = createHttpTerminator({ server });
      return { server, shutdown: () => httpTerminator.terminate() };
    }
    case 'close-with-grace': {
      const { default: closeWithGrace } = await import('close-with-grace');
      const server = createServer(app);
      closeWithGrace({ delay: 10_000, logger: false }, async ({ err }) => {
        if (err) console.error(err);
        await closeServer(server);
      });
      return { server };
    }
    case 'fastify': {
      const { default: Fastify } = await import('fastify');
      const fastify = Fastify({ logger: false, return503OnClosing: true });
      fastify.all('/work', async (request) => {
        const ms = workMs(request.query);
        if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms));
        return { name: args.name, workedMs: ms };
      });
      fastify.server.on('request', onArrival);
      return {
        server: fastify.server,
        // through fastify, so that fastify.close() knows the server listens and closes it
        listen: () => fastify.listen({ port: 0, host: '127.0.0.1' }),
        shutdown: () => fastify.close(),
      };
    }
    default:
      throw new Error(`unknown mode ${mode}`);
  }
}

/**
 * lightship serves its probes on host 0.0.0.0, with no option to change it; the demo keeps every
 * socket on loopback, so the one listen call it makes is pointed at 127.0.0.1.
 */
async function onLoopback(create) {
  const listen = NetServer.prototype.listen;
  NetServer.prototype.listen = function (options, ...rest) {
    const loopback =
      typeof options === 'object' && options !== null && options.host === '0.0.0.0'
        ? { ...options, host: '127.0.0.1' }
        : options;
    return listen.call(this, loopback, ...rest);
  };
  try {
    return await create();
  } finally {
    NetServer.prototype.listen = listen;
  }
}
