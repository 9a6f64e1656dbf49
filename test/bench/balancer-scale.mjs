// Does a request cost more when a service has more instances? Three measurements, each for 3, 100
// and 1000 instances (--instances), in one run:
//   pick      the balance interceptor alone, over a dispatch that answers at once, with --concurrency
//             requests held in flight (a ring: each new request completes the oldest): ns per request;
//   request   createClient().request() against one echo process that listens on N loopback addresses
//             (127.0.0.1 ... one port: N instances), closed loop, --concurrency in flight: the client
//             process' CPU per request (user + system), the figure the issue states; and in the same
//             round, the baseline: undici's own request() through an Agent, in round robin over the
//             same N origins, which pays for N connections (sockets, pools, timers) with no balancer;
//   at rest   (--rest) a client following --services services of --per-service instances each on the
//             file registry: heap and RSS, and CPU over --rest-seconds with no request at all. With
//             --rest-registry file,nacos the same on Nacos over gRPC too (`nacos`: a local rnacos
//             started for the run; or a nacos:// URL), the instances registered by another process.
//             --rest-only skips the other two measurements.
// Rounds rotate the instance counts (3 100 1000, 100 1000 3, ...) so that drift on a noisy machine
// spreads over all of them; the ratios are medians of per-round ratios against 3 instances.
//
//   node test/bench/balancer-scale.mjs [--instances 3,100,1000] [--rounds 5] [--duration 3] [--warmup 1]
//                                      [--concurrency 50] [--picks 1000000] [--rest] [--services 100]
//                                      [--per-service 10] [--rest-seconds 30] [--rest-registry file,nacos]
//                                      [--rest-only] [--json FILE]

import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createClient } from '@lossless/client';
import { balance, ServiceTable } from '@lossless/client/internal';
import { FileRegistry, silentLogger } from '@lossless/core';
import { Agent, request as undiciRequest } from 'undici';
import { exposeGc, flags, fmt, gitCommit, loopback, median, render, usageError, versionOf } from './report.mjs';

const SERVER = fileURLToPath(new URL('./echo-server.mjs', import.meta.url));

const USAGE =
  'Usage: node test/bench/balancer-scale.mjs [--instances 3,100,1000] [--rounds 5] [--duration 3] [--warmup 1] ' +
  '[--concurrency 50] [--picks 1000000] [--rest] [--services 100] [--per-service 10] [--rest-seconds 30] ' +
  '[--rest-registry file,nacos|nacos://host:port] [--rest-only] [--json FILE]';

const args = flags(
  {
    instances: { type: 'string', default: '3,100,1000' },
    rounds: { type: 'string', default: '5' },
    duration: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '1' },
    concurrency: { type: 'string', default: '50' },
    picks: { type: 'string', default: '1000000' },
    rest: { type: 'boolean', default: false },
    services: { type: 'string', default: '100' },
    'per-service': { type: 'string', default: '10' },
    'rest-seconds': { type: 'string', default: '30' },
    'rest-registry': { type: 'string', default: 'file' },
    'rest-only': { type: 'boolean', default: false },
    json: { type: 'string' },
  },
  USAGE,
);
const counts = args.instances.split(',').map((s) => int('instances', s, 1, 5000));
const rounds = int('rounds', args.rounds, 1, 50);
const durationS = num('duration', args.duration, 0.5, 60);
const warmupS = num('warmup', args.warmup, 0, 30);
const concurrency = int('concurrency', args.concurrency, 1, 1000);
const picks = int('picks', args.picks, 1000, 100_000_000);
const services = int('services', args.services, 1, 10_000);
const perService = int('per-service', args['per-service'], 1, 1000);
const restSeconds = num('rest-seconds', args['rest-seconds'], 1, 600);
if (args['rest-only']) args.rest = true;
const restRegistries = args['rest-registry'].split(',');
for (const r of restRegistries)
  if (r !== 'file' && r !== 'nacos' && !r.startsWith('nacos://'))
    usage(`--rest-registry: expected file, nacos or a nacos:// URL, got ${r}`);

function int(name, value, min, max) {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max)
    usage(`--${name}: expected an integer in ${min}..${max}, got ${value}`);
  return n;
}
function num(name, value, min, max) {
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || n > max) usage(`--${name}: expected a number in ${min}..${max}, got ${value}`);
  return n;
}
function usage(message) {
  usageError(message, USAGE);
}

// the whole run is bounded
const plannedS =
  (args['rest-only'] ? 0 : rounds * counts.length * 2 * (warmupS + durationS + 2)) +
  (args.rest ? (restSeconds + 60) * restRegistries.length : 0);
