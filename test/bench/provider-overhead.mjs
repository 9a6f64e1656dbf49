// What lossless costs a provider per request, on loopback, in one run: eight servers, each in its own
// process (provider-server.mjs), each answering GET / with 200 "ok":
//   http               node:http createServer (the floor)
//   http-lossless      the same server under @lossless/core createProvider({ server, ... }) + start()
//   express            express 5
//   express-lossless   the same app under @lossless/express lossless(app, {...}).listen()
//   fastify            fastify 5
//   fastify-lossless   the same app under @lossless/fastify lossless(app, {...}).listen()
//   http2              node:http2 createServer (h2c, the compat API's 'request' event)
//   http2-lossless     the same server under @lossless/core createProvider({ server, ... }) + start()
//   grpc               @grpc/grpc-js Server, one unary method answering at once
//   grpc-lossless      the same server under @lossless/grpc lossless(server, {...}).listen()
// The http2 variants are driven over h2c (undici allowH2 + useH2c: streams multiplexed on few
// connections), so that TLS costs are not part of what is compared; the grpc variants by grpc-js
// clients, --connections of them (one channel, so one HTTP/2 connection, each), insecure. They run
// when named: --variants http2,http2-lossless or grpc,grpc-lossless (the default is the first six).
// The lossless variants use registry 'static://127.0.0.1:1' (registration is a no-op), admin: false,
// signals: false, exit: false: only the request path (the in-flight tracker) differs from the bare
// variant. All six run for the whole benchmark; one at a time is loaded, by the same closed-loop
// driver in this process: undici Pool.request, --concurrency requests in flight on --connections
// keep-alive connections (a new Pool per measurement, so every variant opens its connections during
// its own warm-up), --warmup then --duration seconds per measurement. Rounds are interleaved with a
// rotating order (A B C ..., B C ... A, ...): with the default 6 rounds every variant holds every
// position once, so drift on a noisy machine spreads over all of them. Before each measurement both
// this process and the server collect their garbage. A measurement during which other processes
// used more than --max-other-cpu % of a core (from /proc/stat, Linux) is repeated once the machine
// is quiet again (waiting --max-wait seconds at most in the whole run), at most --retries times and
// at most `rounds x variants` times in the run; the least disturbed attempt is kept, by the same
// rule for every variant, and the report says how many were repeated. The ratios are also given
// over the "quiet rounds" alone, where neither of the two measurements was disturbed.
//
// Besides throughput and latency, the server reports its own CPU time (process.cpuUsage) and event
// loop utilization over the measured window: CPU µs per request is the cost of the request path
// with the least noise from the load generator, and ELU near 100 % says the server was the bottleneck.
//
//   node test/bench/provider-overhead.mjs [--rounds 6] [--duration 3] [--warmup 1] [--concurrency 64]
//                                         [--connections 64] [--variants a,b,...] [--json FILE]
//                                         [--max-other-cpu 10] [--retries 2] [--max-wait 120]
//                                         [--server-cpu-prof DIR]
//
// Prints a table and the lossless/bare ratios per framework (target: at most 2 % throughput loss);
// with --json also writes the numbers and the machine. --server-cpu-prof DIR runs the servers under
// node --cpu-prof and leaves one .cpuprofile per variant in DIR (read them with cpuprofile-top.mjs).
// Exits 1 when a request failed or a lossless tracker did not see the requests, 0 otherwise (also
// when the target is missed: the ratios are a measurement, not a test).

