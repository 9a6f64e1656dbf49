// What a client costs the garbage collector per request, figures that move by about 3 % between
// runs where CPU time per request moves by 10 % on a shared machine. Each client runs alone in a
// process of its own started with V8's --trace-gc-nvp, closed loop (--concurrency in flight) against
// one echo process for --seconds; from every young-generation collection V8 reports, this sums the
// bytes allocated since the last one and the bytes promoted to the old generation, and counts the
// collections of both generations. Promoted bytes are what the major collections (and the GC's
// background threads, a third of the client process' CPU in client-overhead.mjs) pay for later.
//
//   node test/bench/client-gc.mjs [--clients undici-agent-request,lossless-request] [--seconds 7]
//                                 [--concurrency 50] [--runs 1]
//
// Clients: undici-agent-request (undici.request through an Agent), lossless-request
// (client.request on a static registry), undici-fetch, lossless-fetch. Exits 1 when a request failed.

import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createClient } from '@lossless/client';
import { Agent, fetch as undiciFetch, request as undiciRequest } from 'undici';
import { flags, fmt, median, render, usageError } from './report.mjs';

const SELF = fileURLToPath(import.meta.url);
const SERVER = fileURLToPath(new URL('./echo-server.mjs', import.meta.url));
const USAGE =
  'Usage: node test/bench/client-gc.mjs [--clients undici-agent-request,lossless-request] [--seconds 7] ' +
  '[--concurrency 50] [--runs 1]';
const CLIENTS = {
  'undici-agent-request': (origin) => {
    const agent = new Agent();
    return async () => (await undiciRequest(`${origin}/`, { dispatcher: agent })).body.text();
  },
  'lossless-request': (origin) => {
    const client = createClient({ registry: `static://${new URL(origin).host}` });
    return async () => (await client.request('http://bench-service/')).body.text();
  },
  'undici-fetch': (origin) => {
    const agent = new Agent();
    return async () => (await undiciFetch(`${origin}/`, { dispatcher: agent })).text();
  },
  'lossless-fetch': (origin) => {
    const client = createClient({ registry: `static://${new URL(origin).host}` });
    return async () => (await client.fetch('http://bench-service/')).text();
  },
};

const args = flags(
  {
    clients: { type: 'string', default: 'undici-agent-request,lossless-request' },
    seconds: { type: 'string', default: '7' },
    concurrency: { type: 'string', default: '50' },
    runs: { type: 'string', default: '1' },
    // internal: this process is one client's run (started with --trace-gc-nvp)
    child: { type: 'string' },
    origin: { type: 'string' },
  },
  USAGE,
);
const seconds = Number(args.seconds);
const concurrency = Number(args.concurrency);
const runs = Number(args.runs);
if (!(seconds >= 1 && seconds <= 120)) usageError(`--seconds: expected 1..120, got ${args.seconds}`, USAGE);
if (!(Number.isInteger(concurrency) && concurrency >= 1 && concurrency <= 1000))
  usageError(`--concurrency: expected an integer in 1..1000, got ${args.concurrency}`, USAGE);
if (!(Number.isInteger(runs) && runs >= 1 && runs <= 20)) usageError(`--runs: expected 1..20, got ${args.runs}`, USAGE);
const ids = args.clients.split(',').map((s) => s.trim());
for (const id of ids) if (!(id in CLIENTS)) usageError(`--clients: unknown client "${id}"`, USAGE);

if (args.child !== undefined) {
  // the child: drive one client, then say how many requests completed (the GC lines go to stdout too)
  const call = CLIENTS[args.child](String(args.origin));
  let completed = 0;
  let failed = 0;
  let stop = false;
  setTimeout(() => {
    stop = true;
  }, seconds * 1000);
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (!stop) {
        try {
          if ((await call()) !== 'ok') failed++;
          else completed++;
        } catch {
          failed++;
        }
      }
    }),
  );
  console.log(`RESULT ${JSON.stringify({ completed, failed })}`);
  process.exit(0);
}

const server = spawn(process.execPath, [SERVER, '--max-ms', String((ids.length * runs * (seconds + 5) + 30) * 1000)], {
  stdio: ['pipe', 'pipe', 'inherit'],
});
process.on('exit', () => server.kill('SIGKILL'));
const port = await new Promise((resolve, reject) => {
  createInterface({ input: server.stdout }).once('line', (line) => resolve(Number(line)));
  server.once('exit', (code) => reject(new Error(`echo server exited (code ${code})`)));
});
const origin = `http://127.0.0.1:${port}`;

/** One client's run in a child process: the sums over its young-generation collections. */
function runChild(id) {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        '--trace-gc-nvp',
        SELF,
        '--child',
        id,
        '--origin',
        origin,
        '--seconds',
        String(seconds),
        '--concurrency',
        String(concurrency),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const totals = { allocated: 0, promoted: 0, scavenges: 0, majors: 0, result: undefined };
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (line.startsWith('RESULT ')) totals.result = JSON.parse(line.slice(7));
      const kind = /\bgc=(\w+)/.exec(line)?.[1];
      if (kind === 's') {
        totals.scavenges++;
        totals.allocated += Number(/\ballocated=(\d+)/.exec(line)?.[1] ?? 0);
        totals.promoted += Number(/\bpromoted=(\d+)/.exec(line)?.[1] ?? 0);
      } else if (kind === 'mc' || kind === 'ms') totals.majors++;
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0 || totals.result === undefined) reject(new Error(`${id}: the run exited with code ${code}`));
      else resolve(totals);
    });
  });
}

const results = Object.fromEntries(ids.map((id) => [id, []]));
for (let r = 0; r < runs; r++)
  for (const id of r % 2 === 0 ? ids : [...ids].reverse()) {
    const t = await runChild(id);
    const n = t.result.completed;
    results[id].push({
      requests: n,
      failed: t.result.failed,
      allocatedPerReq: t.allocated / n,
      promotedPerReq: t.promoted / n,
      scavengesPer10k: (t.scavenges / n) * 1e4,
      majorsPer100k: (t.majors / n) * 1e5,
    });
  }

const rows = [['client', 'requests', 'allocated B/req', 'promoted B/req', 'scavenges /10k req', 'major GCs /100k req']];
for (const id of ids) {
  const rs = results[id];
  const m = (k) => median(rs.map((x) => x[k]));
  rows.push([
    id,
    fmt(m('requests'), 0),
    fmt(m('allocatedPerReq'), 0),
    fmt(m('promotedPerReq'), 0),
    fmt(m('scavengesPer10k'), 2),
    fmt(m('majorsPer100k'), 2),
  ]);
}
console.log(
  `${render(rows)}\n(${runs} run${runs > 1 ? 's' : ''} of ${seconds} s each, medians; ${concurrency} in flight)`,
);
const failed = Object.values(results).some((rs) => rs.some((x) => x.failed > 0));
process.exit(failed ? 1 : 0);
