// @lossless/nacos against a real Nacos-compatible server (see server.ts): the Registry contract over
// both transports (gRPC, the default, and HTTP), and each quirk of the `nacos` npm client, shown on the
// raw client and handled by NacosRegistry's HTTP transport. grpc.test.ts has what only gRPC does.

import diagnosticsChannel from 'node:diagnostics_channel';
import { createRequire } from 'node:module';
import type { Instance } from '@lossless/core';
import { createNacosRegistry, NacosRegistry, type NacosTransport } from '@lossless/nacos';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../support.js';
import { grpcPortOf, type RunningNacos, startNacos } from './server.js';

const require = createRequire(import.meta.url);
const { NacosNamingClient } = require('nacos-naming') as {
  NacosNamingClient: new (
    o: object,
  ) => {
    ready(): Promise<void>;
    registerInstance(s: string, i: object, g?: string): Promise<void>;
    deregisterInstance(s: string, i: object, g?: string): Promise<void>;
    subscribe(info: { serviceName: string; groupName?: string }, l: (hosts: { port: number }[]) => void): void;
    close(): Promise<void>;
  };
};
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

let nacos: RunningNacos;
let service = 0;
const closers: (() => Promise<void>)[] = [];

beforeAll(async () => {
  nacos = await startNacos();
}, 60_000);
afterAll(async () => {
  await nacos?.stop();
});
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

function fresh(): string {
  service++;
  return `svc-${process.pid}-${service}`;
}

function registry(extra: Partial<ConstructorParameters<typeof NacosRegistry>[0]> = {}): NacosRegistry {
  const r = new NacosRegistry({
    servers: nacos.addr,
    grpcPort: grpcPortOf(nacos),
    pollMs: 200,
    transport: 'http',
    ...extra,
  });
  closers.push(() => r.close());
  return r;
}

function instance(svc: string, port: number, extra: Partial<Instance> = {}): Instance {
  return {
    service: svc,
    id: `127.0.0.1:${port}`,
    ip: '127.0.0.1',
    port,
    weight: 100,
    enabled: true,
    healthy: true,
    metadata: { zone: 'a' },
    ...extra,
  };
}

/** Weights as Nacos holds them (its own scale), by port, through the OpenAPI. */
async function nacosWeights(svc: string): Promise<Record<number, number>> {
  const res = await fetch(`http://${nacos.addr}/nacos/v1/ns/instance/list?serviceName=${svc}&healthyOnly=false`);
  const body = (await res.json()) as { hosts: { port: number; weight: number }[] };
  return Object.fromEntries(body.hosts.map((h) => [h.port, h.weight]));
}

async function rawRegister(svc: string, port: number, weight: number): Promise<void> {
  const query = new URLSearchParams({ serviceName: svc, ip: '127.0.0.1', port: String(port), weight: String(weight) });
  const res = await fetch(`http://${nacos.addr}/nacos/v1/ns/instance?${query}`, { method: 'POST' });
  expect(res.status).toBe(200);
  await res.text();
}

async function rawPut(svc: string, port: number, params: Record<string, string>): Promise<void> {
  const query = new URLSearchParams({ serviceName: svc, ip: '127.0.0.1', port: String(port), ...params });
  const res = await fetch(`http://${nacos.addr}/nacos/v1/ns/instance?${query}`, { method: 'PUT' });
  expect(res.status).toBe(200);
  await res.text();
}

async function rawClient() {
  const c = new NacosNamingClient({ logger: quiet, serverList: [nacos.addr], namespace: 'public' });
  await c.ready();
  closers.push(() => c.close());
  return c;
}

