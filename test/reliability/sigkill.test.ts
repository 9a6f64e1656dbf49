// A provider process dies with SIGKILL under load: no drain, no deregistration, no marker. Its
// registry entry lingers until someone notices the dead pid (here the client reads the registry only
// on directory changes, as a remote registry notices a dead instance only after its heartbeat
// timeout), so the client's own protections carry the load: connections refused by the dead instance
// are retried on the survivors, and its circuit opens.

import diagnosticsChannel from 'node:diagnostics_channel';
import { createClient, type LosslessClient } from '@lossless/client';
import { StaticRegistry } from '@lossless/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type RunningExample, startExample } from '../process/example.js';
import { tempRegistry, until } from '../support.js';
import { failures, steadyLoad } from './load.js';

const SERVICE = 'hello-service';

interface Attempt {
  readonly origin: string;
  readonly method: string;
  readonly at: number;
  readonly code?: string | undefined;
}

/** Every attempt the client makes and every attempt that failed, from undici's diagnostics channels. */
function recordAttempts(): { attempts: Attempt[]; failed: Attempt[]; stop: () => void } {
  const attempts: Attempt[] = [];
  const failed: Attempt[] = [];
  type Message = { request: { origin: string; method: string }; error?: { code?: string } };
  const onCreate = (m: unknown): void => {
    const { request } = m as Message;
    attempts.push({ origin: String(request.origin), method: request.method, at: performance.now() });
  };
  const onError = (m: unknown): void => {
    const { request, error } = m as Message;
    failed.push({ origin: String(request.origin), method: request.method, at: performance.now(), code: error?.code });
  };
  diagnosticsChannel.subscribe('undici:request:create', onCreate);
  diagnosticsChannel.subscribe('undici:request:error', onError);
  return {
    attempts,
    failed,
    stop: () => {
      diagnosticsChannel.unsubscribe('undici:request:create', onCreate);
      diagnosticsChannel.unsubscribe('undici:request:error', onError);
    },
  };
}

function countBy(values: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const v of values) counts[v] = (counts[v] ?? 0) + 1;
  return counts;
}

