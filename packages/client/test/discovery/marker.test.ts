import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Instance, silentLogger } from '@lossless/core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type ClientOptions, createClient, type LosslessClient } from '../../src/client.js';
import { ServiceTable } from '../../src/discovery/table.js';
import {
  instance,
  recordingLogger,
  seeded,
  seedOf,
  startServer,
  stopServer,
  TestRegistry,
  type TestServer,
  turn,
  until,
} from '../helpers.js';

const MARKER = 'x-lossless-offline';
const HOUR = 3_600_000;

const servers: TestServer[] = [];
const clients: LosslessClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(servers.splice(0).map(stopServer));
});

const answer =
  (name: string, marked = false) =>
  (_req: IncomingMessage, res: ServerResponse): void => {
    res.setHeader('x-server', name);
    if (marked) res.setHeader(MARKER, 'draining');
    res.end(name);
  };

interface Service {
  readonly client: LosslessClient;
  readonly registry: TestRegistry;
  readonly servers: TestServer[];
  readonly instances: Instance[];
}

/** Three instances (s1, s2, s3) on real servers, registered an hour ago, and a client over them. */
async function service(options: Partial<ClientOptions> = {}, weights = [100, 100, 100]): Promise<Service> {
  const started = await Promise.all(['s1', 's2', 's3'].map((name) => startServer(answer(name))));
  servers.push(...started);
  const instances = started.map((s, i) =>
    instance('svc', `s${i + 1}`, { port: s.port, weight: weights[i] as number, registeredAt: Date.now() - HOUR }),
  );
  const registry = new TestRegistry([...instances]);
  const client = createClient({
    registry,
    services: ['svc'],
    retry: { minDelayMs: 0, maxDelayMs: 0 },
    clock: { random: seeded(seedOf(expect.getState().currentTestName ?? 'marker')) },
    ...options,
  });
  clients.push(client);
  await client.service('svc').ready;
  return { client, registry, servers: started, instances };
}

interface Reply {
  readonly status: number;
  readonly server: string;
  readonly marked: boolean;
  readonly body: string;
}

async function get(client: LosslessClient, path = '/'): Promise<Reply> {
  const res = await client.request(`http://svc${path}`);
  const body = await res.body.text();
  return {
    status: res.statusCode,
    server: String(res.headers['x-server']),
    marked: res.headers[MARKER] !== undefined,
    body,
  };
}

const ids = (client: LosslessClient): string[] => client.service('svc').endpoints.map((e) => e.instance.id);

