// The rolling-restart demo (examples/rolling-restart/demo.mjs) against rnacos as a 3-node raft cluster
// on loopback, with a Nacos node SIGKILLed mid-run and restarted later. Every provider and the consumer
// get `nacos://a,b,c` and connect to the first node, a: that is the node killed once the demo logs
// restart --kill-after, and restarted once it logs restart --back-after. Their connections move to b
// or c and the registrations are made again there; the demo counts every failed request as usual.
//
//   node test/bench/rollout-nacos-cluster.mjs [--kill-after 3] [--back-after 6] [-- demo options...]
//   e.g. node test/bench/rollout-nacos-cluster.mjs -- --rate 400 --restarts 9 --seed 1 --json FILE
//
// Needs `pnpm build` and rnacos (node test/nacos/source.mjs --ensure). Bounded by the demo's own
// bounds; the cluster is stopped on every exit.

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startNacosCluster } from '../nacos/cluster.ts';
import { flags, usageError } from './report.mjs';

const DEMO = fileURLToPath(new URL('../../examples/rolling-restart/demo.mjs', import.meta.url));
const USAGE =
  'Usage: node test/bench/rollout-nacos-cluster.mjs [--kill-after 3] [--back-after 6] [-- demo options (not --registry)]';

const separator = process.argv.indexOf('--');
const own = separator === -1 ? process.argv.slice(2) : process.argv.slice(2, separator);
const demoArgs = separator === -1 ? [] : process.argv.slice(separator + 1);
const args = flags(
  {
    'kill-after': { type: 'string', default: '3' },
    'back-after': { type: 'string', default: '6' },
  },
  USAGE,
  { args: own },
);
const killAfter = Number(args['kill-after']);
const backAfter = Number(args['back-after']);
if (!Number.isInteger(killAfter) || killAfter < 0 || !Number.isInteger(backAfter) || backAfter <= killAfter) {
  usageError('--kill-after takes an integer >= 0, --back-after a larger one', USAGE);
}
if (demoArgs.some((a) => a.startsWith('--registry'))) {
  usageError('the registry is the cluster this script starts', USAGE);
}

const started = performance.now();
const at = () => `${((performance.now() - started) / 1000).toFixed(1)} s`;
const cluster = await startNacosCluster({ nodes: 3 });
console.log(`rnacos cluster of 3 on ${cluster.servers.join(', ')} formed in ${cluster.formedInMs} ms (${at()})`);
const registry = `nacos://${cluster.servers.join(',')}`;
let code = 1;
try {
  const demo = spawn(process.execPath, [DEMO, '--registry', registry, ...demoArgs], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const events = [];
  let pending = Promise.resolve();
  // the demo reports its progress on stderr and its summary on stdout
  const follow = (stream, out) => {
    let buffer = '';
    stream.setEncoding('utf8').on('data', (chunk) => {
      out.write(chunk);
      buffer += chunk;
      const lines = buffer.split('\n');
      buffer = lines.pop();
      for (const line of lines) onLine(line);
    });
  };
  const onLine = (line) => {
    const m = /restart (\d+)\/\d+:/.exec(line);
    // before the first restart when --kill-after is 0: on the "providers ready" line
    const done = m === null ? (/providers ready/.test(line) ? 0 : undefined) : Number(m[1]);
    if (done === killAfter)
      pending = pending.then(async () => {
        await cluster.kill(0);
        events.push(`node 1 (${cluster.servers[0]}) SIGKILLed after restart ${killAfter}, at ${at()}`);
        console.log(`>>> ${events.at(-1)}`);
      });
    if (done === backAfter)
      pending = pending.then(async () => {
        const t0 = performance.now();
        await cluster.restart(0);
        events.push(
          `node 1 restarted after restart ${backAfter}; caught up in ${Math.round(performance.now() - t0)} ms, at ${at()}`,
        );
        console.log(`>>> ${events.at(-1)}`);
      });
  };
  follow(demo.stdout, process.stdout);
  follow(demo.stderr, process.stderr);
  code = await new Promise((resolve) => demo.once('exit', (c) => resolve(c ?? 1)));
  await pending;
  console.log(`\ncluster events:\n${events.map((e) => `  ${e}`).join('\n')}`);
} finally {
  await cluster.stop();
}
process.exitCode = code;
