import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { createDiscovery, type LosslessDiscovery, UNSENT_KEY } from '../src/client/index.js';
import { type GrpcProvider, lossless } from '../src/index.js';
import {
  EchoClient,
  echoImplementation,
  echoService,
  instanceAt,
  PushRegistry,
  plainServer,
  sleepCall,
  until,
} from './helpers.js';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

function discover(registry: PushRegistry | string, options: Parameters<typeof createDiscovery>[0] = {}) {
  const discovery = createDiscovery({ registry, logger: silent, ...options });
  cleanup.push(() => discovery.close());
  const client = new EchoClient('lossless:///echo', grpc.credentials.createInsecure(), discovery.clientOptions);
  cleanup.push(() => client.close());
  return { discovery, client };
}

const silent = { debug() {}, info() {}, warn() {}, error() {} };

async function servers(n: number) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const s = await plainServer();
    cleanup.push(() => s.server.forceShutdown());
    out.push(s);
  }
  return out;
}

describe('lossless:/// target', () => {
  it('calls the instances the registry lists, and follows its changes', async () => {
    const [a, b, c] = await servers(3);
    const registry = new PushRegistry();
    registry.set([instanceAt(a!.port), instanceAt(b!.port)]);
    const { client } = discover(registry);
    for (let i = 0; i < 40; i++) expect((await sleepCall(client)).code).toBe(grpc.status.OK);
    expect(a!.calls()).toBeGreaterThan(5);
    expect(b!.calls()).toBeGreaterThan(5);
    registry.set([instanceAt(c!.port)]);
    await until(async () => {
      await sleepCall(client);
      return c!.calls() > 0;
    }, 'calls to reach the new instance');
    const before = a!.calls() + b!.calls();
    for (let i = 0; i < 20; i++) expect((await sleepCall(client)).code).toBe(grpc.status.OK);
    expect(a!.calls() + b!.calls()).toBe(before);
  });

  it('fails with UNAVAILABLE, saying why, when the service has no instance', async () => {
    const registry = new PushRegistry();
    const { client } = discover(registry, { retry: { attempts: 1 } });
    const outcome = await sleepCall(client, {}, { deadline: Date.now() + 2000 });
    expect(outcome.code).toBe(grpc.status.UNAVAILABLE);
    expect(outcome.details).toMatch(/no instance of echo/);
  });

  it('says so when a channel was built without the discovery', async () => {
    createDiscovery({ registry: new PushRegistry(), logger: silent });
    const client = new EchoClient('lossless:///echo', grpc.credentials.createInsecure());
    cleanup.push(() => client.close());
    const outcome = await sleepCall(client, {}, { deadline: Date.now() + 2000 });
    expect(outcome).toMatchObject({ code: grpc.status.UNAVAILABLE });
    expect(outcome.details).toMatch(/discovery\.clientOptions/);
  });
});

describe('warm-up weights', () => {
  it('gives an instance that just registered a small share, next to one already warm', async () => {
    const [warm, cold] = await servers(2);
    const registry = new PushRegistry();
    const warmSince = Date.now() - 3_600_000;
    registry.set([instanceAt(warm!.port, warmSince)]);
    const { discovery, client } = discover(registry);
    await sleepCall(client);
    // arrives now, asks for a 60 s warm-up: about 10 % of its weight
    registry.set([instanceAt(warm!.port, warmSince), instanceAt(cold!.port, Date.now())]);
    await until(() => discovery.instances('echo').length === 2, 'the new instance listed');
    await until(async () => {
      await sleepCall(client);
      return cold!.calls() > 0;
    }, 'the new instance to be connected');
    const base = { warm: warm!.calls(), cold: cold!.calls() };
    for (let i = 0; i < 300; i++) await sleepCall(client);
    const share = (cold!.calls() - base.cold) / 300;
    expect(share).toBeGreaterThan(0.01);
    expect(share).toBeLessThan(0.25);
  });

  it('ramps no instance when all of them are new', async () => {
    const [a, b] = await servers(2);
    const registry = new PushRegistry();
    registry.set([instanceAt(a!.port, Date.now()), instanceAt(b!.port, Date.now())]);
    const { client } = discover(registry);
    for (let i = 0; i < 200; i++) await sleepCall(client);
    expect(a!.calls()).toBeGreaterThan(60);
    expect(b!.calls()).toBeGreaterThan(60);
  });
});