setTimeout(
  () => {
    console.error(`watchdog: the run took longer than ${Math.round(plannedS * 2 + 120)} s`);
    process.exit(1);
  },
  (plannedS * 2 + 120) * 1000,
).unref();

const gc = exposeGc();

/** A registry of fixed lists, one per service: what a client needs to discover them, nothing else. */
function staticLists(lists) {
  return {
    kind: 'bench',
    list: async (service) => lists.get(service) ?? [],
    subscribe(service, listener) {
      queueMicrotask(() => listener(lists.get(service) ?? []));
      return () => {};
    },
    close: async () => {},
  };
}

function instances(service, n, port = 8080) {
  return Array.from({ length: n }, (_, i) => ({
    service,
    id: `${loopback(i)}:${port}`,
    ip: loopback(i),
    port,
    weight: 100,
    enabled: true,
    healthy: true,
    metadata: { 'lossless.registered-at': String(Date.now() - 3_600_000) },
  }));
}

// ---------------------------------------------------------------------------------------------
// pick: the balancer alone

async function pickNsPerRequest(n) {
  const table = new ServiceTable({
    registry: staticLists(new Map([['svc', instances('svc', n)]])),
    logger: silentLogger,
    now: () => performance.now(),
    refreshIntervalMs: 100,
  });
  await table.get('svc').ready;
  const controller = { aborted: false, paused: false, reason: null, abort() {}, pause() {}, resume() {} };
  const ring = new Array(concurrency);
  let slot = 0;
  const answer = (handler) => {
    handler.onRequestStart?.(controller, {});
    handler.onResponseStart?.(controller, 200, {}, 'OK');
    handler.onResponseEnd?.(controller, {});
  };
  // the dispatch below: holds each request until `concurrency` later ones arrived
  const dispatch = balance({
    table,
    breakers: undefined,
    markerHeader: 'x-lossless-offline',
    curve: { floor: 0.1, aggression: 1 },
    defaultWarmupMs: 60_000,
    serviceOf: (origin) => (origin === 'http://svc' ? 'svc' : undefined),
    now: () => performance.now(),
    wallNow: Date.now,
    random: Math.random,
  })((_opts, handler) => {
    const held = ring[slot];
    if (held !== undefined) answer(held);
    ring[slot] = handler;
    slot = (slot + 1) % concurrency;
    return true;
  });
  const opts = { origin: 'http://svc', path: '/', method: 'GET' };
  const caller = {};
  for (let i = 0; i < 50_000; i++) dispatch(opts, caller); // warm-up
  gc?.();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < picks; i++) dispatch(opts, caller);
  const ns = Number(process.hrtime.bigint() - t0) / picks;
  for (const held of ring) if (held !== undefined) answer(held);
  table.close();
  return ns;
}

// ---------------------------------------------------------------------------------------------
// request: end to end against N loopback instances

function startEcho(hosts) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SERVER, '--hosts', String(hosts), '--max-ms', String(plannedS * 3000)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`echo server exited with ${code}`)));
    createInterface({ input: child.stdout }).once('line', (line) => resolve({ child, port: Number(line) }));
  });
}

