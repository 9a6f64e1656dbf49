// What @lossless/client costs per request over plain undici, on loopback, in one run:
//   undici-pool-request      undici Pool.request on http://127.0.0.1:PORT (the floor)
//   lossless-request         createClient({ registry: 'static://127.0.0.1:PORT' }).request('http://bench-service/')
//   undici-fetch             undici fetch on http://127.0.0.1:PORT (its own Agent, as the global one)
//   lossless-fetch           the same client's fetch('http://bench-service/')
//   undici-agent-request     (only with --clients) undici.request(url, { dispatcher: Agent }): what
//                            lossless-request does minus the three interceptors
//   undici-agent-twin        (only with --clients) the same again: a client compared with itself
//                            shows how far two identical clients' ratio strays on this machine
//   undici-fetch-twin        (only with --clients) undici fetch again, the same control for fetch
// The provider is a separate process (echo-server.mjs). Every client is driven by the same
// closed-loop driver: --concurrency requests in flight, for --warmup then --duration seconds per
// round. Rounds are interleaved (A B C D, B C D A, ...) so that drift on a noisy machine spreads
// over all clients. Each ratio is given of the medians and as the median of the per-round ratios
// (paired: the two clients' rounds run next to each other), with a 95 % bootstrap interval of that
// median; on a noisy machine, many short rounds (--rounds 200 --duration 0.5) narrow it. Every
// dispatcher has undici's defaults: unlimited connections per origin, keep-alive 4 s, no
// pipelining; so each opens about --concurrency connections.
//
// With --isolate each client runs in a process of its own (the rounds still alternate, one client
// at a time), as an application runs one kind of client: in one process the clients share undici's
// code (V8 optimises it for all their handler shapes at once) and one heap (each one's garbage is
// collected during the others' rounds). Each client first runs one round that is not counted.
//
//   node test/bench/client-overhead.mjs [--rounds 5] [--duration 3] [--warmup 1] [--concurrency 50]
//                                       [--clients a,b,...] [--isolate] [--json FILE]
//
// Prints a table; with --json also writes the numbers and the machine. Exits 1 when a request failed.

import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { relative } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createClient } from '@lossless/client';
import { Agent, Pool, fetch as undiciFetch, request as undiciRequest } from 'undici';
import {
  exposeGc,
  flags,
  fmt,
  gitCommit,
  median,
  medianInterval,
  pct,
  quantile,
  render,
  versionOf,
} from './report.mjs';

const SERVER = fileURLToPath(new URL('./echo-server.mjs', import.meta.url));
const SERVICE_URL = 'http://bench-service/';
const MAX_SAMPLES_PER_ROUND = 2_000_000;
const MAX_ERRORS_PER_ROUND = 1000;

/** The provider process, once started. @type {import('node:child_process').ChildProcess | undefined} */
let server;
/** With --isolate, the processes that drive the clients. @type {import('node:child_process').ChildProcess[]} */
const workers = [];

const CLIENTS = {
  'undici-pool-request': { label: 'undici Pool.request', make: makePool },
  'lossless-request': { label: 'lossless request', make: makeLosslessRequest },
  'undici-fetch': { label: 'undici fetch', make: makeUndiciFetch },
  'lossless-fetch': { label: 'lossless fetch', make: makeLosslessFetch },
  'undici-agent-request': { label: 'undici request (Agent)', make: makeAgentRequest },
  'undici-agent-twin': { label: 'undici request (Agent), twin', make: makeAgentRequest },
  'undici-fetch-twin': { label: 'undici fetch, twin', make: makeUndiciFetch },
};
const DEFAULT_CLIENTS = ['undici-pool-request', 'lossless-request', 'undici-fetch', 'lossless-fetch'];
const RATIOS = [
  ['lossless request / Pool.request', 'lossless-request', 'undici-pool-request'],
  ['lossless request / undici fetch', 'lossless-request', 'undici-fetch'],
  ['lossless fetch / undici fetch', 'lossless-fetch', 'undici-fetch'],
  ['lossless request / undici request (Agent)', 'lossless-request', 'undici-agent-request'],
  ['undici request (Agent) / Pool.request', 'undici-agent-request', 'undici-pool-request'],
  ['lossless request / undici request (Agent), twin', 'lossless-request', 'undici-agent-twin'],
  ['undici request (Agent), twin / undici request (Agent)', 'undici-agent-twin', 'undici-agent-request'],
  ['lossless fetch / undici fetch, twin', 'lossless-fetch', 'undici-fetch-twin'],
  ['undici fetch, twin / undici fetch', 'undici-fetch-twin', 'undici-fetch'],
];