import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { relative, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { exposeGc, flags, fmt, gitCommit, median, pct, quantile, render, versionOf } from './report.mjs';

const SERVER = fileURLToPath(new URL('./provider-server.mjs', import.meta.url));
const MAX_SAMPLES_PER_ROUND = 2_000_000;
const MAX_ERRORS_PER_ROUND = 1000;
const TARGET_LOSS = 0.02;
const COMMAND_TIMEOUT_MS = 10_000;

const VARIANTS = {
  http: { label: 'node:http' },
  'http-lossless': { label: 'node:http + lossless' },
  express: { label: 'express' },
  'express-lossless': { label: 'express + lossless' },
  fastify: { label: 'fastify' },
  'fastify-lossless': { label: 'fastify + lossless' },
  http2: { label: 'node:http2 (h2c)', h2c: true },
  'http2-lossless': { label: 'node:http2 (h2c) + lossless', h2c: true },
  grpc: { label: 'grpc-js', grpc: true },
  'grpc-lossless': { label: 'grpc-js + lossless', grpc: true },
};
const DEFAULT_VARIANTS = Object.keys(VARIANTS).filter((id) => VARIANTS[id].h2c !== true && VARIANTS[id].grpc !== true);
const FRAMEWORKS = [
  ['node:http', 'http-lossless', 'http'],
  ['express', 'express-lossless', 'express'],
  ['fastify', 'fastify-lossless', 'fastify'],
  ['node:http2 (h2c)', 'http2-lossless', 'http2'],
  ['grpc-js', 'grpc-lossless', 'grpc'],
];

// ---------------------------------------------------------------------------------------------
// options

const USAGE =
  'Usage: node test/bench/provider-overhead.mjs [--rounds 6] [--duration 3] [--warmup 1] [--concurrency 64]\n' +
  `  [--connections 64] [--variants ${DEFAULT_VARIANTS.join(',')}] [--max-other-cpu 10] [--retries 2]\n` +
  `  (variants: ${Object.keys(VARIANTS).join(', ')})\n` +
  '  [--max-wait 120] [--json FILE] [--server-cpu-prof DIR]';
const args = flags(
  {
    rounds: { type: 'string', default: '6' },
    duration: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '1' },
    concurrency: { type: 'string', default: '64' },
    connections: { type: 'string', default: '64' },
    variants: { type: 'string', default: DEFAULT_VARIANTS.join(',') },
    json: { type: 'string' },
    'server-cpu-prof': { type: 'string' },
    'max-other-cpu': { type: 'string', default: '10' },
    retries: { type: 'string', default: '2' },
    'max-wait': { type: 'string', default: '120' },
  },
  USAGE,
);
const rounds = intArg('rounds', args.rounds, 1, 50);
const durationS = numArg('duration', args.duration, 0.5, 60);
const warmupS = numArg('warmup', args.warmup, 0, 30);
const concurrency = intArg('concurrency', args.concurrency, 1, 1000);
const connections = intArg('connections', args.connections, 1, 1000);
const variantIds = args.variants.split(',').map((s) => s.trim());
for (const id of variantIds)
  if (!(id in VARIANTS)) fail(`--variants: unknown variant "${id}" (known: ${Object.keys(VARIANTS).join(', ')})`);
if (new Set(variantIds).size !== variantIds.length || variantIds.length === 0)
  fail('--variants: expected distinct names');
const maxOtherCpuPct = numArg('max-other-cpu', args['max-other-cpu'], 0, 1000);
const maxRetries = intArg('retries', args.retries, 0, 10);
const maxWaitS = numArg('max-wait', args['max-wait'], 0, 600);
const profDir = args['server-cpu-prof'] === undefined ? undefined : resolve(args['server-cpu-prof']);

// the whole run is bounded: repeated measurements (see --retries) add at most as many measurements
// as planned, the waits for a quiet machine before them at most --max-wait seconds in all, a
// watchdog ends the run at twice the measurements plus the waits plus a minute, and every server
// exits by itself 10 s after that
const measurements = rounds * variantIds.length;
const retryBudget = maxRetries === 0 ? 0 : measurements;
const plannedMs = measurements * (warmupS + durationS) * 1000;
const deadlineMs = ((plannedMs * (measurements + retryBudget)) / measurements) * 2 + maxWaitS * 1000 + 60_000;

// ---------------------------------------------------------------------------------------------
// server processes, and cleanup whatever happens

/** @type {Map<string, import('node:child_process').ChildProcess>} */
const children = new Map();
let finished = false;

