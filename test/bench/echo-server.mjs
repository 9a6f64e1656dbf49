// The provider of the client benchmarks (client-overhead.mjs, balancer-scale.mjs), in its own
// process: node:http on 127.0.0.1 (with --hosts N, on 127.0.0.1 ... the Nth loopback address, one
// port for all: N instances), an ephemeral port, 200 "ok" with keep-alive. It prints its port on
// stdout, and exits when its parent closes stdin (so it never outlives the benchmark, even when that
// is killed), on SIGTERM/SIGINT, or after --max-ms (default 10 minutes) whatever happens.

import { createServer } from 'node:http';
import { flags, loopback } from './report.mjs';

const values = flags(
  { 'max-ms': { type: 'string', default: '600000' }, hosts: { type: 'string', default: '1' } },
  'Usage: node test/bench/echo-server.mjs [--max-ms MS] [--hosts N]\nStarted by client-overhead.mjs and balancer-scale.mjs: prints its port, exits when stdin closes.',
);
const maxMs = Number(values['max-ms']);
if (!Number.isFinite(maxMs) || maxMs <= 0) throw new Error(`--max-ms: expected a positive number, got ${maxMs}`);
const hosts = Number(values.hosts);
if (!Number.isInteger(hosts) || hosts < 1 || hosts > 60_000)
  throw new Error(`--hosts: expected 1..60000, got ${hosts}`);

const BODY = Buffer.from('ok');
const HEADERS = { 'content-type': 'text/plain', 'content-length': String(BODY.length) };

function serve() {
  const server = createServer((req, res) => {
    req.resume();
    res.writeHead(200, HEADERS);
    res.end(BODY);
  });
  // longer than the clients' idle timeout (undici's and lossless's 4 s): the client closes idle sockets first
  server.keepAliveTimeout = 30_000;
  server.headersTimeout = 35_000;
  return server;
}

const listen = (server, port, host) =>
  new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server.address().port));
  });

const port = await listen(serve(), 0, loopback(0));
for (let i = 1; i < hosts; i++) await listen(serve(), port, loopback(i));
process.stdout.write(`${port}\n`);

const stop = () => process.exit(0);
process.stdin.on('end', stop);
process.stdin.on('close', stop);
process.stdin.resume();
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
setTimeout(() => {
  process.stderr.write(`echo-server: --max-ms ${maxMs} reached, exiting\n`);
  process.exit(3);
}, maxMs);
