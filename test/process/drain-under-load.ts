// Shared by the process tests that SIGTERM one of two demo provider processes under steady load
// (h2-sigterm.test.ts over HTTP/2, grpc-sigterm.test.ts over gRPC): the processes with their JSON
// events (examples/rolling-restart/measure.mjs), the open-loop load, and what a user would notice.

import { type ChildProcess, spawn } from 'node:child_process';
import { expect } from 'vitest';
import { until } from '../support.js';

export interface ProviderEvent {
  event: string;
  port?: number;
  inFlight?: number;
  arrivedAfterSigterm?: number;
  drainMs?: number;
}

export interface DemoProvider {
  child: ChildProcess;
  events: ProviderEvent[];
  exited: Promise<number | null>;
}

export interface DemoProviderOptions {
  readonly registry: string;
  readonly service: string;
  readonly name: string;
  readonly quietWindowMs: number;
  /** The script's other flags. */
  readonly args?: readonly string[];
}

/** Starts a demo provider script and collects the events it prints. */
export function startDemoProvider(script: string, o: DemoProviderOptions): DemoProvider {
  const args = [
    ...(o.args ?? []),
    '--registry',
    o.registry,
    '--service',
    o.service,
    '--name',
    o.name,
    '--quiet-window-ms',
    String(o.quietWindowMs),
  ];
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const events: ProviderEvent[] = [];
  let buffer = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    buffer += chunk;
    const lines = buffer.split('\n');
    buffer = lines.pop() ?? '';
    for (const line of lines) {
      try {
        events.push(JSON.parse(line) as ProviderEvent);
      } catch {
        // not an event
      }
    }
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, events, exited };
}

export async function bothReady(a: DemoProvider, b: DemoProvider): Promise<void> {
  await until(() => [a, b].every((p) => p.events.some((e) => e.event === 'ready')), 'both providers ready', 20_000);
}

/**
 * One call of the load: `ms` of work, a write or not; resolves with the name of the provider that
 * answered, rejects with what the caller saw.
 */
export type LoadCall = (ms: number, write: boolean) => Promise<string>;

export interface DrainOutcome {
  sent: number;
  failures: string[];
  /** Calls answered, per provider name. */
  served: Record<string, number>;
  /** What `a` had answered when it exited. */
  servedByA: number;
  code: number | null;
  exitAfterMs: number;
  sigterm: ProviderEvent | undefined;
  exit: ProviderEvent | undefined;
}

/**
 * Sends a call every 2 ms (every 5th a write, every 20th 150 ms long) to the providers `a` and `b`
 * through `call`; once both answered 50, SIGTERMs `a`, waits for its exit, goes on until `b`
 * answered 100 more, then waits for every call.
 */
export async function sigtermUnderLoad(a: DemoProvider, call: LoadCall): Promise<DrainOutcome> {
  const served: Record<string, number> = {};
  const failures: string[] = [];
  let sent = 0;
  const pending = new Set<Promise<void>>();
  let stop = false;
  const load = (async () => {
    while (!stop) {
      sent++;
      const p: Promise<void> = call(sent % 20 === 0 ? 150 : 1, sent % 5 === 0)
        .then(
          (name) => {
            served[name] = (served[name] ?? 0) + 1;
          },
          (error: unknown) => {
            failures.push(String(error instanceof Error ? error.message : error));
          },
        )
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
  return {
    sent,
    failures,
    served,
    servedByA,
    code,
    exitAfterMs,
    sigterm: a.events.find((e) => e.event === 'sigterm'),
    exit: a.events.find((e) => e.event === 'exit'),
  };
}

/** What a user notices: nothing failed, `a` exited 0 by itself, drained adaptively, got nothing after. */
export function expectLossless(o: DrainOutcome): void {
  expect(o.failures).toEqual([]);
  expect(o.code).toBe(0);
  expect(o.sigterm).toBeDefined();
  expect(o.exit).toBeDefined();
  // the adaptive drain: the quiet window after the last arrival, far from drain.maxDrainMs (25 s)
  expect(o.exitAfterMs).toBeLessThan(10_000);
  expect(o.served.a).toBe(o.servedByA);
  expect(Object.values(o.served).reduce((x, y) => x + y, 0)).toBe(o.sent);
}
