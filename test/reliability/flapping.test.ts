// The registry flaps while three healthy providers serve steady load: its reads fail, its
// subscription delivers an empty list (the confirming read sees the instances, or fails), it leaves
// instances out, and then answers normally again. The client keeps serving from the last good list
// and no request fails; an instance that really leaves (deregistered, drained, closed) is still
// followed, and so is a registry that confirms that no instance is left.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createClient, type LosslessClient } from '@lossless/client';
import {
  createProvider,
  FileRegistry,
  type Instance,
  type InstanceListener,
  type Provider,
  type Registry,
} from '@lossless/core';
import { listRefresher } from '@lossless/core/internal';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempRegistry, until } from '../support.js';
import { failures, steadyLoad } from './load.js';

const SERVICE = 'orders';

/**
 * What the flapping registry answers, for subscription reads (`push`) and for `list()` (the read the
 * client makes to confirm an empty list):
 *   pass     both the real list;
 *   error    both throw;
 *   empty    push [], list() the real list;
 *   lost     push [], list() throws;
 *   partial  both the real list without the `hidden` instance ids.
 */
type Mode = 'pass' | 'error' | 'empty' | 'lost' | 'partial';

/** A Registry around a real one whose answers can be switched to fail, come back empty or leave instances out. */
class FlappingRegistry implements Registry {
  readonly kind = 'flapping';
  readonly readsBack: boolean;
  readonly supportsEnable: boolean;
  mode: Mode = 'pass';
  hidden = new Set<string>();
  /** Subscription reads per mode, the failed ones included. */
  readonly pushReads = new Map<Mode, number>();
  /** list() calls per mode. */
  readonly listCalls = new Map<Mode, number>();
  readonly #inner: Registry;
  readonly #pollMs: number;
  readonly #refreshers = new Set<() => void>();

  constructor(inner: Registry, pollMs: number) {
    this.#inner = inner;
    this.#pollMs = pollMs;
    this.readsBack = inner.readsBack;
    this.supportsEnable = inner.supportsEnable;
  }

