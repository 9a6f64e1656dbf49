// The rolling-restart demo: N provider processes behind one consumer process under constant-rate
// load; every provider is restarted in turn (SIGTERM, start its replacement, wait until it is ready,
// go on), with steady load before, during and after; every failed request is counted.
//
//   node examples/rolling-restart/demo.mjs [--mode lossless|naive|close-only|fixed-sleep]
//     [--client lossless|plain] [--registry URL] [--rate N] [--providers N] [--restarts N]
//     [--steady S] [--seed N] [--quiet-window-ms MS] [--sleep-ms MS] [--grace-seconds S] [--json FILE]
//     [--protocol http1|h2|grpc]
//
// --protocol h2: the providers are node:http2 secure servers (provider-h2.mjs, a self-signed
// certificate made for the run) and both clients call them over TLS, where undici negotiates HTTP/2.
// --protocol grpc: the providers are @grpc/grpc-js servers (provider-grpc.mjs, modes lossless, naive,
// try-shutdown, force-shutdown) and the consumer calls them with grpc-js (consumer-grpc.mjs).
//
// Bounded: the load stops by itself; every child process is killed on success, failure and Ctrl-C.
// Everything listens on 127.0.0.1.

import { fork, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { GRPC_MODES } from './grpc-service.mjs';
import { tlsFiles } from './tls-files.mjs';

const here = (file) => fileURLToPath(new URL(file, import.meta.url));
const MODES = ['lossless', 'naive', 'close-only', 'fixed-sleep'];
const WARMUP_MS = 1000;
const CLIENTS = ['lossless', 'plain'];
const PROTOCOLS = ['http1', 'h2', 'grpc'];

const { values: args } = parseArgs({
  options: {
    mode: { type: 'string', default: 'lossless' },
    client: { type: 'string', default: 'lossless' },
    registry: { type: 'string' },
    rate: { type: 'string', default: '200' },
    providers: { type: 'string', default: '3' },
    restarts: { type: 'string' },
    steady: { type: 'string', default: '3' },
    seed: { type: 'string', default: '1' },
    'quiet-window-ms': { type: 'string', default: '1000' },
    'sleep-ms': { type: 'string', default: '3000' },
    'grace-seconds': { type: 'string', default: '10' },
    json: { type: 'string' },
    protocol: { type: 'string', default: 'http1' },
    quiet: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log(
    'Usage: demo.mjs [--mode lossless|naive|close-only|fixed-sleep] [--client lossless|plain] [--registry URL]\n' +
      '  [--rate N] [--providers N] [--restarts N] [--steady S] [--seed N] [--quiet-window-ms MS] [--sleep-ms MS]\n' +
      '  [--grace-seconds S] [--json FILE] [--protocol http1|h2|grpc] [--quiet]\n' +
      `  (--protocol grpc: --mode ${GRPC_MODES.join('|')})`,
  );
  process.exit(0);
}
const fail = (message) => {
  console.error(`demo: ${message}`);
  process.exit(2);
};
if (!PROTOCOLS.includes(args.protocol)) fail(`--protocol must be one of ${PROTOCOLS.join(', ')}`);
const modes = args.protocol === 'grpc' ? GRPC_MODES : MODES;
if (!modes.includes(args.mode)) fail(`--mode must be one of ${modes.join(', ')}`);
if (!CLIENTS.includes(args.client)) fail(`--client must be one of ${CLIENTS.join(', ')}`);
const int = (name, min, max) => {
  const v = Number(args[name]);
  if (!Number.isInteger(v) || v < min || v > max) fail(`--${name} must be an integer in ${min}..${max}`);
  return v;
};
const rate = int('rate', 1, 20_000);
const providerCount = int('providers', 1, 20);
if (args.restarts === undefined) args.restarts = String(providerCount);
const restarts = int('restarts', 0, 500);
const steadyMs = int('steady', 1, 600) * 1000;
// like Kubernetes' terminationGracePeriodSeconds: a provider still running then is killed
const graceMs = int('grace-seconds', 1, 600) * 1000;
int('seed', 0, 2 ** 31);

const tempDir = args.registry === undefined ? await mkdtemp(join(tmpdir(), 'lossless-demo-')) : undefined;
const registry = args.registry ?? pathToFileURL(tempDir).href;
// h2: a certificate for this run (key.pem, cert.pem) that the providers serve and the consumer trusts
const tls = args.protocol === 'h2' ? await tlsFiles() : undefined;
const service = `demo-${process.pid}`;
const children = new Set();
const started = Date.now();
const elapsed = () => ((Date.now() - started) / 1000).toFixed(1);

function cleanup() {
  for (const child of children) child.kill('SIGKILL');
}
process.on('SIGINT', () => {
  cleanup();
  process.exit(130);
});
process.on('exit', cleanup);

// ------------------------------------------------------------------------------------------------
// providers

let serial = 0;
function startProvider() {
  const name = `p${serial++}`;
  const child = spawn(
    process.execPath,
    [
      here(
        args.protocol === 'grpc' ? './provider-grpc.mjs' : tls === undefined ? './provider.mjs' : './provider-h2.mjs',
      ),
      ...(tls === undefined ? [] : ['--tls-dir', tls.dir]),
      '--mode',
      args.mode,
      '--registry',
      registry,
      '--service',
      service,
      '--name',
      name,
      '--quiet-window-ms',
      args['quiet-window-ms'],
      '--sleep-ms',
      args['sleep-ms'],
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  children.add(child);
  const p = { name, child, events: {}, exited: undefined, ready: undefined };
  let buffer = '';
  let markReady;
  p.ready = new Promise((resolve, reject) => {
    markReady = resolve;
    setTimeout(() => reject(new Error(`${name} was not ready within 30 s`)), 30_000).unref();
  });
  child.stdout.setEncoding('utf8').on('data', (chunk) => {
    buffer += chunk;
    const lines = buffer.split('\n');
    buffer = lines.pop();
    for (const line of lines) {
      let event;
      try {
        event = JSON.parse(line);
      } catch {
        continue;
      }
      if (typeof event.event === 'string') {
        p.events[event.event] = { ...event, at: Date.now() };
        if (event.event === 'ready') markReady();
      }
    }
  });
  p.exited = new Promise((resolve) =>
    child.on('exit', (code) => {
      children.delete(child);
      resolve({ code, at: Date.now() });
    }),
  );
  return p;
}

// ------------------------------------------------------------------------------------------------
// consumer

let progress = { sent: 0, counts: {} };
function startConsumer() {
  const consumer = fork(
    here(args.protocol === 'grpc' ? './consumer-grpc.mjs' : './consumer.mjs'),
    [
      '--client',
      args.client,
      '--registry',
      registry,
      '--service',
      service,
      '--rate',
      String(rate),
      '--seed',
      args.seed,
      ...(tls === undefined ? [] : ['--ca', tls.cert]),
    ],
    { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
  );
  children.add(consumer);
  const result = new Promise((resolve, reject) => {
    consumer.on('message', (m) => {
      if (m.type === 'progress') progress = m;
      if (m.type === 'result') resolve(m);
    });
    consumer.on('exit', (code) => reject(new Error(`the consumer exited with code ${code} before reporting`)));
  });
  return { consumer, result };
}

let draining = '-';
const live = setInterval(() => {
  const failures = Object.entries(progress.counts ?? {})
    .filter(([k]) => k !== 'ok')
    .reduce((sum, [, v]) => sum + v, 0);
  const line = `  ${elapsed().padStart(6)} s  rate ${rate}/s  sent ${progress.sent}  failures ${failures}  draining: ${draining}`;
  if (args.quiet) return;
  if (process.stderr.isTTY) process.stderr.write(`\r${line.padEnd(90)}`);
  else if (Math.round((Date.now() - started) / 250) % 8 === 0) console.error(line);
}, 250);

// ------------------------------------------------------------------------------------------------
// the run

const log = (line) => {
  if (args.quiet) return;
  if (process.stderr.isTTY) process.stderr.write('\r'.padEnd(92));
  console.error(`\r  ${elapsed().padStart(6)} s  ${line}`);
};

try {
  console.error(
    `lossless demo: ${providerCount} providers (mode ${args.mode}, ${args.protocol}), consumer (client ${args.client}), ${rate} req/s, ${restarts} restarts, registry ${redact(registry)}`,
  );
  const providers = Array.from({ length: providerCount }, () => startProvider());
  await Promise.all(providers.map((p) => p.ready));
  const { consumer, result } = startConsumer();
  // connections and JIT warm up first: the first second is not counted as steady state
  await sleep(WARMUP_MS);
  const measureFrom = Date.now();
  log(`${providers.length} providers ready; steady load for ${steadyMs / 1000} s`);
  await sleep(steadyMs);

  const drains = [];
  const rolloutStart = Date.now();
  for (let k = 0; k < restarts; k++) {
    const index = k % providers.length;
    const old = providers[index];
    draining = `${old.name} (pid ${old.child.pid})`;
    const sigtermAt = Date.now();
    old.child.kill('SIGTERM');
    const grace = setTimeout(() => old.child.kill('SIGKILL'), graceMs);
    const replacement = startProvider();
    providers[index] = replacement;
    const [, exit] = await Promise.all([replacement.ready, old.exited]);
    clearTimeout(grace);
    draining = '-';
    const ev = old.events;
    drains.push({
      instance: old.name,
      sigtermAt,
      drainMs: exit.at - sigtermAt,
      longestInFlightMs: ev.sigterm?.longestInFlightMs ?? 0,
      longestRemainingMs: ev.sigterm?.longestRemainingMs ?? 0,
      inFlightAtSigterm: ev.sigterm?.inFlight ?? 0,
      arrivedAfterSigterm: ev.exit?.arrivedAfterSigterm ?? null,
      // the provider's own time from SIGTERM to calling exit (without process teardown)
      drainMsInProcess: ev.exit?.drainMs ?? null,
      // how long after SIGTERM the last request arrived (a late caller restarts the quiet window)
      lastArrivalAfterSigtermMs: ev.exit?.lastArrivalAfterSigtermMs ?? null,
      // lossless: from the moment its exit condition held to its exit call
      exitDelayMs: ev.exit?.exitDelayMs ?? null,
      exitCode: exit.code ?? 'SIGKILL (grace period over)',
    });
    log(
      `restart ${k + 1}/${restarts}: ${old.name} exited after ${exit.at - sigtermAt} ms (${ev.sigterm?.inFlight ?? 0} in flight at SIGTERM); ${replacement.name} ready`,
    );
  }
  const rolloutEnd = Date.now();
  await sleep(steadyMs);
  consumer.send({ type: 'stop' });
  const r = await result;
  clearInterval(live);
  if (process.stderr.isTTY) process.stderr.write(`\r${''.padEnd(92)}\r`);

  const report = buildReport(r, { measureFrom, rolloutStart, rolloutEnd, drains });
  printReport(report);
  if (args.json) {
    await writeFile(args.json, `${JSON.stringify(report, null, 2)}\n`);
    console.log(`  report written to ${args.json}`);
  }
  for (const p of providers) p.child.kill('SIGKILL');
  await cleanupTemp();
  process.exitCode = args.mode === 'lossless' && args.client === 'lossless' && report.failures.total > 0 ? 1 : 0;
} catch (error) {
  clearInterval(live);
  console.error(`\ndemo failed: ${error.message}`);
  cleanup();
  await cleanupTemp();
  process.exitCode = 1;
}
process.exit();

// ------------------------------------------------------------------------------------------------

function buildReport(r, { measureFrom, rolloutStart, rolloutEnd, drains }) {
  const steady = [];
  const rollout = [];
  const warm = measureFrom - r.startedAt;
  const from = rolloutStart - r.startedAt;
  const to = rolloutEnd - r.startedAt;
  for (let i = 0; i < r.latency.length; i++) {
    if (r.outcome[i] !== 'ok') continue;
    const t = r.intended[i];
    if (t < warm) continue;
    (t >= from && t <= to ? rollout : steady).push(r.latency[i]);
  }
  const { ok, ...failed } = r.counts;
  const total = Object.values(failed).reduce((a, b) => a + b, 0) + r.unfinished;
  return {
    mode: args.mode,
    client: args.client,
    protocol: args.protocol,
    registry: redact(registry).startsWith('file:') ? 'file' : redact(registry),
    rate,
    seed: Number(args.seed),
    providers: providerCount,
    requests: r.sent,
    failures: {
      total,
      refused: failed.refused,
      reset: failed.reset,
      status5xx: failed.status5xx,
      timeout: failed.timeout + r.unfinished,
      other: failed.other,
    },
    failureExamples: r.examples,
    restarts: drains.length,
    latencyMs: { steady: percentiles(steady), rollout: percentiles(rollout) },
    drains,
    rolloutMs: rolloutEnd - rolloutStart,
    timeline: timeline(r, measureFrom, drains),
    node: process.version,
    date: new Date().toISOString(),
  };
}

/** Per 500 ms of intended send time: requests, failures and p99 latency; and when each SIGTERM was sent. */
function timeline(r, measureFrom, drains) {
  const bucketMs = 500;
  const offset = measureFrom - r.startedAt;
  const buckets = [];
  for (let i = 0; i < r.intended.length; i++) {
    const t = r.intended[i] - offset;
    if (t < 0 || r.outcome[i] === undefined) continue;
    const b = Math.floor(t / bucketMs);
    buckets[b] ??= { t: (b * bucketMs) / 1000, sent: 0, failed: 0, latencies: [] };
    buckets[b].sent++;
    if (r.outcome[i] === 'ok') buckets[b].latencies.push(r.latency[i]);
    else buckets[b].failed++;
  }
  return {
    bucketMs,
    buckets: buckets.filter(Boolean).map(({ latencies, ...rest }) => ({ ...rest, p99: percentiles(latencies).p99 })),
    sigterms: drains.map((d) => round((d.sigtermAt - measureFrom) / 1000)),
  };
}

function percentiles(values) {
  if (values.length === 0) return { p50: null, p99: null, p999: null, max: null, count: 0 };
  const sorted = Float64Array.from(values).sort();
  const at = (q) => round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]);
  return { p50: at(0.5), p99: at(0.99), p999: at(0.999), max: round(sorted[sorted.length - 1]), count: values.length };
}

function printReport(report) {
  const f = report.failures;
  const l = report.latencyMs;
  const row = (name, p) =>
    `  ${name.padEnd(9)} ${fmt(p.p50)} ${fmt(p.p99)} ${fmt(p.p999)} ${fmt(p.max)}   (${p.count} requests)`;
  console.log(`
  mode ${report.mode}, client ${report.client}, protocol ${report.protocol}, registry ${report.registry}, ${report.rate} req/s, ${report.restarts} restarts in ${(report.rolloutMs / 1000).toFixed(1)} s

  requests sent  ${report.requests}
  failures       ${f.total}   (refused ${f.refused}, reset ${f.reset}, 5xx ${f.status5xx}, timeout ${f.timeout}, other ${f.other})
${report.failureExamples
  .slice(0, 5)
  .map((e) => `                 ${e}\n`)
  .join('')}
  latency (ms, from intended send time)
               p50      p99    p99.9      max
${row('steady', l.steady)}
${row('rollout', l.rollout)}

  drains         instance  drain ms  longest in flight at SIGTERM ms  requests after SIGTERM  exit
${report.drains
  .map(
    (d) =>
      `                 ${d.instance.padEnd(8)}  ${String(d.drainMs).padStart(8)}  ${String(d.longestInFlightMs).padStart(32)}  ${String(d.arrivedAfterSigterm).padStart(22)}  ${d.exitCode}`,
  )
  .join('\n')}
`);
}

function fmt(v) {
  return v === null ? '      -' : String(v).padStart(8);
}
function round(v) {
  return Math.round(v * 100) / 100;
}
function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
function redact(url) {
  return url.replace(/(\/\/[^:/@]*:)[^/]*@/, '$1***@');
}
async function cleanupTemp() {
  if (tempDir !== undefined) await rm(tempDir, { recursive: true, force: true });
  await tls?.remove();
}