describe('provider killed with SIGKILL under load', () => {
  let registry: Awaited<ReturnType<typeof tempRegistry>>;
  let client: LosslessClient | undefined;
  let providers: RunningExample[] = [];

  beforeEach(async () => {
    registry = await tempRegistry();
  });
  afterEach(async () => {
    await client?.destroy();
    client = undefined;
    for (const p of providers) p.child.kill('SIGKILL');
    await Promise.all(providers.map((p) => p.exited));
    providers = [];
    await registry.remove();
  });

  function startProviders(n: number): Promise<RunningExample[]> {
    return Promise.all(
      Array.from({ length: n }, () =>
        startExample(['--registry', registry.url, '--service', SERVICE, '--warmup-ms', '0']),
      ),
    );
  }

  /** SIGKILLs the provider; resolves once the client has seen its connections end. */
  async function kill(victim: RunningExample): Promise<void> {
    victim.child.kill('SIGKILL');
    await victim.exited;
    // the kernel closed the victim's sockets before its parent heard of the exit; one more turn of
    // the event loop and the client has seen every one of them end
    await new Promise((resolve) => setTimeout(resolve, 20));
  }

  it('retries refused connections on the survivors, opens the circuit, and loses no GET', async ({ annotate }) => {
    providers = await startProviders(3);
    // no periodic re-read: the client learns of the dead process only from a directory change (the
    // survivors' heartbeats, every 5 s), long after its breaker had to act
    client = createClient({ registry: `${registry.url}?pollMs=60000` });
    const c = client;
    await until(() => c.service(SERVICE).endpoints.length === 3, 'the client to list three instances');
    const recorded = recordAttempts();

    const victim = providers[0]!;
    const victimOrigin = `http://127.0.0.1:${victim.port}`;
    let killedAt = Number.POSITIVE_INFINITY;
    let circuitOpenAt = Number.POSITIVE_INFINITY;
    let droppedAt = Number.POSITIVE_INFINITY;
    const watcher = setInterval(() => {
      const now = performance.now();
      if (now < killedAt) return;
      if (circuitOpenAt === Number.POSITIVE_INFINITY && c.circuit(victimOrigin) === 'open') circuitOpenAt = now;
      if (
        droppedAt === Number.POSITIVE_INFINITY &&
        !c.service(SERVICE).endpoints.some((e) => e.origin === victimOrigin)
      )
        droppedAt = now;
    }, 2);

    // ~200 GETs/s, up to 16 in flight
    const load = steadyLoad({ ratePerSec: 200, maxInFlight: 16, maxRequests: 1200 }, async () => {
      const res = await c.request(`http://${SERVICE}/hello`);
      const body = (await res.body.json()) as { pid: number };
      return { status: res.statusCode, pid: body.pid };
    });
    let outcomes: Awaited<ReturnType<typeof load.stop>>;
    try {
      await until(() => load.sent() >= 300, 'load before the kill', 15_000);
      killedAt = performance.now();
      await kill(victim);
      const sentAtKill = load.sent();
      await until(() => load.sent() >= sentAtKill + 600, 'load after the kill', 20_000);
      outcomes = await load.stop();
      // the registry catches up too: the next read after a directory change drops the dead pid's entry
      await until(() => droppedAt < Number.POSITIVE_INFINITY, 'the client to drop the dead instance', 15_000);
    } finally {
      clearInterval(watcher);
      recorded.stop();
      await load.stop();
    }

    const afterKill = outcomes.filter((o) => o.startedAt > killedAt);
    const survivors = new Set(providers.slice(1).map((p) => p.child.pid));
    const toVictim = recorded.attempts.filter((a) => a.origin === victimOrigin);
    const failedOnVictim = recorded.failed.filter((a) => a.origin === victimOrigin);
    const report = {
      requests: outcomes.length,
      failures: failures(outcomes).length,
      attempts: recorded.attempts.length,
      retries: recorded.attempts.length - outcomes.length,
      failedAttempts: countBy(recorded.failed.map((a) => a.code ?? 'none')),
      circuitOpenAfterKillMs: Math.round(circuitOpenAt - killedAt),
      droppedFromListAfterKillMs: Math.round(droppedAt - killedAt),
      attemptsToVictimAfterKill: toVictim.filter((a) => a.at > killedAt).length,
      attemptsToVictimAfterCircuitOpen: toVictim.filter((a) => a.at > circuitOpenAt).length,
    };
    console.log(`sigkill under load: ${JSON.stringify(report)}`);
    await annotate(
      `${report.requests} GETs, ${report.failures} failed, ${report.retries} retries (${JSON.stringify(report.failedAttempts)}); circuit open ${report.circuitOpenAfterKillMs} ms after the kill, registry entry dropped after ${report.droppedFromListAfterKillMs} ms`,
      'measured',
    );

    // nothing lost: every GET answered 200
    expect(failures(outcomes)).toEqual([]);
    expect(outcomes).toHaveLength(load.sent());
    expect(outcomes.every((o) => o.value?.status === 200)).toBe(true);
    // the kill did hit requests (cut in flight, or refused), and each was retried elsewhere
    expect(failedOnVictim.length).toBeGreaterThan(0);
    expect(recorded.failed.every((a) => a.origin === victimOrigin)).toBe(true);
    expect(report.retries).toBe(recorded.failed.length);
    // the breaker took the dead instance out of rotation, long before the registry did
    expect(circuitOpenAt).toBeLessThan(droppedAt);
    // from then on the survivors served everything: at most a half-open probe went to the dead one
    expect(report.attemptsToVictimAfterCircuitOpen).toBeLessThanOrEqual(1);
    expect(afterKill.length).toBeGreaterThanOrEqual(600);
    expect(afterKill.every((o) => survivors.has(o.value?.pid))).toBe(true);
    for (const pid of survivors) expect(afterKill.some((o) => o.value?.pid === pid)).toBe(true);
  });

  it('retries a POST without idempotency key whose connection was refused: nothing was sent', async ({ annotate }) => {
    providers = await startProviders(2);
    const [victim, survivor] = providers as [RunningExample, RunningExample];
    await kill(victim);
    // a registry that still lists the dead instance (static: it never notices)
    client = createClient({
      registry: new StaticRegistry([victim, survivor].map((p) => ({ host: '127.0.0.1', port: p.port }))),
    });
    const c = client;
    const recorded = recordAttempts();
    const answers: { status: number; accepted: { n: number }; pid: number }[] = [];
    try {
      for (let n = 0; n < 20; n++) {
        const res = await c.request(`http://${SERVICE}/orders`, {
          method: 'POST',
          body: JSON.stringify({ n }),
          headers: { 'content-type': 'application/json' },
        });
        answers.push({
          status: res.statusCode,
          ...((await res.body.json()) as { accepted: { n: number }; pid: number }),
        });
      }
    } finally {
      recorded.stop();
    }
    const refusedPosts = recorded.failed.filter(
      (a) => a.method === 'POST' && a.origin === `http://127.0.0.1:${victim.port}` && a.code === 'ECONNREFUSED',
    );
    console.log(`sigkill, refused POSTs: ${JSON.stringify({ posts: answers.length, refused: refusedPosts.length })}`);
    await annotate(
      `${answers.length} POSTs without idempotency key, ${refusedPosts.length} refused by the dead instance and retried, all 201`,
      'measured',
    );

    // some POSTs were first sent to the dead instance, refused, and then answered by the survivor
    expect(refusedPosts.length).toBeGreaterThan(0);
    expect(recorded.failed).toEqual(refusedPosts);
    expect(answers.map((a) => a.status)).toEqual(answers.map(() => 201));
    expect(answers.map((a) => a.accepted.n)).toEqual(answers.map((_, n) => n));
    expect(answers.every((a) => a.pid === survivor.child.pid)).toBe(true);
  });
});