function killServers() {
  for (const child of children.values())
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}
process.on('exit', killServers);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    console.error(`\n${signal}: stopping`);
    killServers();
    process.exit(130);
  });
}
process.on('uncaughtException', (error) => {
  console.error(error);
  killServers();
  process.exit(1);
});
process.on('unhandledRejection', (error) => {
  console.error(error);
  killServers();
  process.exit(1);
});
setTimeout(() => fail(`watchdog: the run took longer than ${Math.round(deadlineMs / 1000)} s`), deadlineMs).unref();

/**
 * Starts one server; resolves with its port and `command(line)`, which resolves with the server's
 * JSON answer (the server answers its commands in order).
 */
function startServer(variant) {
  const nodeArgs = ['--expose-gc'];
  if (profDir !== undefined)
    nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${profDir}`, `--cpu-prof-name=${variant}.cpuprofile`);
  const child = spawn(
    process.execPath,
    [...nodeArgs, SERVER, '--variant', variant, '--max-ms', String(deadlineMs + 10_000)],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  children.set(variant, child);
  child.stdin.on('error', () => {}); // EPIPE once the server is gone: its 'exit' reports that
  const pending = [];
  const command = (line) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${variant} server: no answer to "${line}" within ${COMMAND_TIMEOUT_MS} ms`)),
        COMMAND_TIMEOUT_MS,
      );
      pending.push((answer) => {
        clearTimeout(timer);
        if (answer.error !== undefined) reject(new Error(`${variant} server: ${answer.error}`));
        else resolve(answer);
      });
      child.stdin.write(`${line}\n`);
    });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${variant} server did not print its port within 30 s`)), 30_000);
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (!finished) fail(`the ${variant} server exited (code ${code}, signal ${signal})`);
    });
    let port;
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (port === undefined) {
        clearTimeout(timer);
        port = Number(line.trim());
        if (!Number.isInteger(port) || port <= 0) reject(new Error(`${variant} server printed "${line}", not a port`));
        else resolve({ port, command, child });
        return;
      }
      const answer = pending.shift();
      if (answer === undefined) console.error(`${variant} server: unexpected output ${line}`);
      else answer(JSON.parse(line));
    });
  });
}

/** Ends the servers by closing their stdin (so that --cpu-prof writes its profile); kills what remains after 5 s. */
async function stopServers() {
  finished = true;
  const exits = [...children.values()]
    .filter((c) => c.exitCode === null && c.signalCode === null)
    .map((c) => new Promise((resolve) => c.once('exit', resolve)));
  for (const child of children.values()) child.stdin.end();
  let timer;
  await Promise.race([Promise.all(exits), new Promise((resolve) => (timer = setTimeout(resolve, 5000)))]);
  clearTimeout(timer);
  killServers();
}

// ---------------------------------------------------------------------------------------------
// closed-loop driver: `concurrency` workers on one Pool, each sends its next request when the last
// one ended. Counted: requests that complete inside the measured window; latency: those that also
// started in it. The server is sampled (CPU, event loop) at both ends of the window.

/** The grpc variants' callers: `connections` grpc-js clients, one connection each, used in turn. */
async function grpcCaller(server, connections) {
  const grpc = await import('@grpc/grpc-js');
  const { WorkClient } = await import('../../examples/rolling-restart/grpc-service.mjs');
  const clients = Array.from(
    { length: connections },
    () =>
      new WorkClient(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure(), {
        'grpc.use_local_subchannel_pool': 1,
      }),
  );
  let next = 0;
  return {
    call: () =>
      new Promise((resolve, reject) => {
        clients[next++ % clients.length].do({ ms: 0 }, (error, reply) => {
          if (error) reject(error);
          else if (reply?.ok !== true) reject(new Error(`unexpected reply ${JSON.stringify(reply)}`));
          else resolve();
        });
      }),
    close: async () => {
      for (const client of clients) client.close();
    },
  };
}

async function drive(server, { concurrency, connections, warmupMs, durationMs }) {
  const pool = server.grpc
    ? await grpcCaller(server, connections)
    : new Pool(server.origin, { connections, ...(server.h2c ? { allowH2: true, useH2c: true } : {}) });
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
  let machineStart;
  let machineEnd;
  let serverStart;
  let serverEnd;
  let stopTimer;

  const measureTimer = setTimeout(() => {
    serverStart = server.command('sample');
    windowStart = performance.now();
    cpuStart = process.cpuUsage();
    machineStart = machineBusyMs();
    measuring = true;
    stopTimer = setTimeout(() => {
      windowEnd = performance.now();
      cpuUsed = process.cpuUsage(cpuStart);
      machineEnd = machineBusyMs();
      serverEnd = server.command('sample');
      measuring = false;
      stopped = true;
    }, durationMs);
  }, warmupMs);

  const call = async () => {
    if (server.grpc) return pool.call();
    const { statusCode, body } = await pool.request({ path: '/', method: 'GET' });
    const text = await body.text();
    if (statusCode !== 200 || text !== 'ok')
      throw new Error(`unexpected response ${statusCode} ${JSON.stringify(text)}`);
  };
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
  await pool.close();
  if (windowEnd === 0) windowEnd = performance.now(); // stopped early by errors
  const [s0, s1] = await Promise.all([serverStart, serverEnd ?? server.command('sample')]);

  const elapsedS = (windowEnd - windowStart) / 1000;
  const sorted = latencies.subarray(0, samples).sort();
  const driverCpuUs = cpuUsed === undefined ? Number.NaN : cpuUsed.user + cpuUsed.system;
  const serverCpuUs = s0 === undefined ? Number.NaN : s1.cpuUs - s0.cpuUs;
  const eluActive = s0 === undefined ? Number.NaN : s1.elu.active - s0.elu.active;
  const eluIdle = s0 === undefined ? Number.NaN : s1.elu.idle - s0.elu.idle;
  return {
    throughput: completed / elapsedS,
    completed,
    elapsedS,
    p50Ms: quantile(sorted, 0.5),
    p99Ms: quantile(sorted, 0.99),
    serverCpuUsPerReq: serverCpuUs / completed,
    serverCpuPct: (serverCpuUs / (elapsedS * 1e6)) * 100,
    serverElu: eluActive / (eluActive + eluIdle),
    driverCpuPct: (driverCpuUs / (elapsedS * 1e6)) * 100,
    // CPU the rest of the machine used meanwhile (other processes, steal), in % of one core: not 0
    // means the measurement shared the cores with something else
    otherCpuPct: Math.max(0, ((machineEnd - machineStart) * 1000 - driverCpuUs - serverCpuUs) / (elapsedS * 1e4)),
    tracked: s0 === undefined || s0.tracked === null ? null : s1.tracked - s0.tracked,
    errors,
    firstError: firstError === undefined ? undefined : String(firstError?.stack ?? firstError),
  };
}

// ---------------------------------------------------------------------------------------------
// main

const gc = exposeGc();
const loadBefore = loadavg();
if (profDir !== undefined) mkdirSync(profDir, { recursive: true });
const servers = [];
for (const id of variantIds) {
  // one after the other: startup costs do not overlap, and the order of the ports is stable
  const { port, command, child } = await startServer(id);
  servers.push({
    id,
    label: VARIANTS[id].label,
    h2c: VARIANTS[id].h2c === true,
    grpc: VARIANTS[id].grpc === true,
    origin: `http://127.0.0.1:${port}`,
    port,
    pid: child.pid,
    command,
  });
}

