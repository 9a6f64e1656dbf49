// The provider of the client benchmark (client-overhead.mjs), in its own process: node:http on
// 127.0.0.1, an ephemeral port, 200 "ok" with keep-alive. It prints its port on stdout, and exits
// when its parent closes stdin (so it never outlives the benchmark, even when that is killed), on
// SIGTERM/SIGINT, or after --max-ms (default 10 minutes) whatever happens.

import { createServer } from 'node:http';
import { flags } from './report.mjs';

const values = flags(
  { 'max-ms': { type: 'string', default: '600000' } },
  'Usage: node test/bench/echo-server.mjs [--max-ms MS]\nStarted by client-overhead.mjs: prints its port, exits when stdin closes.',
);
const maxMs = Number(values['max-ms']);
if (!Number.isFinite(maxMs) || maxMs <= 0) throw new Error(`--max-ms: expected a positive number, got ${maxMs}`);

const BODY = Buffer.from('ok');
const HEADERS = { 'content-type': 'text/plain', 'content-length': String(BODY.length) };

const server = createServer((req, res) => {
  req.resume();
  res.writeHead(200, HEADERS);
  res.end(BODY);
});
// longer than the clients' idle timeout (undici's and lossless's 4 s): the client closes idle sockets first
server.keepAliveTimeout = 30_000;
server.headersTimeout = 35_000;

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${server.address().port}\n`);
});

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
