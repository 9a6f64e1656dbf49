import { createServer } from 'node:http';
import { createClient } from '@lossless/client';
import { Agent, fetch } from 'undici';

const s = createServer((req, res) => {
  res.writeHead(200, { 'content-length': 2 });
  res.end('ok');
});
await new Promise((r) => s.listen(0, '127.0.0.1', r));
const port = s.address().port;
const mode = process.argv[2];
const client = createClient({ registry: `static://127.0.0.1:${port}` });
const agent = new Agent();
const call =
  mode === 'lossless'
    ? async () => {
        const r = await client.fetch('http://bench-service/');
        await r.text();
      }
    : async () => {
        const r = await fetch(`http://127.0.0.1:${port}/`, { dispatcher: agent });
        await r.text();
      };
const N = Number(process.argv[3] ?? 20000);
let done = 0;
const t0 = performance.now();
const c0 = process.cpuUsage();
await Promise.all(
  Array.from({ length: 50 }, async () => {
    while (done < N) {
      done++;
      await call();
    }
  }),
);
const c = process.cpuUsage(c0);
console.log(
  mode,
  ((c.user + c.system) / N).toFixed(1),
  'µs CPU/req',
  Math.round(N / ((performance.now() - t0) / 1000)),
  'req/s',
);
await client.close();
await agent.close();
s.close();