describe('the offline marker', () => {
  it('takes the instance out of rotation with the first marked response, and reads the registry once', async () => {
    const {
      client,
      registry,
      servers: [, s2],
    } = await service();
    (s2 as TestServer).handler = answer('s2', true);
    let marked: Reply | undefined;
    for (let i = 0; i < 300 && marked === undefined; i++) {
      const reply = await get(client);
      if (reply.marked) marked = reply;
    }
    // the marked response itself is the caller's, as usual
    expect(marked).toEqual({ status: 200, server: 's2', marked: true, body: 's2' });
    expect(s2?.hits).toBe(1);
    expect(ids(client)).toEqual(['s1', 's3']);
    for (let i = 0; i < 200; i++) {
      const reply = await get(client);
      expect(reply.status).toBe(200);
      expect(reply.server).not.toBe('s2');
    }
    expect(s2?.hits, 'requests that reached the marked instance').toBe(1);
    await until(() => registry.listsDone >= 1, 'the registry read');
    expect(registry.listCalls).toBe(1);
    expect(client.refreshCount('svc')).toBe(1);
  });

  it('reads the registry once for a burst of 50 concurrent marked responses', async () => {
    // s2 carries nearly all the weight, so that the 50 requests are in flight on it together
    const { client, registry, servers: list } = await service({ refreshIntervalMs: 0 }, [1, 1000, 1]);
    const held: (() => void)[] = [];
    list.forEach((s, i) => {
      s.handler = (req, res) => {
        held.push(() => answer(`s${i + 1}`, i === 1)(req, res));
        if (held.length === 50) for (const release of held.splice(0)) release();
      };
    });
    const replies = await Promise.all(Array.from({ length: 50 }, () => get(client)));
    expect(replies.every((r) => r.status === 200)).toBe(true);
    const marked = replies.filter((r) => r.marked).length;
    expect(marked, 'concurrent marked responses').toBeGreaterThanOrEqual(40);
    await until(() => registry.listsDone >= 1, 'the registry read');
    await turn();
    await turn();
    expect(registry.listCalls, 'registry reads').toBe(1);
    expect(client.refreshCount('svc')).toBe(1);
    expect(ids(client)).toEqual(['s1', 's3']);
  });

  it('a storm of 2,000 marked responses: registry reads stay bounded, nothing fails', async ({ annotate }) => {
    // every instance marks its answers (a whole service going offline at once), 2,000 requests in
    // flight together; the registry keeps listing them (it has not caught up), so markers keep coming
    const { client, registry, servers: list } = await service();
    const held: (() => void)[] = [];
    list.forEach((s, i) => {
      s.handler = (req, res) => {
        held.push(() => answer(`s${i + 1}`, true)(req, res));
        if (held.length === 2000) for (const release of held.splice(0)) release();
      };
    });
    const started = Date.now();
    const replies = await Promise.all(Array.from({ length: 2000 }, () => get(client)));
    const tookMs = Date.now() - started;
    await until(() => registry.listsDone >= registry.listCalls, 'the registry reads to settle');
    expect(replies.every((r) => r.status === 200)).toBe(true);
    expect(replies.filter((r) => r.marked).length).toBe(2000);
    // one read at once, spaced by refreshIntervalMs (100 ms): at most one per 100 ms of the storm, plus one
    expect(registry.listCalls).toBeLessThanOrEqual(Math.ceil(tookMs / 100) + 2);
    await annotate(
      `2000 marked responses in ${tookMs} ms, all 200; ${registry.listCalls} registry read(s) (bound: one per refreshIntervalMs)`,
      'measured',
    );
  });

  it('retries a marked 503 on another instance and takes the draining one out', async () => {
    const {
      client,
      servers: [s1, s2, s3],
    } = await service();
    (s2 as TestServer).handler = (_req, res) => {
      res.statusCode = 503;
      res.setHeader(MARKER, 'draining');
      res.end('draining');
    };
    for (let i = 0; i < 100 && s2?.hits === 0; i++) {
      const reply = await get(client);
      expect(reply.status).toBe(200);
      expect(reply.server).not.toBe('s2');
    }
    expect(s2?.hits).toBe(1);
    expect(ids(client)).toEqual(['s1', 's3']);
    expect((s1?.hits ?? 0) + (s3?.hits ?? 0)).toBeGreaterThan(0);
  });

  it('brings the instance back only when the registry lists it with a new lossless.registered-at', async () => {
    const {
      client,
      registry,
      servers: [, s2],
      instances,
    } = await service({ refreshIntervalMs: 0 });
    (s2 as TestServer).handler = answer('s2', true);
    for (let i = 0; i < 300 && s2?.hits === 0; i++) await get(client);
    expect(s2?.hits).toBe(1);
    expect(ids(client)).toEqual(['s1', 's3']);
    (s2 as TestServer).handler = answer('s2'); // a new process at the same address, not registered yet

    // the registry lists the same registration again: still out
    registry.push();
    await until(() => registry.listsDone >= 1, 'the marker-triggered read');
    expect(ids(client)).toEqual(['s1', 's3']);
    registry.listed = instances.map((i) => ({ ...i, weight: 100 })); // a change that is not a new registration
    registry.push();
    for (let i = 0; i < 100; i++) expect((await get(client)).server).not.toBe('s2');
    expect(s2?.hits).toBe(1);

    // a new registration of s2
    const again = instance('svc', 's2', { port: s2?.port as number, registeredAt: Date.now() });
    registry.listed = [instances[0] as Instance, again, instances[2] as Instance];
    registry.push();
    expect(ids(client)).toEqual(['s1', 's2', 's3']);
    await until(async () => (await get(client)).server === 's2', 's2 to get traffic again');
  });

  it('ignores a marker from an origin that is not a service', async () => {
    const {
      client,
      servers: [s1],
    } = await service();
    (s1 as TestServer).handler = answer('s1', true);
    const res = await client.request(`http://127.0.0.1:${s1?.port}/`);
    await res.body.text();
    expect(res.headers[MARKER]).toBe('draining');
    expect(ids(client)).toEqual(['s1', 's2', 's3']);
  });
});

