// The rolling-restart demo: N provider processes behind one consumer process under constant-rate
// load; every provider is restarted in turn (SIGTERM, start its replacement, wait until it is ready,
// go on), with steady load before, during and after; every failed request is counted.
//
//   node examples/rolling-restart/demo.mjs [--mode MODE] [--client lossless|plain] [--registry URL]
//     [--rate N] [--providers N] [--restarts N | --restarts-for S] [--race-ms D] [--steady S] [--seed N]
//     [--quiet-window-ms MS] [--sleep-ms MS] [--grace-seconds S] [--json FILE] [--quiet]
//     [--protocol http1|h2|grpc]
//
// --protocol h2     the providers are node:http2 secure servers (provider-h2.mjs, a self-signed
//                   certificate made for the run) and both clients call them over TLS, where undici
//                   negotiates HTTP/2
// --protocol grpc   the providers are @grpc/grpc-js servers (provider-grpc.mjs, modes lossless, naive,
//                   try-shutdown, force-shutdown) and the consumer calls them with grpc-js
//                   (consumer-grpc.mjs)
// --restarts-for S  keep restarting, one provider after the other, for S seconds (a soak)
// --race-ms D       (plain client) Kubernetes' endpoint race: the client keeps each old instance in its
//                   round robin for D ms after SIGTERM, whatever the registry says, as kube-proxy and
//                   ingresses keep routing to a terminating pod until the endpoint removal reaches them
//
// Bounded: the load stops by itself; every child process is killed on success, failure and Ctrl-C.
// Everything listens on 127.0.0.1.

