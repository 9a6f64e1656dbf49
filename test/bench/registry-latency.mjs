// How long a registry takes to carry a change, per registry and transport: Nacos over gRPC, Nacos
// over HTTP (`?transport=http`), and the file registry. For each, over --runs runs:
//   register → seen      a registry registers an instance at a random moment (up to 1 s after the
//                        last change); a subscriber (another registry instance,
//                        its own connection) lists it;
//   deregister → gone    the same instance deregistered; the subscriber's list drops it;
//   SIGKILL → gone       the express example (a real provider process) SIGKILLed; the subscriber's
//                        list drops it (over HTTP Nacos waits for missed heartbeats: the runs of a
//                        transport are killed at once, each timed from its own kill);
//   data lost → back     the server loses its data (rnacos killed and restarted on an empty data
//                        folder; the file registry's files deleted) under a provider process; Nacos'
//                        list (read directly over HTTP) holds the instance again;
//   node killed → moved  (--cluster) a 3-node rnacos raft cluster; a provider connected to one node
//                        (listed first in its URL); that node SIGKILLed; every live node lists the
//                        instance and keeps listing it: the registration moved to a live node.
//                        Each run kills the node the provider is connected to, then restarts it.
// p50 and max of each, in ms. Everything runs on 127.0.0.0/8, bounded by --runs and fixed deadlines.
//
//   node test/bench/registry-latency.mjs [--runs 10] [--cluster-runs 5] [--no-cluster]
//        [--registry nacos://host:port] [--json FILE]
//
// With --registry, that Nacos server is measured instead of a local rnacos: the data-loss and cluster
// rows need a local rnacos (restarted, killed) and are left out. Needs `pnpm build` (pnpm
// bench:registry does it) and rnacos (node test/nacos/source.mjs --ensure).

import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { registryFromUrl, silentLogger } from '@lossless/core';
import { createNacosRegistry } from '@lossless/nacos';
import { startNacosCluster } from '../nacos/cluster.ts';
import { startNacos } from '../nacos/server.ts';
import { flags, fmt, gitCommit, median, render, usageError, versionOf } from './report.mjs';

const EXAMPLE = fileURLToPath(new URL('../../examples/express-provider/server.mjs', import.meta.url));
const USAGE =
  'Usage: node test/bench/registry-latency.mjs [--runs 10] [--cluster-runs 5] [--no-cluster] [--registry nacos://host:port] [--json FILE]';

const args = flags(
  {
    runs: { type: 'string', default: '10' },
    'cluster-runs': { type: 'string', default: '5' },
    'no-cluster': { type: 'boolean', default: false },
    registry: { type: 'string' },
    json: { type: 'string' },
  },
  USAGE,
);
const RUNS = Number(args.runs);
const CLUSTER_RUNS = Number(args['cluster-runs']);
if (!Number.isInteger(RUNS) || RUNS < 1 || RUNS > 100 || !Number.isInteger(CLUSTER_RUNS) || CLUSTER_RUNS < 0) {
  usageError('--runs takes 1..100, --cluster-runs 0 or more', USAGE);
}
if (args.registry !== undefined && !/^nacos:\/\//.test(args.registry)) {
  usageError('--registry takes a nacos:// URL', USAGE);
}

const schemes = { nacos: createNacosRegistry };
const open = (url) => registryFromUrl(url, { schemes, logger: silentLogger });
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
/** A random wait of up to 1 s: the phase of a change against 1 s polls and 0.5 s push batches. */
const phase = () => sleep(Math.random() * 1000);