describe('registry lists', () => {
  it('does not believe an empty list from a subscription until list() confirms it', async () => {
    const clock = { now: 0 };
    const { client, registry } = await service({
      refreshIntervalMs: 0,
      clock: { now: () => clock.now, random: seeded(seedOf('empty list')) },
    });
    expect((await get(client)).status).toBe(200);
    expect(registry.listCalls).toBe(0);

    registry.push([]); // the subscription says "none", the registry still lists three
    await until(() => registry.listsDone >= 1, 'the confirming read');
    expect(registry.listCalls).toBe(1);
    expect(ids(client)).toEqual(['s1', 's2', 's3']);
    expect((await get(client)).status).toBe(200);

    registry.listed = [];
    registry.push([]); // now list() confirms it
    await until(() => ids(client).length === 0, 'the confirmed empty list');
    expect(registry.listCalls).toBe(2);
    // gone from the list, they may still be draining: a last resort for a while...
    expect((await get(client)).status).toBe(200);
    clock.now += 31_000;
    // ...and no longer
    const error = await get(client).then(
      () => undefined,
      (e: Error & { code?: string }) => e,
    );
    expect(error?.code).toBe('LOSSLESS_ERR_NO_INSTANCE');
    expect(error?.message).toContain('"svc"');
  });

  it('believes an empty first list (no instance yet) and fails with LOSSLESS_ERR_NO_INSTANCE', async () => {
    const registry = new TestRegistry([]);
    const client = createClient({ registry, services: ['svc'] });
    clients.push(client);
    await expect(client.request('http://svc/')).rejects.toMatchObject({ code: 'LOSSLESS_ERR_NO_INSTANCE' });
    expect(registry.listCalls).toBe(0);
  });

  it('skips invalid instances with a logged LOSSLESS_ERR_BAD_INSTANCE warning, and never crashes', async () => {
    const good = await startServer(answer('good'));
    servers.push(good);
    const logger = recordingLogger();
    const valid = instance('svc', 'good', { port: good.port });
    const invalid = [
      instance('svc', 'port-0', { port: 0 }),
      instance('svc', 'bad-ip', { ip: 'not an ip!' }),
      { ...instance('svc', 'neg-weight'), weight: -1 },
      { ...instance('svc', 'nan-weight'), weight: Number.NaN },
      { ...instance('svc', 'bad-meta'), metadata: { 'lossless.registered-at': 5 } },
      { ...instance('svc', 'no-meta'), metadata: null },
      null,
      'not an instance',
    ] as unknown as Instance[];
    const registry = new TestRegistry([...invalid.slice(0, 3), valid, ...invalid.slice(3)]);
    const client = createClient({ registry, services: ['svc'], logger });
    clients.push(client);
    for (let i = 0; i < 20; i++) expect(await get(client)).toMatchObject({ status: 200, server: 'good' });
    expect(ids(client)).toEqual(['good']);
    const warnings = logger.lines.filter((l) => l.level === 'warn' && l.obj.code === 'LOSSLESS_ERR_BAD_INSTANCE');
    expect(warnings).toHaveLength(invalid.length);
    const problems = warnings.map((w) => String(w.obj.problem));
    expect(problems.some((p) => p.includes('port'))).toBe(true);
    expect(problems.some((p) => p.includes('ip'))).toBe(true);
    expect(warnings.every((w) => w.obj.service === 'svc')).toBe(true);

    // and again through a subscription update
    registry.push([...invalid, valid]);
    expect(await get(client)).toMatchObject({ status: 200, server: 'good' });
    expect(logger.lines.filter((l) => l.obj.code === 'LOSSLESS_ERR_BAD_INSTANCE')).toHaveLength(2 * invalid.length);
  });

  it('ignores disabled, unhealthy and zero-weight instances', async () => {
    const clock = { now: 0 };
    const { client, registry, instances } = await service({
      refreshIntervalMs: 0,
      clock: { now: () => clock.now, random: seeded(seedOf('unusable')) },
    });
    registry.listed = [
      { ...(instances[0] as Instance), enabled: false },
      { ...(instances[1] as Instance), healthy: false },
      instances[2] as Instance,
    ];
    registry.push();
    expect(ids(client)).toEqual(['s3']);
    for (let i = 0; i < 20; i++) expect((await get(client)).server).toBe('s3');
    registry.push([{ ...(instances[2] as Instance), weight: 0 }]);
    // s3 listed at weight 0 is never called; s1 and s2, gone from the list, are a last resort for a while
    for (let i = 0; i < 10; i++) expect((await get(client)).server).not.toBe('s3');
    clock.now += 31_000;
    await expect(client.request('http://svc/')).rejects.toMatchObject({ code: 'LOSSLESS_ERR_NO_INSTANCE' });
  });

  it('keeps the last good list when the registry fails', async () => {
    const { client, registry } = await service();
    expect((await get(client)).status).toBe(200);
    for (const s of registry.subscriptions) s.onError?.(new Error('registry unreachable'));
    expect(client.service('svc').lastError?.message).toBe('registry unreachable');
    expect(ids(client)).toEqual(['s1', 's2', 's3']);
    expect((await get(client)).status).toBe(200);
  });
});

