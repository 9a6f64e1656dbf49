// An express service made lossless with one call. Try it:
//   node examples/express-provider/server.mjs --port 3000
//   curl localhost:3000/hello            # served
//   curl localhost:9797/readyz           # 200 once registered
//   curl -N localhost:3000/events        # server-sent events, ended cleanly by the drain
//   curl localhost:9797/metrics          # Prometheus metrics (state, in flight, drains, registry calls)
//   kill -TERM <pid>                     # drains: deregisters, marks responses, exits when idle
// Options: --port, --host, --admin-port, --registry (file:///dir, static://..., nacos://...), --service,
// --quiet-window-ms, --warmup-ms (how long the warm-up hook takes), --warmup-window-ms (consumers' warm-up window). Environment variables LOSSLESS_REGISTRY, LOSSLESS_ADMIN_PORT... work too.

import { parseArgs } from 'node:util';
import { prometheusMetrics } from '@lossless/core/metrics';
import { lossless } from '@lossless/express';
import { createNacosRegistry } from '@lossless/nacos';
import express from 'express';
import { collectDefaultMetrics } from 'prom-client';

const args = flags(
  {
    port: { type: 'string', default: process.env.PORT ?? '3000' },
    host: { type: 'string', default: '127.0.0.1' },
    'admin-port': { type: 'string' },
    registry: { type: 'string' },
    service: { type: 'string', default: 'hello-service' },
    'quiet-window-ms': { type: 'string' },
    'warmup-ms': { type: 'string', default: '100' },
    'warmup-window-ms': { type: 'string' },
  },
  `Usage: node examples/express-provider/server.mjs [--port N] [--host ADDR] [--admin-port N] [--registry URL]
  [--service NAME] [--quiet-window-ms MS] [--warmup-ms MS]
  --registry  file:///dir, static://host:port,... or nacos://host:8848 (default LOSSLESS_REGISTRY, else a
              file registry in the temp dir); LOSSLESS_ADMIN_PORT and the other LOSSLESS_* variables work too`,
);
// lossless takes any pino-compatible logger; this one prints JSON lines without a dependency.
const log = (level) => (fields, msg) =>
  console.log(JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }));
const logger = { debug: () => {}, info: log('info'), warn: log('warn'), error: log('error') };

const app = express();
let greetings = [];

// lossless' metrics beside the process' own, served on the admin port as GET /metrics
const metrics = prometheusMetrics();
collectDefaultMetrics({ register: metrics.register });

const provider = lossless(app, {
  service: args.service,
  registry: args.registry, // undefined: LOSSLESS_REGISTRY, else a file registry in the temp dir
  registrySchemes: { nacos: createNacosRegistry }, // so that --registry nacos://host:8848 works
  admin: args['admin-port'] === undefined ? {} : { port: Number(args['admin-port']) },
  drain: args['quiet-window-ms'] === undefined ? {} : { quietWindowMs: Number(args['quiet-window-ms']) },
  // the consumers' warm-up window (and, on Nacos, the provider's own weight ramp): default 60 s
  ...(args['warmup-window-ms'] === undefined ? {} : { warmupWindowMs: Number(args['warmup-window-ms']) }),
  // registered only after this resolves: no caller ever sees an instance without its greetings
  warmups: [
    {
      name: 'load-greetings',
      timeoutMs: 5000,
      run: async () => {
        await new Promise((resolve) => setTimeout(resolve, Number(args['warmup-ms']))); // stands for a database read
        greetings = ['hello', 'hallo', 'bonjour', 'ni hao'];
      },
    },
  ],
  logger,
  metrics,
});

app.get('/hello', (_req, res) => {
  res.json({ greeting: greetings[Math.floor(Math.random() * greetings.length)], pid: process.pid });
});

// Slow work, to watch a drain wait for it: /work?ms=1500
app.get('/work', (req, res) => {
  const ms = Math.min(Number(req.query.ms ?? 100), 60_000);
  setTimeout(() => res.json({ workedMs: ms, pid: process.pid }), ms);
});

// Server-sent events, a tick a second. Declared as a stream, it does not hold the drain open: once the
// drain's wait is over it says goodbye and ends, and the caller reconnects to another instance.
app.get('/events', (_req, res) => {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
  res.write('retry: 1000\n\n');
  const tick = setInterval(() => res.write(`event: tick\ndata: ${Date.now()}\n\n`), 1000);
  res.on('close', () => clearInterval(tick));
  provider.stream(res, (stream) => stream.end('event: bye\ndata: going offline, reconnect\n\n'));
});

app.post('/orders', express.json(), (req, res) => {
  res.status(201).json({ accepted: req.body ?? null, pid: process.pid });
});

try {
  const server = await provider.listen(Number(args.port), args.host);
  const { port } = server.address();
  logger.info(
    { port, adminPort: provider.adminAddress?.port, pid: process.pid },
    `listening on http://${args.host}:${port}`,
  );
} catch (error) {
  // a drain (SIGTERM) during start-up ends the start: the drain itself still runs to the end
  if (error.code !== 'LOSSLESS_ERR_START_ABORTED') {
    logger.error({ err: error.message, code: error.code }, 'start-up failed: not registered, not ready');
    process.exitCode = 1;
  }
}

/** node:util's parseArgs plus --help; a wrong flag prints its name and the usage, exit code 2. */
function flags(options, usage) {
  let values;
  try {
    ({ values } = parseArgs({ options: { ...options, help: { type: 'boolean', short: 'h', default: false } } }));
  } catch (error) {
    if (!String(error?.code).startsWith('ERR_PARSE_ARGS')) throw error;
    // the first sentence of node's message names the flag: "Unknown option '--x'"
    console.error(`${error.message.split('. ')[0]}\n\n${usage}`);
    process.exit(2);
  }
  if (values.help) {
    console.log(usage);
    process.exit(0);
  }
  return values;
}