  /** Switches the answers; subscribers read again at once. */
  set(mode: Mode, hidden: readonly string[] = []): void {
    this.mode = mode;
    this.hidden = new Set(hidden);
    for (const refresh of this.#refreshers) refresh();
  }

  register(instance: Instance): Promise<void> {
    return this.#inner.register(instance);
  }
  deregister(instance: Instance): Promise<void> {
    return this.#inner.deregister(instance);
  }
  setEnabled(instance: Instance, enabled: boolean): Promise<void> {
    return this.#inner.setEnabled(instance, enabled);
  }
  setWeight(instance: Instance, weight: number): Promise<void> {
    return this.#inner.setWeight(instance, weight);
  }
  lookup(instance: Instance): Promise<Instance | undefined> {
    return this.#inner.lookup(instance);
  }

  async list(service: string): Promise<Instance[]> {
    const mode = this.mode;
    bump(this.listCalls, mode);
    if (mode === 'error' || mode === 'lost') throw new Error(`registry unavailable (${mode})`);
    return this.#answer(service, mode);
  }

  subscribe(service: string, listener: InstanceListener, onError?: (error: Error) => void): () => void {
    const refresher = listRefresher(
      async () => {
        const mode = this.mode;
        bump(this.pushReads, mode);
        if (mode === 'error') throw new Error('registry unavailable (error)');
        if (mode === 'empty' || mode === 'lost') return [];
        return this.#answer(service, mode);
      },
      listener,
      onError,
    );
    const refresh = (): void => refresher.refresh();
    this.#refreshers.add(refresh);
    refresh();
    const poll = setInterval(refresh, this.#pollMs);
    poll.unref();
    return () => {
      refresher.stop();
      clearInterval(poll);
      this.#refreshers.delete(refresh);
    };
  }

  close(): Promise<void> {
    return this.#inner.close();
  }

  async #answer(service: string, mode: Mode): Promise<Instance[]> {
    const all = await this.#inner.list(service);
    return mode === 'partial' ? all.filter((i) => !this.hidden.has(i.id)) : all;
  }
}

function bump(counts: Map<Mode, number>, mode: Mode): void {
  counts.set(mode, (counts.get(mode) ?? 0) + 1);
}

interface Running {
  readonly provider: Provider;
  readonly server: Server;
  readonly id: string;
}

describe('registry flapping (instances vanish and return, empty answers)', () => {
  let registry: Awaited<ReturnType<typeof tempRegistry>>;
  let flapping: FlappingRegistry;
  let client: LosslessClient | undefined;
  const running: Running[] = [];

  beforeEach(async () => {
    registry = await tempRegistry();
    flapping = new FlappingRegistry(new FileRegistry({ dir: registry.dir }), 25);
  });
  afterEach(async () => {
    await client?.destroy();
    client = undefined;
    for (const r of running.splice(0)) if (r.provider.state !== 'stopped') await r.provider.destroy();
    await flapping.close();
    await registry.remove();
  });

  async function startProvider(): Promise<Running> {
    const server = createServer((_req, res) => {
      setTimeout(() => res.end(id), 2);
    });
    server.listen(0, '127.0.0.1');
    const provider = createProvider({
      service: SERVICE,
      server,
      registry: registry.url,
      admin: false,
      signals: false,
      exit: false,
      drain: { quietWindowMs: 200, maxDrainMs: 5000 },
    });
    await provider.start();
    const id = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    const r = { provider, server, id };
    running.push(r);
    return r;
  }

  it('keeps serving from the last good list through every flap, with no failed request, and follows a real departure', async ({
    annotate,
  }) => {
    const [a, b, c] = (await Promise.all([startProvider(), startProvider(), startProvider()])) as [
      Running,
      Running,
      Running,
    ];
    const all = [a.id, b.id, c.id].sort();
    client = createClient({ registry: flapping });
    const cl = client;
    const ids = () =>
      cl
        .service(SERVICE)
        .endpoints.map((e) => e.instance.id)
        .sort();
    await until(() => ids().length === 3, 'the client to list three instances');

    // what the client holds, sampled through each phase
    let phase = 'start';
    const seen = new Map<string, { lists: Set<string>; lastError: boolean }>();
    const sample = (): void => {
      const s = seen.get(phase) ?? { lists: new Set<string>(), lastError: false };
      s.lists.add(ids().join(','));
      if (cl.service(SERVICE).lastError !== undefined) s.lastError = true;
      seen.set(phase, s);
    };
    const sampler = setInterval(sample, 2);

    // ~150 requests/s, each answered with the id of the instance that served it
    const load = steadyLoad({ ratePerSec: 150, maxInFlight: 8, maxRequests: 3000 }, async () => {
      const res = await cl.request(`http://${SERVICE}/`);
      return { status: res.statusCode, by: await res.body.text() };
    });
    const servedBy = (id: string, from: number) => load.outcomes.filter((o) => o.index >= from && o.value?.by === id);

    /** Enters a phase and keeps it until `done` holds and 100 more requests were sent. */
    const during = async (name: string, mode: Mode, done: () => boolean, hidden: string[] = []) => {
      sample();
      phase = name;
      flapping.set(mode, hidden);
      const from = load.sent();
      await until(() => done() && load.sent() >= from + 100, `phase ${name}`, 15_000);
      sample();
    };
    const reads = (counts: Map<Mode, number>, mode: Mode) => counts.get(mode) ?? 0;

    let outcomes: Awaited<ReturnType<typeof load.stop>>;
    let aDroppedAt = Number.POSITIVE_INFINITY;
    const counts: Record<string, number> = {};
    try {
      await during('warm', 'pass', () => true);
      // reads fail: the subscription reports errors, the client keeps its list
      const pushErrors = reads(flapping.pushReads, 'error');
      await during('error', 'error', () => reads(flapping.pushReads, 'error') >= pushErrors + 5);
      const passReads1 = reads(flapping.pushReads, 'pass');
      await during('recovered from error', 'pass', () => reads(flapping.pushReads, 'pass') > passReads1);

      // the subscription delivers an empty list; the client asks list() to confirm, which sees all three
      const confirmsBefore = reads(flapping.listCalls, 'empty');
      const refreshesBefore = cl.refreshCount(SERVICE);
      const emptyPushes = reads(flapping.pushReads, 'empty');
      await during('empty', 'empty', () => reads(flapping.pushReads, 'empty') >= emptyPushes + 5);
      counts.emptyConfirmReads = reads(flapping.listCalls, 'empty') - confirmsBefore;
      counts.emptyRefreshes = cl.refreshCount(SERVICE) - refreshesBefore;
      const passReads = reads(flapping.pushReads, 'pass');
      await during('recovered from empty', 'pass', () => reads(flapping.pushReads, 'pass') > passReads);

      // an empty list that cannot be confirmed: the registry is down for list() too
      const lostBefore = reads(flapping.listCalls, 'lost');
      const lostPushes = reads(flapping.pushReads, 'lost');
      await during('lost', 'lost', () => reads(flapping.pushReads, 'lost') >= lostPushes + 5);
      counts.lostConfirmReads = reads(flapping.listCalls, 'lost') - lostBefore;
      const passReads2 = reads(flapping.pushReads, 'pass');
      await during('recovered from lost', 'pass', () => reads(flapping.pushReads, 'pass') > passReads2);

      // a list without c (c still serves): a non-empty answer is believed; c comes back after it
      await during('partial', 'partial', () => !ids().includes(c.id), [c.id]);
      const backFrom = load.sent();
      await during('back', 'pass', () => ids().length === 3 && servedBy(c.id, backFrom).length > 0);

      // a real departure: a drains (deregistered, marked, closed once idle) and must be dropped
      const summary = await a.provider.drain();
      expect(summary.outcome).toBe('idle');
      await during('a left', 'pass', () => {
        if (!ids().includes(a.id)) aDroppedAt = Math.min(aDroppedAt, performance.now());
        return aDroppedAt < Number.POSITIVE_INFINITY;
      });
      outcomes = await load.stop();
    } finally {
      clearInterval(sampler);
      await load.stop();
    }

    const lists = (name: string) => [...(seen.get(name)?.lists ?? [])];
    const report = {
      requests: outcomes.length,
      failures: failures(outcomes).length,
      ...counts,
      pushErrors: reads(flapping.pushReads, 'error'),
      refreshes: cl.refreshCount(SERVICE),
      perInstance: Object.fromEntries([a, b, c].map((r) => [r.id, servedBy(r.id, 0).length])),
    };
    console.log(`registry flapping: ${JSON.stringify(report)}`);
    await annotate(
      `${report.requests} requests through error, empty, lost, partial and real-departure phases, ${report.failures} failed; ${report.pushErrors} failed registry reads`,
      'measured',
    );

    // no request failed through any phase
    expect(failures(outcomes)).toEqual([]);
    expect(outcomes.every((o) => o.value?.status === 200)).toBe(true);
    // through failed reads and unconfirmed empty lists the client held the last good list, all three
    for (const name of ['error', 'empty', 'lost']) expect(lists(name), `during ${name}`).toEqual([all.join(',')]);
    // it asked the registry to confirm each empty list, and knew when the registry was failing
    expect(counts.emptyRefreshes).toBeGreaterThan(0);
    expect(counts.emptyConfirmReads).toBeGreaterThan(0);
    expect(counts.lostConfirmReads).toBeGreaterThan(0);
    expect(seen.get('error')?.lastError).toBe(true);
    expect(seen.get('lost')?.lastError).toBe(true);
    // a non-empty answer is believed: c was left out, and taken back when listed again
    expect(lists('partial')).toContain([a.id, b.id].sort().join(','));
    expect(lists('back')).toContain(all.join(','));
    // the real departure was followed, and a never came back
    expect(lists('a left').at(-1)).toBe([b.id, c.id].sort().join(','));
    expect(outcomes.filter((o) => o.startedAt > aDroppedAt && o.value?.by === a.id)).toEqual([]);
    expect(outcomes.filter((o) => o.startedAt > aDroppedAt).length).toBeGreaterThanOrEqual(100);

    // when the registry confirms that no instance is left, the client believes it
    const refreshes = cl.refreshCount(SERVICE);
    await Promise.all([b.provider.drain(), c.provider.drain()]);
    await until(() => ids().length === 0, 'the client to drop the last instances');
    expect(cl.refreshCount(SERVICE)).toBeGreaterThan(refreshes);
  });
});