describe('ejection', () => {
  it('takes an instance out the moment an answer carries the marker, until it registers again', async () => {
    const marked = await plainServer({
      ...echoImplementation(),
      sleep: (_call: unknown, callback: grpc.sendUnaryData<unknown>) => {
        const trailers = new grpc.Metadata();
        trailers.set('x-lossless-offline', 'draining');
        callback(null, { ok: true }, trailers);
      },
    });
    cleanup.push(() => marked.server.forceShutdown());
    const [other] = await servers(1);
    const registry = new PushRegistry();
    const registeredAt = Date.now() - 3_600_000;
    registry.set([instanceAt(marked.port, registeredAt), instanceAt(other!.port)]);
    const { discovery, client } = discover(registry);
    await until(async () => {
      await sleepCall(client);
      return marked.calls() > 0;
    }, 'a call to the marked instance');
    const seen = marked.calls();
    for (let i = 0; i < 30; i++) expect((await sleepCall(client)).code).toBe(grpc.status.OK);
    expect(marked.calls()).toBe(seen);
    expect(discovery.refreshCount('echo')).toBeGreaterThan(0);
    // the same registration listed again stays out; a new one comes back
    registry.set([instanceAt(marked.port, registeredAt), instanceAt(other!.port)]);
    for (let i = 0; i < 10; i++) await sleepCall(client);
    expect(marked.calls()).toBe(seen);
    registry.set([instanceAt(marked.port, Date.now() - 3_000_000), instanceAt(other!.port)]);
    await until(async () => {
      await sleepCall(client);
      return marked.calls() > seen;
    }, 'the new registration to be called');
  });

  it('keeps calling instances that all answer with the marker: every instance going away at once', async () => {
    const markedImplementation = {
      ...echoImplementation(),
      sleep: (_call: unknown, callback: grpc.sendUnaryData<unknown>) => {
        const trailers = new grpc.Metadata();
        trailers.set('x-lossless-offline', 'draining');
        callback(null, { ok: true }, trailers);
      },
    };
    const a = await plainServer(markedImplementation);
    const b = await plainServer(markedImplementation);
    cleanup.push(
      () => a.server.forceShutdown(),
      () => b.server.forceShutdown(),
    );
    const registry = new PushRegistry();
    registry.set([instanceAt(a.port), instanceAt(b.port)]);
    const { client } = discover(registry);
    // both get ejected; the table then offers them as the last resort, and calls still go through
    for (let i = 0; i < 30; i++) expect((await sleepCall(client)).code).toBe(grpc.status.OK);
    expect(a.calls() + b.calls()).toBe(30);
  });

  it('stops calling an instance whose connection got GOAWAY, and reconnects only if the registry still lists it', async () => {
    const [a, b] = await servers(2);
    const registry = new PushRegistry();
    registry.set([instanceAt(a!.port), instanceAt(b!.port)]);
    const { client } = discover(registry);
    await until(async () => {
      await sleepCall(client);
      return a!.calls() > 0 && b!.calls() > 0;
    }, 'both instances called');
    // still listed: a connection ended, not an instance gone; it is called again after a registry read
    const listsBefore = registry.lists;
    a!.server.drain(`127.0.0.1:${a!.port}`, 1000);
    await until(() => registry.lists > listsBefore, 'the registry read again after GOAWAY');
    const seen = a!.calls();
    await until(async () => {
      expect((await sleepCall(client)).code).toBe(grpc.status.OK);
      return a!.calls() > seen;
    }, 'the instance called again');
    // gone from the registry when its GOAWAY comes (what a lossless provider does): never called again
    registry.instances = [instanceAt(b!.port)];
    b!.server.drain(`127.0.0.1:${b!.port}`, 1000);
    registry.instances = [instanceAt(a!.port)];
    registry.set([instanceAt(a!.port)]);
    const bSeen = b!.calls();
    for (let i = 0; i < 30; i++) expect((await sleepCall(client)).code).toBe(grpc.status.OK);
    expect(b!.calls()).toBe(bSeen);
  });
});