describe.each(['grpc', 'http'] as const)('NacosRegistry over %s', (transport: NacosTransport) => {
  const over = (extra: Partial<ConstructorParameters<typeof NacosRegistry>[0]> = {}) =>
    registry({ transport, ...extra });
  // distinct ports per transport, so that nothing one leaves behind in the server meets the other
  const port = (p: number) => (transport === 'grpc' ? p : p + 100);

  it('registers, lists, updates enabled and weight, and deregisters', async () => {
    const r = over({ group: 'G_LOSSLESS' });
    const svc = fresh();
    const a = instance(svc, port(41001));
    await r.register(a);
    expect(await r.list(svc)).toEqual([{ ...a, metadata: { zone: 'a', 'lossless.instance-id': a.id } }]);
    await r.setEnabled(a, false);
    expect(await r.list(svc)).toEqual([]); // Nacos leaves disabled instances out of the list
    expect(await r.lookup(a)).toMatchObject({ id: a.id, enabled: false, weight: 100 });
    await r.setEnabled(a, true);
    await r.setWeight(a, 7);
    expect(await r.lookup(a)).toMatchObject({ enabled: true, weight: 7, metadata: { zone: 'a' } });
    await r.deregister(a);
    expect(await r.list(svc)).toEqual([]);
    expect(await r.lookup(a)).toBeUndefined();
  });

  it('keeps the lossless instance id through Nacos', async () => {
    const r = over();
    const svc = fresh();
    await r.register(instance(svc, port(41002), { id: 'orders-7f9c' }));
    expect((await r.list(svc)).map((i) => i.id)).toEqual(['orders-7f9c']);
  });

  it('registers weight 0 as 0, beside an instance at 100', async () => {
    const svc = fresh();
    const r = over();
    await r.register(instance(svc, port(41003)));
    await r.register(instance(svc, port(41004), { weight: 0 }));
    const weights = Object.fromEntries((await r.list(svc)).map((i) => [i.port, i.weight]));
    expect(weights).toEqual({ [port(41003)]: 100, [port(41004)]: 0 });
  });

  it('registers enabled again an instance disabled and deregistered on the same ip:port', async () => {
    const svc = fresh();
    const r = over();
    const a = instance(svc, port(41005));
    await r.register(a);
    await r.setEnabled(a, false);
    await r.deregister(a);
    await r.register(a); // a restart on the same ip:port
    expect(await r.list(svc)).toHaveLength(1);
    expect(await r.lookup(a)).toMatchObject({ enabled: true });
  });

  it('deregisters with its group, whatever the group', async () => {
    const svc = fresh();
    const r = over({ group: 'OTHER_GROUP' });
    const a = instance(svc, port(41006));
    await r.register(a);
    expect(await r.list(svc)).toHaveLength(1);
    expect(await over().list(svc)).toEqual([]); // another group does not see it
    await r.deregister(a);
    expect(await r.list(svc)).toEqual([]);
  });

  it('tells subscribers when the last instance left: the empty list', async () => {
    const svc = fresh();
    const r = over();
    const seen: number[] = [];
    const a = instance(svc, port(41007));
    await r.register(a);
    const unsubscribe = over().subscribe(svc, (list) => seen.push(list.length));
    closers.push(async () => unsubscribe());
    await until(() => seen.at(-1) === 1, 'the subscriber to see the instance');
    await r.deregister(a);
    await until(() => seen.at(-1) === 0, 'the empty list', 5000);
  });

  it('weights follow Nacos convention: lossless 100 is Nacos 1.0, and a Java instance at 1.0 reads as 100', async () => {
    const svc = fresh();
    const r = over();
    await r.register(instance(svc, port(41011)));
    await r.register(instance(svc, port(41012), { weight: 25 }));
    expect(await nacosWeights(svc)).toEqual({ [port(41011)]: 1, [port(41012)]: 0.25 });
    // a Java service registers weight 1.0 (here through the OpenAPI, as its HTTP client would)
    await rawRegister(svc, port(41013), 1);
    const weights = Object.fromEntries((await r.list(svc)).map((i) => [i.port, i.weight]));
    expect(weights).toEqual({ [port(41011)]: 100, [port(41012)]: 25, [port(41013)]: 100 });
  });

  it('sets weight 100 again after a warm-up step (rnacos reads weight 1.0 in an update as "unchanged")', async () => {
    const svc = fresh();
    const r = over();
    const a = instance(svc, port(41014), { weight: 10 });
    await r.register(a);
    await r.setWeight(a, 50);
    expect(await nacosWeights(svc)).toEqual({ [port(41014)]: 0.5 });
    if (nacos.source === 'rnacos' && transport === 'http') {
      // the quirk itself: a plain PUT of 1.0 leaves the weight where it was
      await rawPut(svc, port(41014), { weight: '1.0', enabled: 'true' });
      expect(await nacosWeights(svc)).toEqual({ [port(41014)]: 0.5 });
    }
    await r.setWeight(a, 100);
    expect((await r.lookup(a))?.weight).toBe(100);
    expect((await nacosWeights(svc))[port(41014)]).toBeCloseTo(1, 6);
  });

  it('is created from a nacos:// URL', async () => {
    const [host, p] = nacos.addr.split(':');
    const r = createNacosRegistry(
      `nacos://${host}:${p}/?namespace=public&group=URL_GROUP&pollMs=300&transport=${transport}&grpcPort=${grpcPortOf(nacos)}`,
    );
    closers.push(() => r.close());
    expect(r.options).toMatchObject({
      servers: [nacos.addr],
      group: 'URL_GROUP',
      pollMs: 300,
      namespace: 'public',
      transport,
    });
    const svc = fresh();
    await r.register(instance(svc, port(41010)));
    expect(await r.list(svc)).toHaveLength(1);
  });

  it('fails with a coded error when no server answers; lookup rejects instead of answering "not there"', async () => {
    const r = over({ servers: '127.0.0.1:1', grpcPort: 1, requestTimeoutMs: 500 });
    await expect(r.list('x')).rejects.toMatchObject({ code: 'LOSSLESS_ERR_NACOS_UNAVAILABLE' });
    await expect(r.lookup(instance('x', 41015))).rejects.toMatchObject({ code: 'LOSSLESS_ERR_NACOS_UNAVAILABLE' });
  });
});