async function drive(call) {
  let completed = 0;
  let measuring = false;
  let stopped = false;
  let cpuStart;
  let cpu;
  let errors = 0;
  setTimeout(() => {
    cpuStart = process.cpuUsage();
    measuring = true;
    setTimeout(() => {
      cpu = process.cpuUsage(cpuStart);
      measuring = false;
      stopped = true;
    }, durationS * 1000);
  }, warmupS * 1000);
  const worker = async () => {
    while (!stopped) {
      try {
        await call();
        if (measuring) completed++;
      } catch (error) {
        if (++errors === 1) console.error(`  request failed: ${error.code ?? ''} ${error.message}`);
        if (errors > 100) throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { cpuUsPerReq: (cpu.user + cpu.system) / completed, perSecond: completed / durationS };
}

// ---------------------------------------------------------------------------------------------
// at rest: a client following many services on the file registry, or on Nacos over gRPC

/**
 * Registers `services` x `perService` instances on a Nacos server from another process (so that the
 * writer's connection, health checks and memory are not the measured client's), until killed.
 */
async function nacosWriter(url) {
  const code = `
    import { createNacosRegistry } from '@lossless/nacos';
    import { silentLogger } from '@lossless/core';
    const [url, services, perService] = process.argv.slice(1);
    const registry = createNacosRegistry(url, { logger: silentLogger });
    for (let s = 0; s < Number(services); s++)
      for (const i of JSON.parse(process.env.BENCH_INSTANCES).map((x) => ({ ...x, service: 'svc-' + s, id: x.ip + ':' + x.port })))
        await registry.register(i);
    console.log('registered');
    process.stdin.resume();
    process.stdin.on('end', () => process.exit(0));
  `;
  const child = spawn(
    process.execPath,
    ['--input-type=module', '-e', code, url, String(services), String(perService)],
    {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      env: { ...process.env, BENCH_INSTANCES: JSON.stringify(instances('x', perService)) },
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  process.on('exit', () => child.kill('SIGKILL'));
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the Nacos writer did not register in 120 s')), 120_000);
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (line === 'registered') {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`the Nacos writer exited with ${code}`)));
  });
  child.removeAllListeners('exit');
  return {
    close: async () => {
      const gone = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await gone;
    },
  };
}

/** The registry to measure at rest: a URL for the client, and what to stop afterwards. */
async function restTarget(kind) {
  if (kind === 'file') {
    const dir = await mkdtemp(join(tmpdir(), 'lossless-scale-'));
    const writer = new FileRegistry({ dir, heartbeatMs: 60_000 });
    for (let s = 0; s < services; s++) for (const i of instances(`svc-${s}`, perService)) await writer.register(i);
    return {
      name: 'file registry',
      url: pathToFileURL(dir).href,
      close: async () => {
        await writer.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  }
  let nacos;
  let url = kind;
  if (kind === 'nacos') {
    // the tests' rnacos (node test/nacos/source.mjs --ensure), on free loopback ports
    const { startNacos } = await import('../nacos/server.ts');
    nacos = await startNacos();
    url = `nacos://${nacos.addr}/?grpcPort=${Number(nacos.grpcAddr.split(':').pop())}`;
  }
  try {
    const writer = await nacosWriter(url);
    return {
      name: `Nacos over gRPC${nacos === undefined ? ` (${url})` : ` (rnacos ${nacos.source === 'rnacos' ? '0.8.8' : nacos.source})`}`,
      url,
      close: async () => {
        await writer.close();
        await nacos?.stop();
      },
    };
  } catch (error) {
    await nacos?.stop();
    throw error;
  }
}

async function atRest(kind) {
  const target = await restTarget(kind);
  try {
    gc?.();
    const before = process.memoryUsage();
    const { createNacosRegistry } = await import('@lossless/nacos');
    const client = createClient({
      registry: target.url,
      registrySchemes: { nacos: createNacosRegistry },
      logger: silentLogger,
    });
    // the client's background reads keep no process alive, and neither does `ready` while they run
    const alive = setInterval(() => {}, 1000);
    await Promise.all(Array.from({ length: services }, (_, s) => client.service(`svc-${s}`).ready));
    // Nacos pushes each service's list as its batches land: wait for every instance, bounded
    const deadline = Date.now() + 60_000;
    let listed = [];
    for (;;) {
      listed = Array.from({ length: services }, (_, s) => client.service(`svc-${s}`).endpoints.length);
      if (listed.every((n) => n === perService)) break;
      if (Date.now() > deadline) throw new Error(`the client sees ${listed.join(',')} instances`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    clearInterval(alive);
    await new Promise((resolve) => setTimeout(resolve, 2000)); // first polls settle
    gc?.();
    const after = process.memoryUsage();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await new Promise((resolve) => setTimeout(resolve, restSeconds * 1000));
    const cpu = process.cpuUsage(cpu0);
    const wallMs = performance.now() - t0;
    await client.close();
    return {
      registry: target.name,
      services,
      perService,
      heapMB: (after.heapUsed - before.heapUsed) / 2 ** 20,
      rssMB: (after.rss - before.rss) / 2 ** 20,
      cpuPercent: ((cpu.user + cpu.system) / 1000 / wallMs) * 100,
    };
  } finally {
    await target.close();
  }
}

// ---------------------------------------------------------------------------------------------
// main

console.log(
  `balancer scale: node ${process.version}, ${cpus()[0]?.model ?? 'unknown CPU'} x ${cpus().length}, ` +
    (args['rest-only']
      ? `at rest only: ${restRegistries.join(', ')}, ${restSeconds} s each`
      : `instances ${counts.join('/')}, ${rounds} rounds, ${concurrency} in flight`),
);
const pick = Object.fromEntries(counts.map((n) => [n, []]));
const request = Object.fromEntries(counts.map((n) => [n, []]));
const baseline = Object.fromEntries(counts.map((n) => [n, []]));
if (!args['rest-only']) {
  const echoes = new Map();
  for (const n of counts) echoes.set(n, await startEcho(n));
  process.on('exit', () => {
    for (const { child } of echoes.values()) child.kill('SIGKILL');
  });
  const clients = new Map(
    counts.map((n) => {
      const { port } = echoes.get(n);
      const registry = staticLists(new Map([['svc', instances('svc', n, port)]]));
      return [n, createClient({ registry, services: ['svc'] })];
    }),
  );
  // the baseline: plain undici over the same origins, with the client's keep-alive timeout
  const plain = new Map(
    counts.map((n) => {
      const { port } = echoes.get(n);
      const origins = instances('svc', n, port).map((i) => `http://${i.ip}:${i.port}/`);
      const agent = new Agent({ keepAliveTimeout: 4000 });
      let next = 0;
      return [n, { agent, url: () => origins[next++ % origins.length] }];
    }),
  );
  const check = async ({ statusCode, body }) => {
    const text = await body.text();
    if (statusCode !== 200 || text !== 'ok') throw new Error(`unexpected ${statusCode}`);
  };
  for (let r = 0; r < rounds; r++) {
    const order = counts.map((_, i) => counts[(i + r) % counts.length]);
    const line = [];
    for (const n of order) {
      gc?.();
      pick[n].push(await pickNsPerRequest(n));
      const client = clients.get(n);
      const { agent, url } = plain.get(n);
      // alternate which goes first, so that neither always runs on a warmer machine
      const measure = [
        async () => {
          const res = await drive(async () => check(await client.request('http://svc/')));
          request[n].push(res.cpuUsPerReq);
          return `lossless ${fmt(res.cpuUsPerReq, 1)} µs CPU/req (${Math.round(res.perSecond)}/s)`;
        },
        async () => {
          const res = await drive(async () => check(await undiciRequest(url(), { dispatcher: agent })));
          baseline[n].push(res.cpuUsPerReq);
          return `undici ${fmt(res.cpuUsPerReq, 1)}`;
        },
      ];
      if (r % 2 === 1) measure.reverse();
      const said = [];
      for (const m of measure) said.push(await m());
      line.push(`${n}: pick ${fmt(pick[n].at(-1), 0)} ns, ${said.join(', ')}`);
    }
    console.log(`round ${r + 1}/${rounds}: ${line.join('; ')}`);
  }
  for (const client of clients.values()) await client.close();
  for (const { agent } of plain.values()) await agent.close();
  for (const { child } of echoes.values()) child.kill('SIGKILL');

  const base = counts[0];
  const ratio = (series, n) => median(series[n].map((v, i) => v / series[base][i]));
  // lossless over undici in the same round, then how that grows with the fleet
  const over = Object.fromEntries(counts.map((n) => [n, request[n].map((v, i) => v / baseline[n][i])]));
  const rows = [
    [
      'instances',
      'pick ns/req',
      `pick vs ${base}`,
      'lossless CPU µs/req',
      `vs ${base}`,
      'undici CPU µs/req',
      `vs ${base}`,
      'lossless / undici',
      `lossless / undici vs ${base}`,
    ],
  ];
  for (const n of counts)
    rows.push([
      String(n),
      fmt(median(pick[n]), 0),
      fmt(ratio(pick, n), 2),
      fmt(median(request[n]), 1),
      fmt(ratio(request, n), 2),
      fmt(median(baseline[n]), 1),
      fmt(ratio(baseline, n), 2),
      fmt(median(over[n]), 2),
      fmt(ratio(over, n), 2),
    ]);
  console.log(`\n${render(rows)}`);
  console.log(
    'medians over rounds (ratios: of the per-round ratios). undici: request() through an Agent in round robin over the same origins: what N connections cost without a balancer',
  );
}

let rest;
if (args.rest) {
  rest = [];
  for (const kind of restRegistries) {
    const r = await atRest(kind);
    rest.push(r);
    console.log(
      `\nat rest: ${r.services} services x ${r.perService} instances on the ${r.registry}: ` +
        `heap +${fmt(r.heapMB, 1)} MB, RSS +${fmt(r.rssMB, 1)} MB, CPU ${fmt(r.cpuPercent, 2)} % over ${restSeconds} s`,
    );
  }
}

if (args.json !== undefined) {
  writeFileSync(
    args.json,
    `${JSON.stringify(
      {
        node: process.version,
        cpu: cpus()[0]?.model,
        cores: cpus().length,
        undici: versionOf('undici'),
        commit: gitCommit(['client']),
        concurrency,
        rounds,
        pick,
        request,
        baseline,
        rest,
      },
      null,
      2,
    )}\n`,
  );
}
process.exit(0);