describe('retries', () => {
  it('retries UNAVAILABLE when nothing was sent: no instance reachable yet, then one comes', async () => {
    const registry = new PushRegistry();
    // a listed instance that refuses connections: calls fail before any byte is sent
    const { server, port: deadPort } = await plainServer();
    server.forceShutdown();
    registry.set([instanceAt(deadPort)]);
    const [live] = await servers(1);
    const { client } = discover(registry, { retry: { attempts: 6, minDelayMs: 50, maxDelayMs: 200 } });
    setTimeout(() => registry.set([instanceAt(live!.port)]), 150);
    const outcome = await sleepCall(client, {}, { deadline: Date.now() + 5000 });
    expect(outcome.code).toBe(grpc.status.OK);
    expect(live!.calls()).toBe(1);
  });

  it('does not retry once the call was sent: a status from the server, whatever its code', async () => {
    const [a] = await servers(1);
    const registry = new PushRegistry();
    registry.set([instanceAt(a!.port)]);
    const { client } = discover(registry, { retry: { attempts: 5 } });
    const outcome = await sleepCall(client, { fail: grpc.status.UNAVAILABLE });
    expect(outcome.code).toBe(grpc.status.UNAVAILABLE);
    expect(outcome.trailers[UNSENT_KEY]).toBeUndefined();
    expect(a!.calls()).toBe(1);
  });

  it('gives up after retry.attempts and says nothing was sent', async () => {
    const registry = new PushRegistry();
    const { server, port } = await plainServer();
    server.forceShutdown();
    registry.set([instanceAt(port)]);
    const { client } = discover(registry, { retry: { attempts: 2, minDelayMs: 10, maxDelayMs: 20 } });
    const outcome = await sleepCall(client, {}, { deadline: Date.now() + 5000 });
    expect(outcome.code).toBe(grpc.status.UNAVAILABLE);
    expect(outcome.trailers[UNSENT_KEY]).toBe('1');
  });
});

describe('with lossless providers', () => {
  it('loses no call while one of two providers drains under steady load', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lossless-grpc-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const url = pathToFileURL(dir).href;
    const providers: GrpcProvider[] = [];
    for (let i = 0; i < 2; i++) {
      const server = new grpc.Server();
      server.addService(echoService, echoImplementation());
      const provider = lossless(server, {
        service: 'echo',
        registry: url,
        admin: false,
        signals: false,
        exit: false,
        logger: silent,
        drain: { quietWindowMs: 300, maxDrainMs: 5000 },
      });
      providers.push(provider);
      cleanup.push(async () => {
        if (provider.state !== 'stopped') await provider.destroy();
      });
      await provider.listen('127.0.0.1:0');
    }
    const { client } = discover(url);
    const outcomes: number[] = [];
    let running = true;
    const load = (async () => {
      const inFlight = new Set<Promise<void>>();
      while (running) {
        const p = sleepCall(client, { ms: 20 }).then((o) => {
          outcomes.push(o.code);
          inFlight.delete(p);
        });
        inFlight.add(p);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      await Promise.all(inFlight);
    })();
    await until(() => outcomes.length > 50, 'steady load');
    const [draining, staying] = providers as [GrpcProvider, GrpcProvider];
    const summary = await draining.drain();
    const afterDrain = outcomes.length;
    await until(() => outcomes.length > afterDrain + 50, 'more calls after the drain');
    running = false;
    await load;
    expect(summary).toMatchObject({ outcome: 'idle', registry: 'removed', cut: [], exitCode: 0 });
    expect(outcomes.filter((c) => c !== grpc.status.OK)).toEqual([]);
    expect(staying.tracker.total).toBeGreaterThan(draining.tracker.total - summary.arrivedDuringDrain);
  });
});

export type { LosslessDiscovery };
