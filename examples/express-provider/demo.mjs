// A guided run of the express example going offline under load (the rolling-restart demo with
// several providers and @lossless/client will replace it). It starts the example as a real process
// on a file registry in a temporary folder, sends steady traffic with some slow requests, sends
// SIGTERM, and reports what a caller saw: every request answered, every response after SIGTERM
// marked, the instance out of the registry before the server closed, and the exit as soon as idle.
// Bounded: at most ~10 s and a few hundred requests, all to 127.0.0.1.

import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

// no options; --help says what it does, and a wrong flag says so instead of being ignored
const USAGE = `Usage: node examples/express-provider/demo.mjs   (pnpm demo:drain)
Starts the express example on a temporary file registry, sends load, sends SIGTERM, reports the drain.`;
try {
  const { values } = parseArgs({ options: { help: { type: 'boolean', short: 'h', default: false } } });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
} catch (error) {
  if (!String(error?.code).startsWith('ERR_PARSE_ARGS')) throw error;
  console.error(`${error.message.split('. ')[0]}\n\n${USAGE}`);
  process.exit(2);
}

const RATE = 50; // requests per second
const SIGTERM_AFTER_MS = 2000;
const QUIET_MS = 1000;
const server = fileURLToPath(new URL('./server.mjs', import.meta.url));
const dir = await mkdtemp(join(tmpdir(), 'lossless-demo-'));
const started = Date.now();
const t = () => `${((Date.now() - started) / 1000).toFixed(2).padStart(5)} s`;
const say = (line) => console.log(`${t()}  ${line}`);

const child = spawn(
  process.execPath,
  [
    server,
    '--port',
    '0',
    '--admin-port',
    '0',
    '--registry',
    pathToFileURL(dir).href,
    '--quiet-window-ms',
    String(QUIET_MS),
  ],
  { stdio: ['ignore', 'pipe', 'inherit'] },
);
const cleanup = () => child.kill('SIGKILL');
process.on('SIGINT', () => {
  cleanup();
  process.exit(130);
});
const exited = new Promise((resolve) => child.on('exit', (code) => resolve({ code, at: Date.now() })));
let port;
let drainLine;
child.stdout.setEncoding('utf8');
let buffer = '';
const ready = new Promise((resolve) => {
  child.stdout.on('data', (chunk) => {
    buffer += chunk;
    const lines = buffer.split('\n');
    buffer = lines.pop();
    for (const line of lines) {
      const entry = JSON.parse(line);
      if (entry.msg.startsWith('listening on')) {
        port = entry.port;
        resolve(port);
      }
      if (entry.msg.startsWith('drain')) drainLine = entry;
    }
  });
});
const timeout = setTimeout(() => {
  say('demo took too long; stopping');
  cleanup();
  process.exit(1);
}, 20_000);

await ready;
const entries = await readdir(join(dir, 'hello-service'));
say(`provider pid ${child.pid} listening on 127.0.0.1:${port}; registry lists ${entries.join(', ')}`);

const agent = new Agent({ keepAlive: true, maxSockets: 20 });
const stats = { sent: 0, ok: 0, failed: 0, marked: 0, stoppedSending: undefined };
const inFlight = new Set();
const get = (path) =>
  new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, marked: res.headers['x-lossless-offline'] !== undefined }));
    });
    req.on('error', (error) => resolve({ error }));
    req.end();
  });

let sigtermAt;
let tick = 0;
const load = setInterval(() => {
  // a caller that honours the marker stops sending to this instance after the first marked reply
  if (stats.stoppedSending !== undefined) return;
  tick++;
  const path = tick % 20 === 0 ? '/work?ms=1500' : '/hello';
  stats.sent++;
  const p = get(path).then((r) => {
    inFlight.delete(p);
    if (r.error) {
      stats.failed++;
      say(`FAILED ${path}: ${r.error.code}`);
      return;
    }
    if (r.status >= 200 && r.status < 300) stats.ok++;
    else stats.failed++;
    if (r.marked) {
      stats.marked++;
      if (stats.stoppedSending === undefined) {
        stats.stoppedSending = Date.now();
        say('first marked response: the caller takes this instance out of rotation');
      }
    }
  });
  inFlight.add(p);
  if (sigtermAt === undefined && Date.now() - started >= SIGTERM_AFTER_MS) {
    sigtermAt = Date.now();
    say(`SIGTERM (${inFlight.size} request(s) in flight)`);
    child.kill('SIGTERM');
  }
}, 1000 / RATE);

const { code, at: exitAt } = await exited;
clearInterval(load);
await Promise.all(inFlight);
agent.destroy();
clearTimeout(timeout);
const left = await readdir(join(dir, 'hello-service'));
say(`provider exited with code ${code}, ${exitAt - sigtermAt} ms after SIGTERM`);
console.log(`
  requests sent        ${stats.sent}
  answered 2xx         ${stats.ok}
  failed               ${stats.failed}
  marked (offline)     ${stats.marked}
  registry entries now ${left.length}
  drain                ${drainLine?.drainMs} ms (${drainLine?.outcome}); longest request in flight at SIGTERM ${drainLine?.longestInFlightAtStartMs} ms; quiet window ${QUIET_MS} ms
`);
await rm(dir, { recursive: true, force: true });
process.exitCode = stats.failed === 0 && code === 0 ? 0 : 1;
