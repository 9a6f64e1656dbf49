// Two HTTP/2 provider processes (the demo's provider-h2.mjs: @lossless/core on a node:http2 secure
// server) behind @lossless/client under steady load; one gets a real SIGTERM: not one stream fails,
// it exits 0 by itself once drained, and nothing reaches it after its drain ended.

import { type ChildProcess, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { createClient, type LosslessClient } from '@lossless/client';
import { afterEach, describe, expect, it } from 'vitest';
import { tlsFiles } from '../../examples/rolling-restart/tls-files.mjs';
import { tempRegistry, until } from '../support.js';

const PROVIDER = fileURLToPath(new URL('../../examples/rolling-restart/provider-h2.mjs', import.meta.url));
const SERVICE = 'h2-orders';
const QUIET_MS = 300;

interface Event {
  event: string;
  port?: number;
  inFlight?: number;
  arrivedAfterSigterm?: number;
  drainMs?: number;
}

interface Running {
  child: ChildProcess;
  events: Event[];
  exited: Promise<number | null>;
}

describe('an HTTP/2 provider process drained by SIGTERM under load', () => {
  const children: ChildProcess[] = [];
  let client: LosslessClient | undefined;
  let cleanup: (() => Promise<void>)[] = [];

  afterEach(async () => {
    await client?.destroy();
    client = undefined;
    for (const child of children.splice(0)) child.kill('SIGKILL');
    for (const fn of cleanup) await fn();
    cleanup = [];
  });

  function start(registry: string, tlsDir: string, name: string): Running {
    const child = spawn(
      process.execPath,
      [
        PROVIDER,
        '--tls-dir',
        tlsDir,
        '--registry',
        registry,
        '--service',
        SERVICE,
        '--name',
        name,
        '--quiet-window-ms',
        String(QUIET_MS),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    children.push(child);
    const events: Event[] = [];
    let buffer = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      buffer += chunk;
      const lines = buffer.split('\n');
      buffer = lines.pop() ?? '';
      for (const line of lines) {
        try {
          events.push(JSON.parse(line) as Event);
        } catch {
          // not an event
        }
      }
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    return { child, events, exited };
  }

  it('loses no stream, exits 0 once drained, and gets nothing after its drain', async ({ annotate }) => {
    const registry = await tempRegistry();
    const tls = await tlsFiles();
    cleanup.push(registry.remove, tls.remove);
    const a = start(registry.url, tls.dir, 'a');
    const b = start(registry.url, tls.dir, 'b');
    await until(() => [a, b].every((p) => p.events.some((e) => e.event === 'ready')), 'both providers ready', 20_000);
    const c = createClient({ registry: registry.url, connect: { ca: await readFile(tls.cert, 'utf8') } });
    client = c;
    await until(async () => {
      await c.service(SERVICE).ready;
      return c.service(SERVICE).endpoints.length === 2;
    }, 'both instances listed');

    const served: Record<string, number> = {};
    const failures: string[] = [];
    let sent = 0;
    const pending = new Set<Promise<void>>();
    let stop = false;
    // open loop: one request every 2 ms, 20 % POST, some slower
    const load = (async () => {
      while (!stop) {
        sent++;
        const method = sent % 5 === 0 ? 'POST' : 'GET';
        const ms = sent % 20 === 0 ? 150 : 1;
        const p = c
          .request(`http://${SERVICE}/work?ms=${ms}`, { method, ...(method === 'POST' ? { body: '{}' } : {}) })
          .then(async (res) => {
            const body = (await res.body.json()) as { name: string };
            if (res.statusCode !== 200) failures.push(`HTTP ${res.statusCode}`);
            else served[body.name] = (served[body.name] ?? 0) + 1;
          })
          .catch((error: Error & { code?: string }) => {
            failures.push(`${error.code}: ${error.message}`);
          })
          .finally(() => pending.delete(p));
        pending.add(p);
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    })();

    await until(() => (served.a ?? 0) > 50 && (served.b ?? 0) > 50, 'load on both providers', 20_000);
    const sigtermAt = Date.now();
    a.child.kill('SIGTERM');
    const code = await a.exited;
    const exitAfterMs = Date.now() - sigtermAt;
    const servedByA = served.a ?? 0;
    // load goes on after a exited: all of it to b
    const bBefore = served.b ?? 0;
    await until(() => (served.b ?? 0) > bBefore + 100, 'more load on b');
    stop = true;
    await load;
    await Promise.all(pending);

    expect(failures).toEqual([]);
    expect(code).toBe(0);
    const sigterm = a.events.find((e) => e.event === 'sigterm');
    const exit = a.events.find((e) => e.event === 'exit');
    expect(sigterm).toBeDefined();
    expect(exit).toBeDefined();
    // the adaptive drain: the quiet window after the last arrival, far from drain.maxDrainMs (25 s)
    expect(exitAfterMs).toBeLessThan(10_000);
    expect(served.a).toBe(servedByA);
    const total = Object.values(served).reduce((x, y) => x + y, 0);
    expect(total).toBe(sent);
    await annotate(
      `${sent} requests over HTTP/2, 0 failed; a exited 0 ${exitAfterMs} ms after SIGTERM (${sigterm?.inFlight} in flight then, ${exit?.arrivedAfterSigterm} arrived after it)`,
      'measured',
    );
  });
});