const cores = cpus().length;
const cpuModel = cpus()[0]?.model ?? 'unknown CPU';
const sharedCpuNote =
  `${cores} cores: the load generator (this process, one thread for the driver) and the server compete for ` +
  'CPU; every variant runs under the same conditions (same driver, concurrency and connections, one server ' +
  'loaded at a time, interleaved rounds), so compare the variants with each other, not with other machines';
console.log(`provider overhead: node ${process.version}, ${cpuModel} x ${cores}`);
console.log(`servers: ${servers.map((s) => `${s.id} :${s.port} (pid ${s.pid})`).join(', ')}`);
console.log(
  `${rounds} rounds x ${servers.length} variants, ${concurrency} in flight on ${connections} connections, ` +
    `warm-up ${warmupS} s + ${durationS} s per measurement, about ${Math.ceil(plannedMs / 1000)} s in all ` +
    `(plus up to ${retryBudget} repeated measurements when something else uses more than ${maxOtherCpuPct} % of a core)`,
);
console.log(`note: ${sharedCpuNote}`);
if (loadBefore[0] > 1)
  console.log(
    `warning: load average (1 min) ${loadBefore[0].toFixed(2)} before the start: other work is running, expect noise`,
  );
if (profDir !== undefined) console.log(`servers run under --cpu-prof, profiles in ${profDir}`);