// ---------------------------------------------------------------------------------------------
// options

const USAGE =
  'Usage: node test/bench/client-overhead.mjs [--rounds 5] [--duration 3] [--warmup 1] [--concurrency 50]\n' +
  `  [--clients ${DEFAULT_CLIENTS.join(',')}] [--isolate] [--json FILE]\nclients: ${Object.keys(CLIENTS).join(', ')}`;
const args = flags(
  {
    rounds: { type: 'string', default: '5' },
    duration: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '1' },
    concurrency: { type: 'string', default: '50' },
    clients: { type: 'string', default: DEFAULT_CLIENTS.join(',') },
    isolate: { type: 'boolean', default: false },
    json: { type: 'string' },
    // internal: this process is the driver of one client for an --isolate run (see runWorker)
    worker: { type: 'string' },
    origin: { type: 'string' },
  },
  USAGE,
);
const rounds = intArg('rounds', args.rounds, 1, 400);
const durationS = numArg('duration', args.duration, 0.5, 60);
const warmupS = numArg('warmup', args.warmup, 0, 30);
const concurrency = intArg('concurrency', args.concurrency, 1, 1000);
const clientIds = args.clients.split(',').map((s) => s.trim());
for (const id of clientIds)
  if (!(id in CLIENTS)) fail(`--clients: unknown client "${id}" (known: ${Object.keys(CLIENTS).join(', ')})`);
if (new Set(clientIds).size !== clientIds.length || clientIds.length === 0) fail('--clients: expected distinct names');
if (args.worker !== undefined) {
  await runWorker(args.worker, String(args.origin));
  process.exit(0);
}

// the whole run is bounded: a watchdog ends it at twice the planned time plus a minute
const plannedMs = (rounds + 1) * clientIds.length * (warmupS + durationS) * 1000;
const deadlineMs = plannedMs * 2 + 60_000;

// ---------------------------------------------------------------------------------------------
// provider process, and cleanup whatever happens

const cleanups = [];
function killServer() {
  for (const child of [server, ...workers])
    if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}
process.on('exit', killServer);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    console.error(`\n${signal}: stopping`);
    killServer();
    process.exit(130);
  });
}
process.on('uncaughtException', (error) => {
  console.error(error);
  killServer();
  process.exit(1);
});
process.on('unhandledRejection', (error) => {
  console.error(error);
  killServer();
  process.exit(1);
});
setTimeout(() => fail(`watchdog: the run took longer than ${Math.round(deadlineMs / 1000)} s`), deadlineMs).unref();

function startServer() {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SERVER, '--max-ms', String(deadlineMs + 10_000)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    server = child;
    const timer = setTimeout(() => reject(new Error('echo server did not print its port within 10 s')), 10_000);
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`echo server exited early (code ${code}, signal ${signal})`));
    });
    const lines = createInterface({ input: child.stdout });
    lines.once('line', (line) => {
      clearTimeout(timer);
      const port = Number(line.trim());
      if (!Number.isInteger(port) || port <= 0) reject(new Error(`echo server printed "${line}", not a port`));
      else resolve(port);
    });
  });
}

// ---------------------------------------------------------------------------------------------
// clients: each returns { call: () => Promise<void>, close: () => Promise<void> }; call() fails
// unless the response is 200 "ok"

function check(status, text) {
  if (status !== 200 || text !== 'ok') throw new Error(`unexpected response ${status} ${JSON.stringify(text)}`);
}

