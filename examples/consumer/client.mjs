// A caller of a lossless provider through @lossless/client: it calls `http://<service><path>` at a
// constant rate, finds the instances in the registry, and prints one JSON line per second (requests
// sent, answered ok, failed, marked by a draining instance, in flight; totals since the start) and a
// summary at the end. Start a provider, run this beside it, restart the provider: `failed` stays 0.
//
//   node examples/consumer/client.mjs [--registry URL] [--service NAME] [--path /hello] [--rate N]
//     [--duration S] [--timeout-ms MS] [--allow-remote] [--metrics-port N]
//
// --registry  file:///dir, static://host:port,... or nacos://host:8848 (default LOSSLESS_REGISTRY, else
//             the providers' default, a file registry in the temp dir)
// --rate      requests per second, 1..1000 (default 20); the load is open loop: a slow instance does not
//             slow the sending down, and latency is measured from each request's intended send time
// --duration  seconds to run, 1..3600 (default 30); 0 runs until SIGTERM or SIGINT (for a Deployment)
// --metrics-port  serve the client's Prometheus metrics (retries, markers, ejections, circuits, warm-up
//             weight per instance) on http://127.0.0.1:N/metrics; 0 picks a free port (logged)
// Bounded and on loopback by default: instances whose address is not loopback are skipped (and named
// once) unless --allow-remote is given. SIGTERM or SIGINT stops the load and prints the summary.
// Exit code 0 when no request failed, 1 when some did, 2 on bad arguments.

import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { createClient } from '@lossless/client';
import { DEFAULT_MARKER_HEADER, registryFromUrl } from '@lossless/core';
import { isLoopback } from '@lossless/core/internal';
import { prometheusMetrics } from '@lossless/core/metrics';
import { createNacosRegistry } from '@lossless/nacos';

const USAGE = `Usage: node examples/consumer/client.mjs [--registry URL] [--service NAME] [--path /hello] [--rate N]
  [--duration S] [--timeout-ms MS] [--allow-remote] [--metrics-port N]
  --registry      file:///dir, static://host:port,... or nacos://host:8848 (default LOSSLESS_REGISTRY, else a
                  file registry in the temp dir)
  --rate          requests per second, 1..1000 (default 20), open loop
  --duration      seconds to run, 0..3600 (default 30); 0 runs until SIGTERM or SIGINT
  --timeout-ms    per request, 1..60000 (default 5000)
  --allow-remote  call instances that are not on loopback
  --metrics-port  serve Prometheus metrics on http://127.0.0.1:N/metrics (0: a free port)`;
const args = flags(
  {
    registry: { type: 'string' },
    service: { type: 'string', default: 'hello-service' },
    path: { type: 'string', default: '/hello' },
    rate: { type: 'string', default: '20' },
    duration: { type: 'string', default: '30' },
    'timeout-ms': { type: 'string', default: '5000' },
    'allow-remote': { type: 'boolean', default: false },
    'metrics-port': { type: 'string' },
  },
  USAGE,
);

const log = (level, msg, fields = {}) =>
  console.log(JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }));
/** A bad flag value: the message and the usage on stderr, exit code 2. */
const fail = (message) => {
  console.error(`${message}\n\n${USAGE}`);
  process.exit(2);
};
const int = (name, min, max) => {
  const value = Number(args[name]);
  if (!Number.isInteger(value) || value < min || value > max) fail(`--${name} must be an integer in ${min}..${max}`);
  return value;
};
const rate = int('rate', 1, 1000);
const durationS = int('duration', 0, 3600);
const timeoutMs = int('timeout-ms', 1, 60_000);
if (!args.path.startsWith('/')) fail('--path must start with /');
// the same default as the providers', so that both find each other without flags
const registryUrl =
  args.registry ?? (process.env.LOSSLESS_REGISTRY?.trim() || pathToFileURL(join(tmpdir(), 'lossless-registry')).href);

// The registry, seen through a filter that keeps loopback instances only (unless --allow-remote).
let registry;
try {
  registry = registryFromUrl(registryUrl, { schemes: { nacos: createNacosRegistry } });
} catch (error) {
  fail(error.message);
}
const skipped = new Set();
const keep = (instances) =>
  instances.filter((instance) => {
    if (args['allow-remote'] || instance.ip === 'localhost' || isLoopback(instance.ip)) return true;
    if (!skipped.has(instance.id)) {
      skipped.add(instance.id);
      log('warn', 'skipping an instance that is not on loopback (pass --allow-remote to call it)', {
        instance: instance.id,
      });
    }
    return false;
  });
const view = {
  kind: registry.kind,
  readsBack: registry.readsBack,
  supportsEnable: registry.supportsEnable,
  register: (instance) => registry.register(instance),
  deregister: (instance) => registry.deregister(instance),
  setEnabled: (instance, enabled) => registry.setEnabled(instance, enabled),
  setWeight: (instance, weight) => registry.setWeight(instance, weight),
  list: async (service) => keep(await registry.list(service)),
  subscribe: (service, listener, onError) => registry.subscribe(service, (list) => listener(keep(list)), onError),
  close: () => registry.close(),
};