// A measurement during which the rest of the machine used more than --max-other-cpu % of a core is
// repeated, up to --retries times (and within the run's budget), once the machine is quiet again
// (waiting at most --max-wait seconds in the whole run); the least disturbed attempt is kept. The
// same rule holds for every variant; the repeats are counted in the report.
const results = Object.fromEntries(servers.map((s) => [s.id, []]));
const order = [];
let retriesLeft = retryBudget;
let retriesUsed = 0;
let waitLeftMs = maxWaitS * 1000;

/** Waits (within what is left of --max-wait) for one second during which the machine was quiet. */
async function waitQuiet() {
  while (waitLeftMs > 0) {
    const t0 = performance.now();
    const busy0 = machineBusyMs();
    await new Promise((resolve) => setTimeout(resolve, Math.min(1000, waitLeftMs)));
    const elapsedMs = performance.now() - t0;
    waitLeftMs -= elapsedMs;
    // the servers and this process are idle now: whatever is busy is other work
    if (!(((machineBusyMs() - busy0) / elapsedMs) * 100 > maxOtherCpuPct)) return;
  }
}

for (let r = 0; r < rounds; r++) {
  const roundOrder = servers.map((_, i) => servers[(i + r) % servers.length]);
  order.push(roundOrder.map((s) => s.id));
  const line = [];
  for (const s of roundOrder) {
    let kept;
    for (let attempt = 0; ; attempt++) {
      gc?.();
      await s.command('gc');
      const res = await drive(s, { concurrency, connections, warmupMs: warmupS * 1000, durationMs: durationS * 1000 });
      if (kept === undefined || !(res.otherCpuPct >= kept.otherCpuPct) || res.errors > 0) kept = res;
      kept.attempts = attempt + 1;
      if (res.errors > 0 || !(res.otherCpuPct > maxOtherCpuPct) || attempt >= maxRetries || retriesLeft === 0) break;
      retriesLeft--;
      retriesUsed++;
      await waitQuiet();
    }
    results[s.id].push(kept);
    const repeated = kept.attempts > 1 ? ` (${kept.attempts} attempts)` : '';
    line.push(`${s.id} ${Math.round(kept.throughput)}/s${repeated}`);
    if (kept.errors > 0) console.error(`  ${s.label}: ${kept.errors} errors, first: ${kept.firstError}`);
  }
  console.log(`round ${r + 1}/${rounds}: ${line.join(', ')}`);
}
await stopServers();

// ---------------------------------------------------------------------------------------------
// report