describe('quirks of the nacos npm client, handled by the HTTP transport', () => {
  it('quirk: the client registers weight 0 as 1; NacosRegistry registers 0', async () => {
    const svc = fresh();
    const raw = await rawClient();
    await raw.registerInstance(svc, { ip: '127.0.0.1', port: 41203, weight: 0 });
    const r = registry();
    // Nacos weight 1 is lossless weight 100
    expect((await r.list(svc)).map((i) => i.weight)).toEqual([100]);
    await r.register(instance(svc, 41204, { weight: 0 }));
    const weights = Object.fromEntries((await r.list(svc)).map((i) => [i.port, i.weight]));
    expect(weights).toEqual({ 41203: 100, 41204: 0 });
  });

  it('quirk: a disabled overlay outlives re-registration; NacosRegistry registers enabled again', async () => {
    const svc = fresh();
    const r = registry();
    const a = instance(svc, 41205);
    await r.register(a);
    await r.setEnabled(a, false);
    await r.deregister(a);
    await r.register(a); // a restart on the same ip:port
    expect(await r.list(svc)).toHaveLength(1);
    expect(await r.get(a)).toMatchObject({ enabled: true });
  });

  it('quirk: the client never tells subscribers that the last instance left; NacosRegistry does', async () => {
    const svc = fresh();
    const r = registry();
    const raw = await rawClient();
    const rawSeen: number[] = [];
    const seen: number[] = [];
    const a = instance(svc, 41207);
    await r.register(a);
    raw.subscribe({ serviceName: svc }, (hosts) => rawSeen.push(hosts.length));
    const unsubscribe = r.subscribe(svc, (list) => seen.push(list.length));
    closers.push(async () => unsubscribe());
    await until(() => seen.at(-1) === 1 && rawSeen.at(-1) === 1, 'both subscribers to see the instance');
    await r.deregister(a);
    await until(() => seen.at(-1) === 0, 'NacosRegistry to deliver the empty list', 5000);
    // the raw client polls (at 1 s, then every cacheMillis) but drops empty answers
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(rawSeen.includes(0)).toBe(false);
  });

  it('quirk: without push the client refreshes only every cacheMillis; NacosRegistry sees changes within pollMs', async () => {
    const svc = fresh();
    const r = registry();
    const raw = await rawClient();
    await r.register(instance(svc, 41208));
    let rawCount = 0;
    raw.subscribe({ serviceName: svc }, (hosts) => {
      rawCount = hosts.length;
    });
    const counts: number[] = [];
    const unsubscribe = r.subscribe(svc, (list) => counts.push(list.length));
    closers.push(async () => unsubscribe());
    await until(() => rawCount === 1 && counts.at(-1) === 1, 'both to see one instance');
    // let the client's first scheduled refresh (after 1 s) pass: its next one is cacheMillis (10 s) later
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const before = Date.now();
    await r.register(instance(svc, 41209));
    await until(() => counts.at(-1) === 2, 'NacosRegistry to see the second instance', 3000);
    expect(Date.now() - before).toBeLessThan(3000);
    expect(rawCount).toBe(1);
  });

  it('quirk: the client reports the host LAN address as clientIP; lossless reports 127.0.0.1', async () => {
    const seen: string[] = [];
    const onRequest = (message: unknown): void => {
      const { request } = message as { request: { origin: string; path: string } };
      if (request.path.includes('clientIP='))
        seen.push(new URL(request.path, request.origin).searchParams.get('clientIP') ?? '');
    };
    diagnosticsChannel.subscribe('undici:request:create', onRequest);
    try {
      const svc = fresh();
      const r = registry();
      const unsubscribe = r.subscribe(svc, () => {});
      closers.push(async () => unsubscribe());
      await until(() => seen.length > 0, 'the client to ask for the instance list with its clientIP');
    } finally {
      diagnosticsChannel.unsubscribe('undici:request:create', onRequest);
    }
    expect(new Set(seen)).toEqual(new Set(['127.0.0.1']));
  });
});