function makePool(origin) {
  const pool = new Pool(origin);
  const call = async () => {
    const { statusCode, body } = await pool.request({ path: '/', method: 'GET' });
    check(statusCode, await body.text());
  };
  return { call, close: () => pool.close() };
}

function makeAgentRequest(origin) {
  const agent = new Agent();
  const url = `${origin}/`;
  const call = async () => {
    const { statusCode, body } = await undiciRequest(url, { dispatcher: agent });
    check(statusCode, await body.text());
  };
  return { call, close: () => agent.close() };
}

function makeUndiciFetch(origin) {
  const agent = new Agent();
  const url = `${origin}/`;
  const call = async () => {
    const res = await undiciFetch(url, { dispatcher: agent });
    check(res.status, await res.text());
  };
  return { call, close: () => agent.close() };
}

function makeLosslessRequest(origin) {
  const client = createClient({ registry: `static://${new URL(origin).host}` });
  const call = async () => {
    const { statusCode, body } = await client.request(SERVICE_URL);
    check(statusCode, await body.text());
  };
  return { call, close: () => client.close() };
}

function makeLosslessFetch(origin) {
  const client = createClient({ registry: `static://${new URL(origin).host}` });
  const call = async () => {
    const res = await client.fetch(SERVICE_URL);
    check(res.status, await res.text());
  };
  return { call, close: () => client.close() };
}

// ---------------------------------------------------------------------------------------------
// closed-loop driver: `concurrency` workers, each sends its next request when the last one ended.
// Counted: requests that complete inside the measured window; latency: those that also started in it.