const summary = Object.fromEntries(
  servers.map((s) => {
    const rs = results[s.id];
    const tp = rs.map((x) => x.throughput);
    // the lossless tracker must have seen (about) every request: else it was not on the path
    const trackerSaw = rs.every((x) => x.tracked === null)
      ? null
      : Math.min(...rs.map((x) => (x.tracked ?? 0) / x.completed));
    return [
      s.id,
      {
        label: s.label,
        medianThroughput: median(tp),
        minThroughput: Math.min(...tp),
        maxThroughput: Math.max(...tp),
        medianP50Ms: median(rs.map((x) => x.p50Ms)),
        medianP99Ms: median(rs.map((x) => x.p99Ms)),
        medianServerCpuUsPerReq: median(rs.map((x) => x.serverCpuUsPerReq)),
        medianServerCpuPct: median(rs.map((x) => x.serverCpuPct)),
        medianServerElu: median(rs.map((x) => x.serverElu)),
        medianDriverCpuPct: median(rs.map((x) => x.driverCpuPct)),
        medianOtherCpuPct: median(rs.map((x) => x.otherCpuPct)),
        maxOtherCpuPct: Math.max(...rs.map((x) => x.otherCpuPct)),
        disturbed: rs.filter((x) => x.otherCpuPct > maxOtherCpuPct).length,
        repeats: rs.reduce((n, x) => n + x.attempts - 1, 0),
        trackedPerCompletedMin: trackerSaw,
        errors: rs.reduce((n, x) => n + x.errors, 0),
        rounds: rs.map(({ firstError, ...x }) => x),
      },
    ];
  }),
);
const ratios = FRAMEWORKS.filter(([, a, b]) => a in summary && b in summary).map(([framework, a, b]) => {
  const paired = results[a].map((x, i) => x.throughput / results[b][i].throughput);
  const throughput = summary[a].medianThroughput / summary[b].medianThroughput;
  // the rounds in which neither measurement was disturbed by other work
  const quiet = results[a]
    .map((x, i) => [x, results[b][i]])
    .filter(([x, y]) => !(x.otherCpuPct > maxOtherCpuPct) && !(y.otherCpuPct > maxOtherCpuPct));
  return {
    framework,
    of: a,
    to: b,
    throughput,
    pairedMedian: median(paired),
    pairedMin: Math.min(...paired),
    pairedMax: Math.max(...paired),
    p50: summary[a].medianP50Ms / summary[b].medianP50Ms,
    serverCpuUsPerReq: summary[a].medianServerCpuUsPerReq / summary[b].medianServerCpuUsPerReq,
    quietRounds: quiet.length,
    quietPairedMedian: median(quiet.map(([x, y]) => x.throughput / y.throughput)),
    quietServerCpuUsPerReq: median(quiet.map(([x, y]) => x.serverCpuUsPerReq / y.serverCpuUsPerReq)),
    withinTarget: throughput >= 1 - TARGET_LOSS,
  };
});

const table = [
  [
    'variant',
    'req/s (median)',
    'min..max req/s',
    'p50 ms',
    'p99 ms',
    'server CPU us/req',
    'server CPU',
    'server ELU',
    'driver CPU',
    'other CPU (max)',
    'errors',
  ],
  ...servers.map((s) => {
    const x = summary[s.id];
    return [
      s.label,
      fmt(x.medianThroughput, 0),
      `${fmt(x.minThroughput, 0)}..${fmt(x.maxThroughput, 0)}`,
      fmt(x.medianP50Ms, 2),
      fmt(x.medianP99Ms, 2),
      fmt(x.medianServerCpuUsPerReq, 1),
      `${fmt(x.medianServerCpuPct, 0)} %`,
      `${fmt(x.medianServerElu * 100, 0)} %`,
      `${fmt(x.medianDriverCpuPct, 0)} %`,
      `${fmt(x.medianOtherCpuPct, 0)} % (${fmt(x.maxOtherCpuPct, 0)} %)`,
      String(x.errors),
    ];
  }),
];
console.log(`\n${render(table)}`);
if (ratios.length > 0) {
  const ratioTable = [
    [
      'lossless / bare',
      'throughput',
      'paired median',
      'paired min..max',
      'p50 latency',
      'server CPU/req',
      'quiet rounds: n, paired, CPU/req',
      `target (<= ${TARGET_LOSS * 100} % loss)`,
    ],
    ...ratios.map((r) => [
      r.framework,
      pct(r.throughput),
      pct(r.pairedMedian),
      `${fmt(r.pairedMin, 3)}..${fmt(r.pairedMax, 3)}`,
      `x${fmt(r.p50, 3)}`,
      `x${fmt(r.serverCpuUsPerReq, 3)}`,
      `${r.quietRounds}, ${pct(r.quietPairedMedian)}, x${fmt(r.quietServerCpuUsPerReq, 3)}`,
      r.withinTarget ? 'met' : 'MISSED',
    ]),
  ];
  console.log(`\n${render(ratioTable)}`);
  console.log(
    'throughput: ratio of the medians over rounds; paired: median (and range) of the ratios within each round; ' +
      'quiet rounds: the same, over the rounds where neither measurement was disturbed by other work',
  );
}