/** Runs pending promise callbacks (fake timers do not touch microtasks). */
async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

describe('marker-triggered registry reads are bounded (ServiceTable)', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('coalesces reads while one is under way and spaces them by refreshIntervalMs', async () => {
    vi.useFakeTimers();
    let t = 1000;
    const registry = new TestRegistry([instance('svc', 'a', { port: 1001 }), instance('svc', 'b', { port: 1002 })]);
    const table = new ServiceTable({ registry, logger: silentLogger, now: () => t, refreshIntervalMs: 100 });
    try {
      await table.get('svc').ready;
      let open!: () => void;
      registry.listGate = new Promise<void>((resolve) => {
        open = resolve;
      });
      table.eject('svc', 'svc/a');
      for (let i = 0; i < 100; i++) table.refresh('svc');
      table.eject('svc', 'svc/b');
      expect(registry.listCalls, 'reads while one is under way').toBe(1);
      open();
      await flush();
      expect(registry.listsDone).toBe(1);
      // the requests made meanwhile are served by one more read, not before the interval
      vi.advanceTimersByTime(99);
      t += 99;
      expect(registry.listCalls).toBe(1);
      t += 1;
      vi.advanceTimersByTime(1);
      expect(registry.listCalls).toBe(2);
      await flush();
      expect(registry.listsDone).toBe(2);
      // nothing asked since: no further read
      t += 1000;
      vi.advanceTimersByTime(1000);
      expect(registry.listCalls).toBe(2);
      expect(table.refreshCount('svc')).toBe(2);
      // a storm: 1000 refreshes within one interval make one read
      for (let i = 0; i < 1000; i++) table.refresh('svc');
      await flush();
      expect(registry.listsDone).toBe(3);
      for (let i = 0; i < 1000; i++) table.refresh('svc');
      vi.advanceTimersByTime(50);
      t += 50;
      expect(registry.listCalls).toBe(3);
      t += 50;
      vi.advanceTimersByTime(50);
      expect(registry.listCalls).toBe(4);
    } finally {
      table.close();
    }
  });

  it('never overlaps reads, even with refreshIntervalMs 0: one under way, then one for all asked meanwhile', async () => {
    const registry = new TestRegistry([instance('svc', 'a', { port: 1001 })]);
    const table = new ServiceTable({ registry, logger: silentLogger, now: () => 0, refreshIntervalMs: 0 });
    try {
      await table.get('svc').ready;
      let open!: () => void;
      registry.listGate = new Promise<void>((resolve) => {
        open = resolve;
      });
      for (let i = 0; i < 100; i++) table.refresh('svc');
      expect(registry.listCalls).toBe(1);
      open();
      await until(() => registry.listsDone === 2, 'the follow-up read');
      await turn();
      expect(registry.listCalls).toBe(2);
    } finally {
      table.close();
    }
  });

  it('does nothing for an instance that is not in rotation', async () => {
    const registry = new TestRegistry([instance('svc', 'a', { port: 1001 })]);
    const table = new ServiceTable({ registry, logger: silentLogger, now: () => 0, refreshIntervalMs: 100 });
    try {
      await table.get('svc').ready;
      table.eject('svc', 'svc/unknown');
      table.eject('other', 'other/a');
      expect(registry.listCalls).toBe(0);
      expect(table.get('svc').endpoints).toHaveLength(1);
    } finally {
      table.close();
    }
  });
});

describe('registrations that share an id (counterexamples of marker-scope.property.test.ts)', () => {
  /** Two servers registered under one id (a fixed `instance.id` in a shared config), and a client. */
  async function sameId(): Promise<{ client: LosslessClient; registry: TestRegistry; servers: TestServer[] }> {
    const started = await Promise.all(['s1', 's2'].map((name) => startServer(answer(name))));
    servers.push(...started);
    const registry = new TestRegistry(
      started.map((s) => instance('svc', 'same', { port: s.port, registeredAt: Date.now() - HOUR })),
    );
    const client = createClient({
      registry,
      services: ['svc'],
      refreshIntervalMs: 0,
      clock: { random: seeded(seedOf(expect.getState().currentTestName ?? 'same id')) },
    });
    clients.push(client);
    await client.service('svc').ready;
    return { client, registry, servers: started };
  }
  const origins = (client: LosslessClient): string[] => client.service('svc').endpoints.map((e) => e.origin);

  it('keeps each registration on its own address across registry updates', async () => {
    const { client, registry, servers: started } = await sameId();
    registry.push();
    expect(origins(client)).toEqual(started.map((s) => `http://127.0.0.1:${s.port}`));
    const seen = new Set<string>();
    for (let i = 0; i < 100; i++) seen.add((await get(client)).server);
    expect([...seen].sort()).toEqual(['s1', 's2']);
  });

  it('a marker from one takes out that one only, not the other one with the same id', async () => {
    const {
      client,
      registry,
      servers: [s1, s2],
    } = await sameId();
    (s2 as TestServer).handler = answer('s2', true);
    for (let i = 0; i < 300 && s2?.hits === 0; i++) await get(client);
    expect(s2?.hits).toBe(1);
    expect(origins(client)).toEqual([`http://127.0.0.1:${s1?.port}`]);
    await until(() => registry.listsDone >= 1, 'the marker-triggered read');
    registry.push();
    expect(origins(client)).toEqual([`http://127.0.0.1:${s1?.port}`]);
    for (let i = 0; i < 20; i++) expect(await get(client)).toMatchObject({ status: 200, server: 's1' });
  });
});