async function drive(call, { concurrency, warmupMs, durationMs }) {
  const latencies = new Float64Array(MAX_SAMPLES_PER_ROUND);
  let samples = 0;
  let completed = 0;
  let errors = 0;
  let firstError;
  let measuring = false;
  let stopped = false;
  let windowStart = 0;
  let windowEnd = 0;
  let cpuStart;
  let cpuUsed;
  let stopTimer;

  const measureTimer = setTimeout(() => {
    windowStart = performance.now();
    cpuStart = process.cpuUsage();
    measuring = true;
    stopTimer = setTimeout(() => {
      windowEnd = performance.now();
      cpuUsed = process.cpuUsage(cpuStart);
      measuring = false;
      stopped = true;
    }, durationMs);
  }, warmupMs);

  const worker = async () => {
    while (!stopped) {
      const t0 = performance.now();
      try {
        await call();
      } catch (error) {
        errors++;
        firstError ??= error;
        if (errors >= MAX_ERRORS_PER_ROUND) stopped = true;
        continue;
      }
      if (measuring) {
        completed++;
        if (t0 >= windowStart && samples < latencies.length) latencies[samples++] = performance.now() - t0;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  clearTimeout(measureTimer);
  clearTimeout(stopTimer);
  if (windowEnd === 0) windowEnd = performance.now(); // stopped early by errors

  const elapsedS = (windowEnd - windowStart) / 1000;
  const sorted = latencies.subarray(0, samples).sort();
  const cpuUs = cpuUsed === undefined ? Number.NaN : cpuUsed.user + cpuUsed.system;
  return {
    throughput: completed / elapsedS,
    completed,
    elapsedS,
    p50Ms: quantile(sorted, 0.5),
    p99Ms: quantile(sorted, 0.99),
    cpuUsPerReq: cpuUs / completed,
    errors,
    firstError: firstError === undefined ? undefined : String(firstError?.stack ?? firstError),
  };
}

// ---------------------------------------------------------------------------------------------
// where a client's rounds run: in this process, or (--isolate) in a child process of its own that
// drives it when told to, over IPC

function inProcess({ call, close }) {
  const gc = exposeGc();
  return {
    round: (settings) => {
      gc?.();
      return drive(call, settings);
    },
    close,
  };
}

function startWorker(id, origin) {
  const self = fileURLToPath(import.meta.url);
  const child = spawn(process.execPath, [...process.execArgv, self, '--worker', id, '--origin', origin], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  workers.push(child);
  let pending;
  child.on('message', (message) => {
    if (message.ready === true) pending?.resolve();
    else if (message.result !== undefined) pending?.resolve(message.result);
  });
  child.once('exit', (code, signal) => {
    if (!finished) fail(`the driver of ${id} exited during the run (code ${code}, signal ${signal})`);
  });
  const next = () =>
    new Promise((resolve) => {
      pending = { resolve };
    });
  const ready = next();
  return ready.then(() => ({
    round: (settings) => {
      const result = next();
      child.send({ round: settings });
      return result;
    },
    close: () =>
      new Promise((resolve) => {
        child.once('exit', () => resolve());
        child.disconnect();
      }),
  }));
}

/** The child of an --isolate run: makes one client, drives a round each time it is told, until disconnected. */
async function runWorker(id, origin) {
  const { call, close } = CLIENTS[id].make(origin);
  const gc = exposeGc();
  process.on('message', async ({ round }) => {
    gc?.();
    process.send({ result: await drive(call, round) });
  });
  process.send({ ready: true });
  await new Promise((resolve) => process.once('disconnect', resolve));
  await close();
}

// ---------------------------------------------------------------------------------------------
// main

const loadBefore = loadavg();
const port = await startServer();
let finished = false;
server.on('exit', (code, signal) => {
  if (!finished) fail(`the echo server exited during the run (code ${code}, signal ${signal})`);
});
const origin = `http://127.0.0.1:${port}`;
const clients = await Promise.all(
  clientIds.map(async (id) => ({
    id,
    label: CLIENTS[id].label,
    ...(args.isolate ? await startWorker(id, origin) : inProcess(CLIENTS[id].make(origin))),
  })),
);
for (const c of clients) cleanups.push(c.close);

console.log(
  `client overhead: node ${process.version}, ${cpus()[0]?.model ?? 'unknown CPU'} x ${cpus().length}, ` +
    `provider ${origin} (pid ${server.pid})`,
);
console.log(
  `${rounds} rounds x ${clients.length} clients, ${concurrency} in flight, warm-up ${warmupS} s + ${durationS} s ` +
    `per round, about ${Math.ceil(plannedMs / 1000)} s in all`,
);

// one round each, not counted, first: a client's first seconds run code V8 has not optimised yet
for (const c of clients) await c.round({ concurrency, warmupMs: 0, durationMs: (warmupS + durationS) * 1000 });
const results = Object.fromEntries(clients.map((c) => [c.id, []]));
const order = [];
for (let r = 0; r < rounds; r++) {
  // rotate the starting client each round: no client is always the one after the same other
  const roundOrder = clients.map((_, i) => clients[(i + r) % clients.length]);
  order.push(roundOrder.map((c) => c.id));
  const line = [];
  for (const c of roundOrder) {
    const res = await c.round({ concurrency, warmupMs: warmupS * 1000, durationMs: durationS * 1000 });
    results[c.id].push(res);
    line.push(`${c.label} ${Math.round(res.throughput)}/s`);
    if (res.errors > 0) console.error(`  ${c.label}: ${res.errors} errors, first: ${res.firstError}`);
  }
  console.log(`round ${r + 1}/${rounds}: ${line.join(', ')}`);
}

finished = true;
for (const close of cleanups) await close();
killServer();

// ---------------------------------------------------------------------------------------------
// report

const summary = Object.fromEntries(
  clients.map((c) => {
    const rs = results[c.id];
    const tp = rs.map((x) => x.throughput);
    return [
      c.id,
      {
        label: c.label,
        medianThroughput: median(tp),
        minThroughput: Math.min(...tp),
        maxThroughput: Math.max(...tp),
        medianP50Ms: median(rs.map((x) => x.p50Ms)),
        medianP99Ms: median(rs.map((x) => x.p99Ms)),
        medianCpuUsPerReq: median(rs.map((x) => x.cpuUsPerReq)),
        errors: rs.reduce((n, x) => n + x.errors, 0),
        rounds: rs.map(({ firstError, ...x }) => x),
      },
    ];
  }),
);
const ratios = RATIOS.filter(([, a, b]) => a in summary && b in summary).map(([name, a, b]) => {
  const paired = results[a].map((x, i) => x.throughput / results[b][i].throughput);
  const cpu = results[a].map((x, i) => x.cpuUsPerReq / results[b][i].cpuUsPerReq);
  return {
    name,
    of: a,
    to: b,
    throughput: summary[a].medianThroughput / summary[b].medianThroughput,
    pairedMedian: median(paired),
    // a 95 % interval of that median: how uncertain the machine's noise leaves it
    pairedInterval: medianInterval(paired),
    // client CPU per request, a over b, median of per-round ratios: the cost the throughput reflects
    pairedCpu: median(cpu),
    pairedCpuInterval: medianInterval(cpu),
    p50: summary[a].medianP50Ms / summary[b].medianP50Ms,
  };
});

function interval([lo, hi]) {
  return `${fmt(lo, 3)}..${fmt(hi, 3)}`;
}

const table = [
  ['client', 'req/s (median)', 'min..max req/s', 'p50 ms', 'p99 ms', 'client CPU us/req', 'errors'],
  ...clients.map((c) => {
    const s = summary[c.id];
    return [
      c.label,
      fmt(s.medianThroughput, 0),
      `${fmt(s.minThroughput, 0)}..${fmt(s.maxThroughput, 0)}`,
      fmt(s.medianP50Ms, 2),
      fmt(s.medianP99Ms, 2),
      fmt(s.medianCpuUsPerReq, 1),
      String(s.errors),
    ];
  }),
];
console.log(`\n${render(table)}`);
if (ratios.length > 0) {
  const ratioTable = [
    [
      'ratio',
      'throughput',
      '(median of per-round ratios)',
      '(95 % interval)',
      'client CPU/req (per round)',
      'p50 latency',
    ],
    ...ratios.map((r) => [
      r.name,
      pct(r.throughput),
      pct(r.pairedMedian),
      interval(r.pairedInterval),
      `x${fmt(r.pairedCpu, 3)} (${interval(r.pairedCpuInterval)})`,
      `x${fmt(r.p50, 2)}`,
    ]),
  ];
  console.log(`\n${render(ratioTable)}`);
}

const loadAfter = loadavg();
console.log(
  `\nload average (1 min) before ${loadBefore[0].toFixed(2)}, after ${loadAfter[0].toFixed(2)} ` +
    `(the benchmark itself adds about 2; more means other work shared the ${cpus().length} cores)`,
);
const totalErrors = Object.values(summary).reduce((n, s) => n + s.errors, 0);
if (args.json !== undefined) {
  const script = relative(process.cwd(), fileURLToPath(import.meta.url));
  const report = {
    date: new Date().toISOString(),
    command: ['node', ...process.execArgv, script, ...process.argv.slice(2)].join(' '),
    argv: process.argv,
    cwd: process.cwd(),
    node: process.version,
    undici: versionOf('undici'),
    commit: gitCommit(['client', 'core']),
    platform: `${process.platform} ${process.arch}`,
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    loadavg: { before: loadBefore, after: loadAfter },
    settings: {
      rounds,
      durationS,
      warmupS,
      concurrency,
      clients: clientIds,
      isolate: args.isolate,
      order,
      provider: 'node:http 200 "ok"',
    },
    results: summary,
    ratios,
  };
  writeFileSync(args.json, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`\nwrote ${args.json}`);
}
process.exit(totalErrors > 0 ? 1 : 0);

// ---------------------------------------------------------------------------------------------
// helpers

function intArg(name, raw, min, max) {
  const n = numArg(name, raw, min, max);
  if (!Number.isInteger(n)) fail(`--${name}: expected an integer, got ${raw}`);
  return n;
}

function numArg(name, raw, min, max) {
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || n > max) fail(`--${name}: expected a number in ${min}..${max}, got ${raw}`);
  return n;
}

function fail(message) {
  console.error(message);
  killServer();
  process.exit(2);
}