async function until(check, what, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

/** The instances a Nacos node lists for a service, read from its HTTP API; undefined when it does not answer. */
async function nacosList(addr, service) {
  try {
    const res = await fetch(`http://${addr}/nacos/v1/ns/instance/list?serviceName=${service}`, {
      signal: AbortSignal.timeout(1000),
    });
    if (res.status !== 200) {
      await res.text();
      return undefined;
    }
    return (await res.json()).hosts ?? [];
  } catch {
    return undefined;
  }
}

/** A subscriber's view of one service: the latest list and when it came. */
function follow(registry, service) {
  const view = { list: undefined, changes: [] };
  const stop = registry.subscribe(
    service,
    (instances) => {
      view.list = instances;
      view.changes.push({ at: performance.now(), ids: instances.map((i) => i.id) });
    },
    () => {},
  );
  return { view, stop, has: (id) => view.list?.some((i) => i.id === id) === true };
}

/** The express example as a provider process; resolves once it is ready (registered and read back). */
async function provider(registry, service) {
  const child = spawn(
    process.execPath,
    [
      EXAMPLE,
      ...['--port', '0', '--admin-port', '0', '--registry', registry, '--service', service],
      ...['--warmup-ms', '0', '--quiet-window-ms', '200'],
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  /** Log messages with the time each arrived. */
  const messages = [];
  child.stderr.on('data', (d) => {
    output = (output + d).slice(-4000);
  });
  let buffer = '';
  child.stdout.setEncoding('utf8').on('data', (chunk) => {
    output = (output + chunk).slice(-4000);
    buffer += chunk;
    const lines = buffer.split('\n');
    buffer = lines.pop();
    const at = performance.now();
    for (const line of lines) {
      try {
        messages.push({ at, ...JSON.parse(line) });
      } catch {
        // not a log line
      }
    }
  });
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the provider did not start in 20 s:\n${output}`)), 20_000);
    const check = setInterval(() => {
      const listening = messages.find((m) => m.msg?.startsWith('listening on'));
      if (listening === undefined) return;
      clearTimeout(timer);
      clearInterval(check);
      resolve(listening.port);
    }, 10);
    child.once('exit', (code) => {
      clearTimeout(timer);
      clearInterval(check);
      reject(new Error(`the provider exited with ${code}:\n${output}`));
    });
  });
  child.removeAllListeners('exit');
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return {
    port,
    id: `127.0.0.1:${port}`,
    messages,
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

const stats = (values) => ({
  runs: values.length,
  p50: median(values),
  max: values.length === 0 ? Number.NaN : Math.max(...values),
  values: values.map((v) => Math.round(v)),
});

// ------------------------------------------------------------------------------------------------
// the measurements

/** register → seen and deregister → gone, one run after another. */
async function pushRuns(target) {
  const writer = open(target.url);
  const reader = open(target.url);
  const seen = [];
  const gone = [];
  try {
    for (let i = 0; i < RUNS; i++) {
      const service = `bench-push-${target.key}-${process.pid}-${i}`;
      const sub = follow(reader, service);
      await until(() => sub.view.list !== undefined, 'the first list', 15_000);
      const instance = {
        service,
        id: `127.0.0.1:${20_000 + i}`,
        ip: '127.0.0.1',
        port: 20_000 + i,
        weight: 100,
        enabled: true,
        healthy: true,
        metadata: {},
      };
      // a change lands at a random moment of the subscriber's poll and the server's push batches (not
      // right after the subscription answered, which would time every run from the same phase)
      await phase();
      let t0 = performance.now();
      await writer.register(instance);
      await until(() => sub.has(instance.id), 'the subscriber to see the instance', 15_000);
      seen.push(sub.view.changes.at(-1).at - t0);
      await phase();
      t0 = performance.now();
      await writer.deregister(instance);
      await until(() => !sub.has(instance.id), 'the subscriber to see it gone', 15_000);
      gone.push(sub.view.changes.at(-1).at - t0);
      sub.stop();
    }
  } finally {
    await Promise.all([writer.close(), reader.close()]);
  }
  return { seen: stats(seen), gone: stats(gone) };
}

/** SIGKILL → gone: --runs providers, killed at once when `together`, else one after another. */
async function killRuns(target, together) {
  const reader = open(target.url);
  const times = [];
  const ready = [];
  const prepare = async (i) => {
    const service = `bench-kill-${target.key}-${process.pid}-${i}`;
    const sub = follow(reader, service);
    const p = await provider(target.url, service);
    const run = { sub, p };
    ready.push(run);
    await until(() => sub.has(p.id), 'the subscriber to see the provider', 15_000);
    return run;
  };
  const measure = async ({ sub, p }, random = true) => {
    if (random) await phase();
    const t0 = performance.now();
    await p.kill();
    await until(() => !sub.has(p.id), 'the subscriber to see the SIGKILLed provider gone', 60_000);
    times.push(sub.view.changes.at(-1).at - t0);
    sub.stop();
  };
  try {
    if (together) {
      // started one after another (2 cores), killed at once
      const runs = [];
      for (let i = 0; i < RUNS; i++) runs.push(await prepare(i));
      await Promise.all(runs.map((run) => measure(run, false)));
    } else for (let i = 0; i < RUNS; i++) await measure(await prepare(i));
  } finally {
    await Promise.all(ready.map(({ p }) => p.kill()));
    await reader.close();
  }
  return stats(times);
}

/** Data lost → listed again, under one provider process per run. */
async function healRuns(target) {
  const back = [];
  const afterAnswer = [];
  for (let i = 0; i < RUNS; i++) {
    const service = `bench-heal-${target.key}-${process.pid}-${i}`;
    const p = await provider(target.url, service);
    try {
      await until(async () => (await target.listed(service, p.port)) === true, 'the provider listed', 15_000);
      const t0 = performance.now();
      await target.lose();
      const answered = performance.now();
      await until(async () => (await target.listed(service, p.port)) === true, 'the provider listed again', 30_000);
      back.push(performance.now() - t0);
      afterAnswer.push(performance.now() - answered);
    } finally {
      await p.kill();
    }
  }
  return { back: stats(back), afterAnswer: stats(afterAnswer) };
}

/**
 * Node killed → moved: a provider connected to node k (first in its URL), node k SIGKILLed. Over gRPC
 * the provider's connection is lost and made to a live node, where the redo registers it again: the
 * provider logs "the nacos registry answers again" once its watch says the registration went through
 * (`reconnected`). Over both transports, every live node's list is read for `observeMs`: `settled` is
 * the time after which every live node lists the instance until the end, `absent` how long any of them
 * went without it. Node k is restarted after each run.
 */
async function clusterRuns(cluster, transport, observeMs) {
  const reconnected = [];
  const settled = [];
  const absent = [];
  for (let i = 0; i < CLUSTER_RUNS; i++) {
    const k = i % cluster.nodes.length;
    const order = [k, ...cluster.nodes.map((_, j) => j).filter((j) => j !== k)];
    const url = `nacos://${order.map((j) => cluster.nodes[j].addr).join(',')}/?transport=${transport}`;
    const live = order.slice(1).map((j) => cluster.nodes[j].addr);
    const service = `bench-node-${transport}-${process.pid}-${i}`;
    const p = await provider(url, service);
    try {
      const listedEverywhere = async () =>
        (await Promise.all(live.map((addr) => nacosList(addr, service)))).every(
          (list) => list?.some((h) => h.port === p.port) === true,
        );
      await until(listedEverywhere, 'every node to list the provider', 30_000);
      const t0 = performance.now();
      await cluster.kill(k);
      let settledAt = 0;
      let missing = 0;
      let last = performance.now();
      while (performance.now() - t0 < observeMs) {
        const ok = await listedEverywhere();
        const now = performance.now();
        if (!ok) {
          missing += now - last;
          settledAt = now - t0;
        }
        last = now;
        await sleep(50);
      }
      settled.push(settledAt);
      absent.push(missing);
      const back = p.messages.find((m) => m.at > t0 && /registry answers again/.test(m.msg ?? ''));
      if (transport === 'grpc') {
        if (back === undefined) throw new Error(`the provider did not log its reconnection within ${observeMs} ms`);
        reconnected.push(back.at - t0);
      }
    } finally {
      await p.kill();
      await cluster.restart(k);
    }
  }
  return { reconnected: stats(reconnected), settled: stats(settled), absent: stats(absent) };
}

// ------------------------------------------------------------------------------------------------

const results = [];
const notes = [];
const started = Date.now();
const record = (registry, what, s, note = '') => {
  results.push({ registry, what, ...s, note });
  console.error(`${registry} ${what}: p50 ${fmt(s.p50, 0)} ms, max ${fmt(s.max, 0)} ms ${note}`);
};

let nacos;
let fileDir;
let serverName = 'given by --registry';
try {
  if (args.registry === undefined) {
    nacos = await startNacos();
    serverName = nacos.source === 'rnacos' ? 'rnacos 0.8.8, started for the run' : `${nacos.source} (${nacos.addr})`;
  }
  const local = nacos?.source === 'rnacos';
  const base = args.registry ?? `nacos://${nacos.addr}/?grpcPort=${Number(nacos.grpcAddr.split(':').pop())}`;
  const addr = args.registry === undefined ? nacos.addr : /^nacos:\/\/(?:[^@/]*@)?([^,/?]+)/.exec(args.registry)[1];
  const withParam = (url, param) => `${url}${url.includes('?') ? '&' : '/?'}${param}`;
  fileDir = await mkdtemp(join(tmpdir(), 'lossless-bench-registry-'));
  const fileUrl = pathToFileURL(fileDir).href;
  const targets = [
    {
      key: 'grpc',
      name: 'Nacos, gRPC',
      url: base,
      listed: async (service, port) => (await nacosList(addr, service))?.some((h) => h.port === port),
      lose: local ? () => nacos.restart({ empty: true }) : undefined,
    },
    {
      key: 'http',
      name: 'Nacos, HTTP',
      url: withParam(base, 'transport=http'),
      listed: async (service, port) => (await nacosList(addr, service))?.some((h) => h.port === port),
      lose: local ? () => nacos.restart({ empty: true }) : undefined,
    },
    {
      key: 'file',
      name: 'file',
      url: fileUrl,
      listed: async (service, port) => {
        const r = open(fileUrl);
        try {
          return (await r.list(service)).some((i) => i.port === port);
        } finally {
          await r.close();
        }
      },
      lose: async () => {
        for (const name of await readdir(fileDir)) await rm(join(fileDir, name), { recursive: true, force: true });
      },
    },
  ];
  for (const t of targets) {
    const push = await pushRuns(t);
    record(t.name, 'register → seen by a subscriber', push.seen);
    record(t.name, 'deregister → gone for the subscriber', push.gone);
    // over HTTP Nacos waits for missed heartbeats (15-30 s): those runs are killed at once
    record(
      t.name,
      'SIGKILL → gone for the subscriber',
      await killRuns(t, t.key === 'http'),
      t.key === 'http' ? `(${RUNS} killed at once)` : '',
    );
    if (t.lose === undefined) notes.push(`${t.name}: data loss not measured (needs a local rnacos)`);
    else {
      const heal = await healRuns(t);
      record(
        t.name,
        'data lost → listed again',
        heal.back,
        t.key === 'file'
          ? '(files deleted; the provider looks itself up every second)'
          : `(rnacos restarted empty; after it answered: p50 ${fmt(heal.afterAnswer.p50, 0)} ms, max ${fmt(heal.afterAnswer.max, 0)} ms)`,
      );
    }
  }
  if (nacos !== undefined) {
    await nacos.stop();
    nacos = undefined;
  }

  if (!args['no-cluster'] && args.registry === undefined && CLUSTER_RUNS > 0 && local) {
    const cluster = await startNacosCluster({ nodes: 3 });
    try {
      for (const transport of ['grpc', 'http']) {
        // over HTTP a node's instances may outlive it until their heartbeats are missed: watch longer
        const observeMs = transport === 'grpc' ? 12_000 : 35_000;
        const r = await clusterRuns(cluster, transport, observeMs);
        const name = `${transport === 'grpc' ? 'Nacos, gRPC' : 'Nacos, HTTP'}, 3-node cluster`;
        if (transport === 'grpc') record(name, 'node killed → registered again through a live node', r.reconnected);
        record(
          name,
          'node killed → listed by every live node from then on',
          r.settled,
          `(watched ${observeMs / 1000} s; a live node without it: p50 ${fmt(r.absent.p50, 0)} ms, max ${fmt(r.absent.max, 0)} ms)`,
        );
      }
    } finally {
      await cluster.stop();
    }
  } else notes.push('cluster: not measured');
} finally {
  await nacos?.stop();
  if (fileDir !== undefined) await rm(fileDir, { recursive: true, force: true });
}

const table = [
  ['registry', 'what', 'runs', 'p50 ms', 'max ms', ''],
  ...results.map((r) => [r.registry, r.what, String(r.runs), fmt(r.p50, 0), fmt(r.max, 0), r.note]),
];
const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node ${process.versions.node}, ${process.platform}`;
console.log(render(table));
for (const note of notes) console.log(note);
console.log(
  `\n${machine}; Nacos: ${serverName}; @lossless/nacos ${versionOf('@lossless/nacos') ?? '?'}; ` +
    `commit ${gitCommit(['core', 'nacos']) ?? '?'}; ${Math.round((Date.now() - started) / 1000)} s`,
);
if (args.json !== undefined)
  writeFileSync(
    args.json,
    JSON.stringify({ machine, server: serverName, runs: RUNS, clusterRuns: CLUSTER_RUNS, results, notes }, null, 2),
  );