describe('every instance draining at once (scale to zero, a Recreate deployment)', () => {
  it('keeps calling the draining instances while no other is in rotation, and leaves them the moment one appears', async () => {
    const { client, registry, servers: three } = await service();
    // every instance goes offline: each answers with the marker, then leaves the registry
    three.forEach((s, i) => {
      s.handler = answer(`s${i + 1}`, true);
    });
    const during: Reply[] = [];
    for (let i = 0; i < 30; i++) during.push(await get(client));
    registry.push([]);
    registry.listed = [];
    await until(() => client.service('svc').endpoints.length === 0, 'the registry to drop them all');
    for (let i = 0; i < 30; i++) during.push(await get(client));
    // nothing failed locally: every request reached one of the draining instances
    expect(during.every((r) => r.status === 200 && r.marked)).toBe(true);

    // a new instance appears: from the next request on, only it is called
    const fresh = await startServer(answer('fresh'));
    servers.push(fresh);
    const next = instance('svc', 'fresh', { port: fresh.port, registeredAt: Date.now() - HOUR });
    registry.listed = [next];
    registry.push([next]);
    await until(() => client.service('svc').endpoints.length === 1, 'the new instance');
    const after: Reply[] = [];
    for (let i = 0; i < 30; i++) after.push(await get(client));
    expect(after.map((r) => r.server)).toEqual(after.map(() => 'fresh'));
  });

  it('still fails with LOSSLESS_ERR_NO_INSTANCE when nothing ever served', async () => {
    const registry = new TestRegistry([]);
    const client = createClient({ registry, services: ['svc'] });
    clients.push(client);
    await expect(client.request('http://svc/')).rejects.toMatchObject({ code: 'LOSSLESS_ERR_NO_INSTANCE' });
  });
});

describe('close and destroy', () => {
  it('are idempotent and join one another, whatever the order', async () => {
    for (const order of [
      ['close', 'close'],
      ['destroy', 'close'],
      ['close', 'destroy'],
      ['destroy', 'destroy'],
      ['close', 'destroy', 'close'],
    ] as const) {
      const { client } = await service();
      expect((await get(client)).status).toBe(200);
      const results = await Promise.allSettled(order.map((op) => client[op]()));
      expect(
        results.map((r) => r.status),
        order.join(' then '),
      ).toEqual(order.map(() => 'fulfilled'));
      // and once more after they settled
      await expect(client.close()).resolves.toBeUndefined();
      await expect(client.destroy()).resolves.toBeUndefined();
    }
  });

  it('a destroy during a close aborts the request the close was waiting for', async () => {
    const { client, servers: three } = await service();
    for (const s of three) s.handler = () => {}; // never answers
    const pending = client.request('http://svc/').then(
      () => 'answered',
      (error: Error & { code?: string }) => error.code ?? error.message,
    );
    await until(() => three.some((s) => s.hits > 0), 'the request to arrive');
    const closed = client.close();
    await client.destroy();
    await closed;
    expect(await pending).not.toBe('answered');
  });
});

describe('breakers of origins that left', () => {
  it('are forgotten once the registry no longer lists the origin', async () => {
    const { client, registry, servers: three, instances } = await service({ breaker: { connectionFailures: 2 } });
    const gone = three[0] as TestServer;
    const origin = `http://127.0.0.1:${gone.port}`;
    await stopServer(gone); // refuses connections from now on
    for (let i = 0; i < 20 && client.circuit(origin) !== 'open'; i++) await get(client);
    expect(client.circuit(origin)).toBe('open');
    registry.listed = instances.slice(1);
    registry.push();
    await until(() => client.circuit(origin) === 'closed', 'the breaker of the origin that left to be forgotten');
  });
});
