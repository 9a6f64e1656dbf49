// Two gRPC provider processes (the demo's provider-grpc.mjs: @lossless/grpc on a grpc-js server)
// behind the lossless grpc-js client (lossless:/// target) under steady load; one gets a real
// SIGTERM: not one call fails, it exits 0 by itself once drained, and nothing reaches it after.

import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { createDiscovery, type LosslessDiscovery } from '@lossless/grpc/client';
import { afterEach, describe, expect, it } from 'vitest';
import { WorkClient } from '../../examples/rolling-restart/grpc-service.mjs';
import { tempRegistry, until } from '../support.js';

const PROVIDER = fileURLToPath(new URL('../../examples/rolling-restart/provider-grpc.mjs', import.meta.url));
const SERVICE = 'grpc-orders';
const QUIET_MS = 300;

interface Event {
  event: string;
  inFlight?: number;
  arrivedAfterSigterm?: number;
}

interface Running {
  child: ChildProcess;
  events: Event[];
  exited: Promise<number | null>;
}

type Work = grpc.Client & {
  do(
    request: object,
    options: grpc.CallOptions,
    callback: (error: grpc.ServiceError | null, reply?: { name: string }) => void,
  ): void;
};

describe('a gRPC provider process drained by SIGTERM under load', () => {
  const children: ChildProcess[] = [];
  let discovery: LosslessDiscovery | undefined;
  let client: grpc.Client | undefined;
  let cleanup: (() => Promise<void>)[] = [];

  afterEach(async () => {
    client?.close();
    await discovery?.close();
    for (const child of children.splice(0)) child.kill('SIGKILL');
    for (const fn of cleanup) await fn();
    cleanup = [];
  });

  function start(registry: string, name: string): Running {
    const child = spawn(
      process.execPath,
      [PROVIDER, '--registry', registry, '--service', SERVICE, '--name', name, '--quiet-window-ms', String(QUIET_MS)],
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

  it('loses no call, exits 0 once drained, and gets nothing after its drain', async ({ annotate }) => {
    const registry = await tempRegistry();
    cleanup.push(registry.remove);
    const a = start(registry.url, 'a');
    const b = start(registry.url, 'b');
    await until(() => [a, b].every((p) => p.events.some((e) => e.event === 'ready')), 'both providers ready', 20_000);
    const d = createDiscovery({ registry: registry.url });
    discovery = d;
    const c = new WorkClient(
      `lossless:///${SERVICE}`,
      grpc.credentials.createInsecure(),
      d.clientOptions,
    ) as unknown as Work;
    client = c;
    await until(async () => {
      await d.service(SERVICE).ready;
      return d.service(SERVICE).endpoints.length === 2;
    }, 'both instances listed');

    const served: Record<string, number> = {};
    const failures: string[] = [];
    let sent = 0;
    const pending = new Set<Promise<void>>();
    let stop = false;
    // open loop: one call every 2 ms, 20 % writes, some slower
    const load = (async () => {
      while (!stop) {
        sent++;
        const ms = sent % 20 === 0 ? 150 : 1;
        const p = new Promise<void>((resolve) => {
          c.do({ ms, write: sent % 5 === 0 }, { deadline: Date.now() + 10_000 }, (error, reply) => {
            if (error !== null) failures.push(`${grpc.status[error.code]}: ${error.details}`);
            else if (reply !== undefined) served[reply.name] = (served[reply.name] ?? 0) + 1;
            resolve();
          });
        }).finally(() => pending.delete(p));
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
      `${sent} gRPC calls, 0 failed; a exited 0 ${exitAfterMs} ms after SIGTERM (${sigterm?.inFlight} in flight then, ${exit?.arrivedAfterSigterm} arrived after it)`,
      'measured',
    );
  });
});
