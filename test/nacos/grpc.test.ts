// The gRPC transport against a real Nacos-compatible server (see server.ts): pushes instead of polls,
// instances that leave with their connection, redo after the server lost everything, auth, and
// updates over the connection. The subscribers here poll once an hour: what they see came by push.

import type { Instance, RegistrationState } from '@lossless/core';
import { NacosRegistry } from '@lossless/nacos';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { launchExample, listening, type Running } from '../process/example.js';
import { until } from '../support.js';
import { grpcPortOf, type RunningNacos, startNacos } from './server.js';

const NO_POLL = 3_600_000;

let nacos: RunningNacos;
let n = 0;
const closers: (() => Promise<void>)[] = [];
const children: Running[] = [];

beforeAll(async () => {
  nacos = await startNacos();
}, 60_000);
afterAll(async () => {
  await nacos?.stop();
});
afterEach(async () => {
  for (const c of children.splice(0)) c.child.kill('SIGKILL');
  for (const close of closers.splice(0).reverse()) await close();
});

const fresh = () => `grpc-svc-${process.pid}-${++n}`;

function registry(
  extra: Partial<ConstructorParameters<typeof NacosRegistry>[0]> = {},
  server: RunningNacos = nacos,
): NacosRegistry {
  const r = new NacosRegistry({
    servers: server.addr,
    grpcPort: grpcPortOf(server),
    transport: 'grpc',
    pollMs: NO_POLL,
    ...extra,
  });
  closers.push(() => r.close());
  return r;
}

function instance(service: string, port: number, extra: Partial<Instance> = {}): Instance {
  return {
    service,
    id: `127.0.0.1:${port}`,
    ip: '127.0.0.1',
    port,
    weight: 100,
    enabled: true,
    healthy: true,
    metadata: {},
    ...extra,
  };
}

/** A subscriber in this process that never polls: every list it holds came with a push. */
function subscriber(service: string, extra: Partial<ConstructorParameters<typeof NacosRegistry>[0]> = {}) {
  const lists: { at: number; instances: readonly Instance[] }[] = [];
  const unsubscribe = registry(extra).subscribe(service, (instances) => lists.push({ at: Date.now(), instances }));
  closers.push(async () => unsubscribe());
  return {
    lists,
    last: () => lists.at(-1)?.instances,
    ports: () => (lists.at(-1)?.instances ?? []).map((i) => i.port),
  };
}