const loadAfter = loadavg();
console.log(
  `\nload average (1 min) before ${loadBefore[0].toFixed(2)}, after ${loadAfter[0].toFixed(2)} ` +
    `(the benchmark itself adds about 2; more means other work shared the ${cores} cores)`,
);
console.log(
  'CPU columns in % of one core over the measured window; other CPU: what the rest of the machine used ' +
    'meanwhile (from /proc/stat, minus driver and server): more than a few % means the numbers are noisy',
);
const disturbed = Object.values(summary).reduce((n, x) => n + x.disturbed, 0);
console.log(
  `${retriesUsed} measurement(s) repeated because other work used more than ${maxOtherCpuPct} % of a core; ` +
    `${disturbed} of the ${measurements} kept measurements were still above that ` +
    `(waited ${fmt(maxWaitS - waitLeftMs / 1000, 0)} s of --max-wait ${maxWaitS} s for quiet)`,
);
console.log(`note: ${sharedCpuNote}`);

const totalErrors = Object.values(summary).reduce((n, x) => n + x.errors, 0);
const untracked = servers
  .filter((s) => summary[s.id].trackedPerCompletedMin !== null)
  .filter((s) => !(summary[s.id].trackedPerCompletedMin >= 0.9));
for (const s of untracked)
  console.error(`${s.label}: the lossless tracker saw fewer requests than were answered: it is not on the path`);

if (args.json !== undefined) {
  const script = relative(process.cwd(), fileURLToPath(import.meta.url));
  const report = {
    date: new Date().toISOString(),
    command: ['node', ...process.execArgv, script, ...process.argv.slice(2)].join(' '),
    argv: process.argv,
    cwd: process.cwd(),
    node: process.version,
    versions: { undici: versionOf('undici'), express: versionOf('express'), fastify: versionOf('fastify') },
    commit: gitCommit(['core', 'express', 'fastify']),
    platform: `${process.platform} ${process.arch}`,
    cpu: cpuModel,
    cores,
    loadavg: { before: loadBefore, after: loadAfter },
    note: sharedCpuNote,
    settings: {
      rounds,
      durationS,
      warmupS,
      concurrency,
      connections,
      variants: variantIds,
      order,
      driver: 'undici Pool.request, closed loop, one Pool per measurement',
      response: 'GET / -> 200 text/plain "ok"',
      losslessOptions: "registry 'static://127.0.0.1:1', admin false, signals false, exit false",
      serverCpuProfDir: profDir,
      maxOtherCpuPct,
      maxRetries,
      retryBudget,
      retriesUsed,
      maxWaitS,
      waitedS: maxWaitS - waitLeftMs / 1000,
    },
    targetLoss: TARGET_LOSS,
    results: summary,
    ratios,
  };
  writeFileSync(args.json, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`\nwrote ${args.json}`);
}
process.exit(totalErrors > 0 || untracked.length > 0 ? 1 : 0);

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
  killServers();
  process.exit(2);
}

/** CPU time the whole machine spent busy (all cores, steal included), in ms; NaN where /proc/stat does not exist. */
function machineBusyMs() {
  try {
    const fields = readFileSync('/proc/stat', 'latin1').split('\n', 1)[0].trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, , , irq, softirq, steal] = fields;
    // USER_HZ is 100 on every Linux architecture Node.js runs on
    return (user + nice + system + irq + softirq + (steal ?? 0)) * 10;
  } catch {
    return Number.NaN;
  }
}