import { fork, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { registryFromUrl } from '@lossless/core';
import { createNacosRegistry } from '@lossless/nacos';
import { flags, usageError } from './flags.mjs';
import { GRPC_MODES } from './grpc-service.mjs';
import { MODES, PEER_MODES } from './modes.mjs';
import { tlsFiles } from './tls-files.mjs';

const here = (file) => fileURLToPath(new URL(file, import.meta.url));
const WARMUP_MS = 1000;
const CLIENTS = ['lossless', 'plain'];
const PROTOCOLS = ['http1', 'h2', 'grpc'];
const USAGE = `Usage: node examples/rolling-restart/demo.mjs [options]   (pnpm demo [options])
  --mode MODE           provider shutdown: ${MODES.join(', ')} (default lossless);
                        with --protocol grpc: ${GRPC_MODES.join(', ')}
  --client NAME         lossless (@lossless/client) or plain (round robin, no retries) (default lossless)
  --registry URL        file:///dir or nacos://host:8848 (default: a file registry in a temp folder)
  --rate N              requests per second, open loop (default 200)
  --providers N         provider processes (default 3)
  --restarts N          restarts, one provider after the other (default: one per provider)
  --restarts-for S      keep restarting for S seconds instead (a soak)
  --race-ms D           plain client only: keep each old instance in rotation for D ms after SIGTERM
  --steady S            seconds of steady load before and after the restarts (default 3)
  --seed N              the request mix (default 1)
  --quiet-window-ms MS  lossless' quiet window (default 1000)
  --sleep-ms MS         fixed-sleep's sleep (default 3000)
  --grace-seconds S     a provider still running this long after SIGTERM is killed (default 10)
  --protocol P          http1, h2 (TLS, a certificate made for the run; undici negotiates HTTP/2),
                        or grpc (grpc-js providers and consumer)
  --json FILE           write the report as JSON
  --quiet               no live line`;

const args = flags(
  {
    mode: { type: 'string', default: 'lossless' },
    client: { type: 'string', default: 'lossless' },
    registry: { type: 'string' },
    rate: { type: 'string', default: '200' },
    providers: { type: 'string', default: '3' },
    restarts: { type: 'string' },
    'restarts-for': { type: 'string' },
    'race-ms': { type: 'string' },
    steady: { type: 'string', default: '3' },
    seed: { type: 'string', default: '1' },
    'quiet-window-ms': { type: 'string', default: '1000' },
    'sleep-ms': { type: 'string', default: '3000' },
    'grace-seconds': { type: 'string', default: '10' },
    json: { type: 'string' },
    protocol: { type: 'string', default: 'http1' },
    quiet: { type: 'boolean', default: false },
  },
  USAGE,
);
const fail = (message) => usageError(`demo: ${message}`, USAGE);
if (!PROTOCOLS.includes(args.protocol)) fail(`--protocol must be one of ${PROTOCOLS.join(', ')}`);
const modes = args.protocol === 'grpc' ? GRPC_MODES : MODES;
if (!modes.includes(args.mode)) fail(`--mode must be one of ${modes.join(', ')}`);
if (!CLIENTS.includes(args.client)) fail(`--client must be one of ${CLIENTS.join(', ')}`);
if (args.protocol === 'h2' && PEER_MODES.includes(args.mode))
  fail(`--protocol h2 runs the modes ${MODES.filter((m) => !PEER_MODES.includes(m)).join(', ')}`);
const int = (name, min, max) => {
  const v = Number(args[name]);
  if (!Number.isInteger(v) || v < min || v > max) fail(`--${name} must be an integer in ${min}..${max}`);
  return v;
};
const rate = int('rate', 1, 20_000);
const providerCount = int('providers', 1, 20);
if (args.restarts !== undefined && args['restarts-for'] !== undefined)
  fail('--restarts and --restarts-for exclude each other');
if (args.restarts === undefined) args.restarts = String(providerCount);
const restarts = int('restarts', 0, 500);
// a soak: restart for this long, as many times as fits
const restartsForMs = args['restarts-for'] === undefined ? undefined : int('restarts-for', 1, 24 * 3600) * 1000;
const raceMs = args['race-ms'] === undefined ? undefined : int('race-ms', 0, 600_000);
if (raceMs !== undefined && args.client !== 'plain')
  fail('--race-ms models kube-proxy and ingresses, which route without the registry: use it with --client plain');
if (raceMs !== undefined && args.protocol === 'grpc')
  fail('--race-ms is modelled over HTTP (--protocol http1 or h2): the gRPC consumer follows the registry');
const steadyMs = int('steady', 1, 600) * 1000;
// like Kubernetes' terminationGracePeriodSeconds: a provider still running then is killed
const graceMs = int('grace-seconds', 1, 600) * 1000;
int('seed', 0, 2 ** 31);
// the consumer stops by itself after this long, should this process fail to tell it
const READY_TIMEOUT_MS = 30_000;
const consumerMaxSeconds = Math.ceil(
  (2 * steadyMs +
    WARMUP_MS +
    (restartsForMs ?? 0) +
    (restartsForMs === undefined ? restarts : 1) * (graceMs + READY_TIMEOUT_MS)) /
    1000 +
    60,
);

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
    setTimeout(() => reject(new Error(`${name} was not ready within 30 s`)), READY_TIMEOUT_MS).unref();
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
      '--max-seconds',
      String(consumerMaxSeconds),
      ...(raceMs === undefined ? [] : ['--race-ms', String(raceMs)]),
    ],
    // 'advanced': the results are typed arrays, a few MB in a soak
    { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' },
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

// the peers leave the registry to the platform: this process takes them out at SIGTERM, as
// Kubernetes takes a terminating pod out of the endpoints
const platform = PEER_MODES.includes(args.mode)
  ? registryFromUrl(registry, { schemes: { nacos: createNacosRegistry } })
  : undefined;

try {
  const planned = restartsForMs === undefined ? `${restarts} restarts` : `restarts for ${restartsForMs / 1000} s`;
  console.error(
    `lossless demo: ${providerCount} providers (mode ${args.mode}, ${args.protocol}), consumer (client ${args.client}${raceMs === undefined ? '' : `, endpoint race ${raceMs} ms`}), ${rate} req/s, ${planned}, registry ${redact(registry)}`,
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
  const more = (k) => (restartsForMs === undefined ? k < restarts : Date.now() - rolloutStart < restartsForMs);
  for (let k = 0; more(k); k++) {
    const index = k % providers.length;
    const old = providers[index];
    draining = `${old.name} (pid ${old.child.pid})`;
    const sigtermAt = Date.now();
    old.child.kill('SIGTERM');
    const ready = old.events.ready;
    if (raceMs !== undefined)
      consumer.send({
        type: 'terminating',
        origin: `${tls === undefined ? 'http' : 'https'}://127.0.0.1:${ready.port}`,
        at: sigtermAt,
      });
    if (platform !== undefined) void platform.deregister(ready.instance).catch(() => {});
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
      `restart ${k + 1}${restartsForMs === undefined ? `/${restarts}` : ''}: ${old.name} exited after ${exit.at - sigtermAt} ms (${ev.sigterm?.inFlight ?? 0} in flight at SIGTERM); ${replacement.name} ready`,
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
  await platform?.close();
  await cleanupTemp();
  process.exitCode = args.mode === 'lossless' && args.client === 'lossless' && report.failures.total > 0 ? 1 : 0;
} catch (error) {
  clearInterval(live);
  console.error(`\ndemo failed: ${error.message}`);
  cleanup();
  await platform?.close().catch(() => {});
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
  const ok = r.outcomes.indexOf('ok');
  for (let i = 0; i < r.latency.length; i++) {
    if (r.outcome[i] !== ok) continue;
    const t = r.intended[i];
    if (t < warm) continue;
    (t >= from && t <= to ? rollout : steady).push(r.latency[i]);
  }
  const { ok: _, ...failed } = r.counts;
  const total = Object.values(failed).reduce((a, b) => a + b, 0) + r.unfinished;
  return {
    mode: args.mode,
    client: args.client,
    protocol: args.protocol,
    raceMs: raceMs ?? null,
    restartsForS: restartsForMs === undefined ? null : restartsForMs / 1000,
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
    exitMs: {
      mean: Math.round(drains.reduce((sum, d) => sum + d.drainMs, 0) / Math.max(1, drains.length)),
      max: Math.max(0, ...drains.map((d) => d.drainMs)),
    },
    killedAtGrace: drains.filter((d) => typeof d.exitCode !== 'number').length,
    exitCodes: Object.fromEntries(
      Object.entries(Object.groupBy(drains, (d) => String(d.exitCode))).map(([code, list]) => [code, list.length]),
    ),
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
  const ok = r.outcomes.indexOf('ok');
  for (let i = 0; i < r.intended.length; i++) {
    const t = r.intended[i] - offset;
    if (t < 0 || r.outcome[i] === r.unfinishedCode) continue;
    const b = Math.floor(t / bucketMs);
    buckets[b] ??= { t: (b * bucketMs) / 1000, sent: 0, failed: 0, latencies: [] };
    buckets[b].sent++;
    if (r.outcome[i] === ok) buckets[b].latencies.push(r.latency[i]);
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
  mode ${report.mode}, client ${report.client}${report.raceMs === null ? '' : ` (endpoint race ${report.raceMs} ms)`}, protocol ${report.protocol}, registry ${report.registry}, ${report.rate} req/s, ${report.restarts} restarts in ${(report.rolloutMs / 1000).toFixed(1)} s

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

  exit after SIGTERM  mean ${report.exitMs.mean} ms, max ${report.exitMs.max} ms; exit codes ${Object.entries(
    report.exitCodes,
  )
    .map(([code, n]) => `${code}: ${n}`)
    .join(', ')}
${report.drains.length > 30 ? `  (${report.drains.length} drains: the JSON report lists each)` : drainLines(report.drains)}
`);
}

function drainLines(drains) {
  return `  drains         instance  drain ms  longest in flight at SIGTERM ms  requests after SIGTERM  exit
${drains
  .map(
    (d) =>
      `                 ${d.instance.padEnd(8)}  ${String(d.drainMs).padStart(8)}  ${String(d.longestInFlightMs).padStart(32)}  ${String(d.arrivedAfterSigterm).padStart(22)}  ${d.exitCode}`,
  )
  .join('\n')}`;
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