describe('gRPC transport', () => {
  it('registers over gRPC; a subscriber sees it by push, list() reads it', async ({ annotate }) => {
    const service = fresh();
    const consumer = subscriber(service);
    await until(() => consumer.lists.length === 1, 'the first (empty) list');
    const provider = registry();
    const a = instance(service, 43001);
    const sentAt = Date.now();
    await provider.register(a);
    expect((await provider.list(service)).map((i) => i.id)).toEqual([a.id]);
    await until(() => consumer.ports().includes(43001), 'the push with the instance', 5000);
    const tookMs = (consumer.lists.at(-1)?.at ?? 0) - sentAt;
    await annotate(`registered → seen by push after ${tookMs} ms`, 'measured');
  });

  it('deregister: gone for a subscriber within 1 s (rnacos pushes 0.5–1 s after a change)', async ({ annotate }) => {
    const service = fresh();
    const provider = registry();
    const a = instance(service, 43002);
    await provider.register(a);
    const consumer = subscriber(service);
    await until(() => consumer.ports().includes(43002), 'the subscriber to see the instance');
    const sentAt = Date.now();
    await provider.deregister(a);
    await until(() => consumer.last()?.length === 0, 'the push without the instance', 3000);
    const tookMs = (consumer.lists.at(-1)?.at ?? 0) - sentAt;
    // rnacos batches a change for 500 ms and sends due batches every 500 ms: 0.5–1 s, plus a margin here
    expect(tookMs).toBeLessThan(1500);
    await annotate(`deregistered → gone for the subscriber after ${tookMs} ms`, 'measured');
  });

  it('a SIGKILLed provider leaves with its connection: gone within 3 s', async ({ annotate }) => {
    const service = fresh();
    const consumer = subscriber(service);
    const launched = launchExample([
      '--registry',
      `nacos://${nacos.addr}/?transport=grpc&grpcPort=${grpcPortOf(nacos)}`,
      '--service',
      service,
      '--quiet-window-ms',
      '200',
    ]);
    children.push(launched);
    const provider = await listening(launched);
    await until(() => consumer.ports().includes(provider.port), 'the subscriber to see the provider');
    const killedAt = Date.now();
    provider.child.kill('SIGKILL');
    await until(() => consumer.last()?.length === 0, 'the instance to leave with its connection', 5000);
    const tookMs = (consumer.lists.at(-1)?.at ?? 0) - killedAt;
    expect(tookMs).toBeLessThan(3000);
    await annotate(
      `SIGKILL → gone for the subscriber after ${tookMs} ms (over HTTP it stays until its missed heartbeats remove it, 30 s)`,
      'measured',
    );
  });

  it('weight and enabled updates over the connection reach list() and subscribers', async () => {
    const service = fresh();
    const provider = registry();
    const a = instance(service, 43003, { weight: 10 });
    await provider.register(a);
    const consumer = subscriber(service);
    await until(() => consumer.last()?.[0]?.weight === 10, 'weight 10');
    for (const weight of [25, 50, 75, 100]) await provider.setWeight(a, weight);
    expect((await provider.list(service)).map((i) => i.weight)).toEqual([100]);
    await until(() => consumer.last()?.[0]?.weight === 100, 'weight 100 by push');
    await provider.setEnabled(a, false);
    // Nacos leaves disabled instances out of lists; lookup() still reads it
    expect(await provider.list(service)).toEqual([]);
    expect(await provider.lookup(a)).toMatchObject({ enabled: false, weight: 100 });
    await until(() => consumer.last()?.length === 0, 'the disabled instance to leave the pushed list');
    await provider.setEnabled(a, true);
    expect(await provider.lookup(a)).toMatchObject({ enabled: true, weight: 100 });
    await until(() => consumer.ports().includes(43003), 'the enabled instance back in the pushed list');
  });

  it('reads a Java-style registration (weight 1.0 over HTTP) as weight 100', async () => {
    const service = fresh();
    const query = new URLSearchParams({ serviceName: service, ip: '127.0.0.1', port: '43004', weight: '1.0' });
    const res = await fetch(`http://${nacos.addr}/nacos/v1/ns/instance?${query}`, { method: 'POST' });
    expect(res.status).toBe(200);
    await res.text();
    expect((await registry().list(service)).map((i) => [i.port, i.weight])).toEqual([[43004, 100]]);
  });

  it('a provider restarted on the same ip:port registers its own metadata, and still leaves with its connection', async () => {
    // rnacos gives a gRPC registration the metadata of the address's first registration (kept 60 s after
    // it left): lossless sets its own through the OpenAPI when what Nacos holds differs
    const service = fresh();
    const reader = registry();
    const first = registry();
    const a = instance(service, 43006, { id: 'orders-first', metadata: { 'lossless.registered-at': '1' } });
    await first.register(a);
    await first.close();
    await until(async () => (await reader.lookup(a)) === undefined, 'the first one to leave with its connection');
    const second = registry();
    const b = { ...a, id: 'orders-second', metadata: { 'lossless.registered-at': '2' } };
    await second.register(b);
    expect(await reader.lookup(b)).toMatchObject({
      id: 'orders-second',
      metadata: { 'lossless.registered-at': '2', 'lossless.instance-id': 'orders-second' },
    });
    await second.close();
    await until(
      async () => (await reader.lookup(b)) === undefined,
      'the second one to leave with its connection',
      3000,
    );
  });

  it('lookup: undefined when Nacos does not hold it, a coded rejection when it cannot be reached', async () => {
    const service = fresh();
    expect(await registry().lookup(instance(service, 43005))).toBeUndefined();
    const nowhere = registry({ servers: '127.0.0.1:1', grpcPort: 1, requestTimeoutMs: 500 });
    await expect(nowhere.lookup(instance(service, 43005))).rejects.toMatchObject({
      code: 'LOSSLESS_ERR_NACOS_UNAVAILABLE',
    });
  });
});