const client = createClient({ registry: view, timeoutMs });

let metricsServer;
if (args['metrics-port'] !== undefined) {
  const port = int('metrics-port', 0, 65535);
  const metrics = prometheusMetrics().track(client);
  metricsServer = createServer(async (req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': metrics.contentType }).end(await metrics.metrics());
  });
  await new Promise((resolve) => metricsServer.listen(port, '127.0.0.1', resolve));
  log('info', `metrics on http://127.0.0.1:${metricsServer.address().port}/metrics`, {
    metricsPort: metricsServer.address().port,
  });
}
const url = `http://${args.service}${args.path}`;
const redacted = registryUrl.replace(/(\/\/[^:/@]*:)[^/]*@/, '$1***@');
log('info', `calling ${url} at ${rate} req/s for ${durationS === 0 ? 'as long as it runs' : `${durationS} s`}`, {
  registry: redacted,
  pid: process.pid,
});

const totals = { sent: 0, ok: 0, failed: 0, marked: 0 };
const failures = {}; // reason -> count
const servedBy = {}; // pid reported by the provider -> count
// latency histogram in 1 ms steps, up to the request timeout: fixed memory however long it runs
const latencyBins = new Uint32Array(timeoutMs + 2000);
let inFlight = 0;

async function call(intendedAt) {
  totals.sent++;
  inFlight++;
  let outcome;
  try {
    const res = await client.request(url);
    const text = await res.body.text();
    if (res.headers[DEFAULT_MARKER_HEADER] !== undefined) totals.marked++;
    if (res.statusCode < 400) {
      outcome = 'ok';
      const pid = pidOf(text);
      if (pid !== undefined) servedBy[pid] = (servedBy[pid] ?? 0) + 1;
    } else outcome = `status ${res.statusCode}`;
  } catch (error) {
    // a spent retry budget reports what actually failed as its cause
    outcome = error?.code ?? error?.cause?.code ?? error?.name ?? 'error';
    if (error?.code === 'LOSSLESS_ERR_RETRY_BUDGET' && error.cause?.code) outcome += ` (${error.cause.code})`;
  }
  inFlight--;
  latencyBins[Math.min(latencyBins.length - 1, Math.round(performance.now() - intendedAt))]++;
  if (outcome === 'ok') totals.ok++;
  else {
    totals.failed++;
    failures[outcome] = (failures[outcome] ?? 0) + 1;
  }
}

function pidOf(text) {
  try {
    const pid = JSON.parse(text)?.pid;
    return typeof pid === 'number' ? `pid ${pid}` : undefined;
  } catch {
    return undefined;
  }
}

// Open loop: every tick sends each request whose intended time has come.
const t0 = performance.now();
const interval = 1000 / rate;
let next = 0;
let stopping = false;
const pending = new Set();
const tick = setInterval(() => {
  const now = performance.now() - t0;
  while (!stopping && next * interval <= now) {
    const p = call(t0 + next * interval);
    pending.add(p);
    p.finally(() => pending.delete(p));
    next++;
  }
}, 2);

let second = 0;
const perSecond = setInterval(() => {
  second++;
  log('info', 'load', { second, ...totals, inFlight });
}, 1000);

async function finish(why) {
  if (stopping) return;
  stopping = true;
  clearInterval(tick);
  // what is in flight gets its answer (each request is bounded by --timeout-ms)
  const deadline = new Promise((resolve) => setTimeout(resolve, timeoutMs + 1000).unref());
  await Promise.race([Promise.allSettled([...pending]), deadline]);
  clearInterval(perSecond);
  const count = latencyBins.reduce((sum, n) => sum + n, 0);
  const at = (q) => {
    if (count === 0) return null;
    let seen = 0;
    for (let ms = 0; ms < latencyBins.length; ms++) {
      seen += latencyBins[ms];
      if (seen >= Math.max(1, Math.ceil(q * count))) return ms;
    }
    return latencyBins.length - 1;
  };
  log('info', 'summary', {
    why,
    service: args.service,
    seconds: Math.round(performance.now() - t0) / 1000,
    ...totals,
    unfinished: inFlight,
    failures,
    servedBy,
    latencyMs: { p50: at(0.5), p99: at(0.99), max: at(1) },
  });
  metricsServer?.close();
  await client.close().catch(() => {});
  await registry.close().catch(() => {});
  process.exit(totals.failed === 0 && inFlight === 0 ? 0 : 1);
}

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    if (stopping) process.exit(130); // a second signal: stop waiting
    void finish(signal);
  });
}
if (durationS > 0) setTimeout(() => void finish('duration over'), durationS * 1000);

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
