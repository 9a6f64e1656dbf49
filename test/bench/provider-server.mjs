// One provider of the provider benchmark (provider-overhead.mjs), in its own process: GET / answers
// 200 "ok" (text/plain, keep-alive), on 127.0.0.1 and an ephemeral port, with or without lossless:
//   http               node:http createServer
//   http-lossless      the same server under createProvider({ ..., server }) + start()
//   express            express 5 app.listen()
//   express-lossless   the same app under @lossless/express: lossless(app, {...}).listen()
//   fastify            fastify 5 app.listen()
//   fastify-lossless   the same app under @lossless/fastify: lossless(app, {...}).listen()
//   http2              node:http2 createServer (h2c), the compat API's 'request' event
//   http2-lossless     the same server under createProvider({ ..., server }) + start()
//   grpc               @grpc/grpc-js Server, the demo's unary demo.Work/Do (grpc-service.mjs) answering at once
//   grpc-lossless      the same server under @lossless/grpc: lossless(server, {...}).listen()
// The lossless variants use a static registry (registration is a no-op), no admin server, no signal
// handlers and no exit: only the request path differs from the bare variant. They print their port
// only once the provider is ready.
//
//   node test/bench/provider-server.mjs --variant NAME [--max-ms 600000]
//
// Prints its port on stdout, then answers one line of JSON per line read on stdin:
//   "sample" -> {"cpuUs": user+system µs of the process so far, "elu": {idle, active} ms, "tracked": n | null}
//               (tracked: requests the lossless tracker has seen, null without lossless)
//   "gc"     -> {"gc": true | false} after a full collection (true when --expose-gc was given)
// It exits when its parent closes stdin (so it never outlives the benchmark, even when that is
// killed), on SIGTERM/SIGINT, or after --max-ms whatever happens.

import { createServer } from 'node:http';
import { createServer as createH2cServer } from 'node:http2';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { flags } from './report.mjs';

const VARIANTS = [
  'http',
  'http-lossless',
  'express',
  'express-lossless',
  'fastify',
  'fastify-lossless',
  'http2',
  'http2-lossless',
  'grpc',
  'grpc-lossless',
];

const values = flags(
  { variant: { type: 'string' }, 'max-ms': { type: 'string', default: '600000' } },
  `Usage: node test/bench/provider-server.mjs --variant ${VARIANTS.join('|')} [--max-ms MS]\nStarted by provider-overhead.mjs.`,
);
const variant = values.variant;
if (!VARIANTS.includes(variant)) throw new Error(`--variant: expected one of ${VARIANTS.join(', ')}, got ${variant}`);
const maxMs = Number(values['max-ms']);
if (!Number.isFinite(maxMs) || maxMs <= 0) throw new Error(`--max-ms: expected a positive number, got ${maxMs}`);

setTimeout(() => {
  process.stderr.write(`provider-server ${variant}: --max-ms ${maxMs} reached, exiting\n`);
  process.exit(3);
}, maxMs).unref();

const HOST = '127.0.0.1';
const BODY = Buffer.from('ok');
const HEADERS = { 'content-type': 'text/plain', 'content-length': String(BODY.length) };
/** Everything but the request path is switched off: a static registry makes registration a no-op. */
const LOSSLESS_OPTIONS = {
  service: 'bench-provider',
  registry: 'static://127.0.0.1:1',
  admin: false,
  signals: false,
  exit: false,
};

/** @type {{ port: number, tracker: { total: number } | undefined }} */
const { port, tracker } = await start(variant);

async function start(name) {
  switch (name) {
    case 'http':
    case 'http-lossless':
    case 'http2':
    case 'http2-lossless': {
      const handler = (req, res) => {
        req.resume();
        res.writeHead(200, HEADERS);
        res.end(BODY);
      };
      const server = name.startsWith('http2') ? createH2cServer(handler) : createServer(handler);
      let provider;
      if (name.endsWith('-lossless')) {
        const { createProvider } = await import('@lossless/core');
        provider = createProvider({ ...LOSSLESS_OPTIONS, server });
      }
      await new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, HOST, resolve);
      });
      await provider?.start();
      assertReady(provider);
      return { port: server.address().port, tracker: provider?.tracker };
    }
    case 'express':
    case 'express-lossless': {
      const { default: express } = await import('express');
      const app = express();
      app.get('/', (_req, res) => {
        res.type('text/plain').send('ok');
      });
      if (name === 'express') {
        const server = await new Promise((resolve, reject) => {
          const s = app.listen(0, HOST, (error) => (error ? reject(error) : resolve(s)));
        });
        return { port: server.address().port, tracker: undefined };
      }
      const { lossless } = await import('@lossless/express');
      const provider = lossless(app, LOSSLESS_OPTIONS);
      const server = await provider.listen(0, HOST);
      assertReady(provider);
      return { port: server.address().port, tracker: provider.tracker };
    }
    case 'fastify':
    case 'fastify-lossless': {
      const { default: Fastify } = await import('fastify');
      const app = Fastify({ logger: false });
      app.get('/', (_request, reply) => {
        reply.type('text/plain').send('ok');
      });
      if (name === 'fastify') {
        await app.listen({ port: 0, host: HOST });
        return { port: app.server.address().port, tracker: undefined };
      }
      const { lossless } = await import('@lossless/fastify');
      const provider = lossless(app, LOSSLESS_OPTIONS);
      const address = await provider.listen({ port: 0, host: HOST });
      assertReady(provider);
      return { port: address.port, tracker: provider.tracker };
    }
    case 'grpc':
    case 'grpc-lossless': {
      const grpc = await import('@grpc/grpc-js');
      const { workService } = await import('../../examples/rolling-restart/grpc-service.mjs');
      const server = new grpc.Server();
      server.addService(workService, { do: (_call, callback) => callback(null, { ok: true }) });
      const credentials = grpc.ServerCredentials.createInsecure();
      if (name === 'grpc') {
        const port = await new Promise((resolve, reject) =>
          server.bindAsync(`${HOST}:0`, credentials, (error, p) => (error ? reject(error) : resolve(p))),
        );
        return { port, tracker: undefined };
      }
      const { lossless } = await import('@lossless/grpc');
      const provider = lossless(server, { ...LOSSLESS_OPTIONS, health: false });
      const port = await provider.listen(`${HOST}:0`, credentials);
      assertReady(provider);
      return { port, tracker: provider.tracker };
    }
    default:
      throw new Error(`unknown variant ${name}`);
  }
}

function assertReady(provider) {
  if (provider !== undefined && provider.state !== 'ready')
    throw new Error(`the provider is ${provider.state} (${provider.reason}), not ready`);
}

// ---------------------------------------------------------------------------------------------
// control channel

process.stdout.write(`${port}\n`);

const stop = () => process.exit(0);
const lines = createInterface({ input: process.stdin });
lines.on('close', stop);
lines.on('line', (line) => {
  const command = line.trim();
  if (command === 'sample') {
    const cpu = process.cpuUsage();
    const { idle, active } = performance.eventLoopUtilization();
    reply({ cpuUs: cpu.user + cpu.system, elu: { idle, active }, tracked: tracker?.total ?? null });
  } else if (command === 'gc') {
    const gc = globalThis.gc;
    gc?.();
    reply({ gc: typeof gc === 'function' });
  } else {
    reply({ error: `unknown command ${JSON.stringify(command)}` });
  }
});
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

function reply(value) {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}