describe('gRPC transport when the server loses everything', () => {
  // a server this test can restart empty: a local rnacos, whatever serves the other tests
  let local: RunningNacos;
  beforeAll(async () => {
    local = nacos.source === 'rnacos' ? nacos : await startNacos({ controlled: true });
  }, 120_000);
  afterAll(async () => {
    if (local !== nacos) await local?.stop();
  });

  it('registers again within 10 s of a restart on an empty data folder; watch says unreachable, then present', async ({
    annotate,
  }) => {
    const service = fresh();
    const provider = registry({}, local);
    const a = instance(service, 43010, { weight: 40 });
    await provider.register(a);
    await provider.setWeight(a, 60);
    const states: { at: number; kind: RegistrationState['kind'] }[] = [];
    const stop = provider.watch?.(a, (s) => states.push({ at: Date.now(), kind: s.kind }));
    closers.push(async () => stop?.());
    const killedAt = Date.now();
    await local.restart({ empty: true });
    const backAt = Date.now();
    const reader = registry({}, local);
    let held: Instance | undefined;
    await until(
      async () => {
        held = await reader.lookup(a).catch(() => undefined);
        return held !== undefined;
      },
      'the instance to be registered again',
      10_000,
    );
    const registeredAt = Date.now();
    // the redo sent the latest weight
    expect(held).toMatchObject({ weight: 60, enabled: true });
    await until(() => states.at(-1)?.kind === 'present', 'watch to report it present');
    expect(states.map((s) => s.kind)).toEqual(['unreachable', 'present']);
    expect(registeredAt - backAt).toBeLessThan(10_000);
    await annotate(
      `server killed and restarted empty in ${backAt - killedAt} ms; watch: unreachable after ${(states[0]?.at ?? 0) - killedAt} ms; ` +
        `registered again ${registeredAt - backAt} ms after the server answered; present reported ${(states[1]?.at ?? 0) - backAt} ms after`,
      'measured',
    );
  });
});

describe('gRPC transport with auth on', () => {
  let secured: RunningNacos;
  beforeAll(async () => {
    secured = await startNacos({ auth: { username: 'lossless', password: 'right-password' } });
  }, 120_000);
  afterAll(async () => {
    await secured?.stop();
  });

  it('sends the access token with every request; wrong credentials give LOSSLESS_ERR_NACOS_AUTH', async () => {
    const service = fresh();
    const on = { servers: secured.addr, grpcPort: grpcPortOf(secured) };
    const good = registry({ ...on, username: 'lossless', password: 'right-password' });
    const a = instance(service, 43020);
    const consumer = subscriber(service, { ...on, username: 'lossless', password: 'right-password' });
    await good.register(a);
    expect((await good.list(service)).map((i) => i.id)).toEqual([a.id]);
    await until(() => consumer.ports().includes(43020), 'the authenticated subscriber to get the push');
    const bad = registry({ ...on, username: 'lossless', password: 'wrong' });
    await expect(bad.register(instance(service, 43021))).rejects.toMatchObject({ code: 'LOSSLESS_ERR_NACOS_AUTH' });
    await expect(bad.list(service)).rejects.toMatchObject({ code: 'LOSSLESS_ERR_NACOS_AUTH' });
    // without credentials the server refuses the gRPC request itself
    const anonymous = registry(on);
    await expect(anonymous.list(service)).rejects.toMatchObject({ code: 'LOSSLESS_ERR_NACOS_REQUEST', status: 403 });
    await good.deregister(a);
  });
});
