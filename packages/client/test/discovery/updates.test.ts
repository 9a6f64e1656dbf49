// Registry updates replace what the client knows of an instance only when it is a new registration:
// the same registration listed again (a weight change, a push) or after a flap keeps its object, so
// that requests in flight are released from the count they were added to and warm-up goes on.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { createClient, type LosslessClient } from '../../src/client.js';
import { instance, startServer, stopServer, TestRegistry, type TestServer, until } from '../helpers.js';

const HOUR = 3_600_000;
const servers: TestServer[] = [];
const clients: LosslessClient[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.destroy()));
  await Promise.all(servers.splice(0).map(stopServer));
});

const ok = (name: string) => (_req: IncomingMessage, res: ServerResponse) => {
  res.end(name);
};

describe('registry updates keep what the client knows of each registration', () => {
  it('requests in flight during a list update are released from the same count (no drift)', async () => {
    const held: (() => void)[] = [];
    const s1 = await startServer((_req, res) => {
      held.push(() => res.end('s1'));
    });
    servers.push(s1);
    const registry = new TestRegistry([instance('svc', 's1', { port: s1.port, registeredAt: Date.now() - HOUR })]);
    const client = createClient({ registry, services: ['svc'] });
    clients.push(client);
    await client.service('svc').ready;
    const pending = Array.from({ length: 5 }, () => client.request('http://svc/'));
    await until(() => held.length === 5, 'five requests held');
    expect(client.instances('svc')[0]?.inFlight).toBe(5);
    // the registry sends the same registration again (a weight change, a heartbeat push)
    registry.listed = registry.listed.map((i) => ({ ...i, weight: 50 }));
    registry.push();
    expect(client.instances('svc')[0]).toMatchObject({ weight: 50, inFlight: 5 });
    for (const release of held.splice(0)) release();
    for (const res of await Promise.all(pending)) await res.body.text();
    expect(client.instances('svc')[0]?.inFlight).toBe(0);
  });

  it('a registration that vanishes from a list and comes back keeps its warm-up progress', async () => {
    const s1 = await startServer(ok('s1'));
    const s2 = await startServer(ok('s2'));
    servers.push(s1, s2);
    let wall = 1_000_000;
    let mono = 0;
    const old = instance('svc', 'old', { port: s1.port, registeredAt: wall - HOUR });
    const registry = new TestRegistry([old]);
    const client = createClient({
      registry,
      services: ['svc'],
      warmup: { windowMs: 60_000, floor: 0.1 },
      clock: { now: () => mono, wallNow: () => wall },
    });
    clients.push(client);
    await client.service('svc').ready;
    const fresh = instance('svc', 'new', { port: s2.port, registeredAt: wall });
    registry.listed = [old, fresh];
    registry.push();
    const step = (ms: number): void => {
      mono += ms;
      wall += ms;
    };
    step(40_000);
    registry.listed = [old]; // a flapping registry leaves it out
    registry.push();
    step(1_000);
    registry.listed = [old, fresh];
    registry.push();
    const weight = client.instances('svc').find((i) => i.instance === 'new')?.effectiveWeight;
    // 41 s into a 60 s window: 68 % of its weight, not the 50 % of a restarted ramp credited 30 s
    expect(weight).toBeCloseTo(100 * (41 / 60), 5);
  });
});
