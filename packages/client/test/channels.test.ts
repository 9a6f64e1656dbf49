import diagnosticsChannel from 'node:diagnostics_channel';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { CLIENT_CHANNELS } from '../src/channels.js';
import { createClient, type LosslessClient } from '../src/client.js';
import { instance, seeded, startServer, stopServer, TestRegistry, type TestServer, until } from './helpers.js';

const MARKER = 'x-lossless-offline';
const HOUR = 3_600_000;
const servers: TestServer[] = [];
const clients: LosslessClient[] = [];
const unsubscribes: (() => void)[] = [];

afterEach(async () => {
  for (const u of unsubscribes.splice(0)) u();
  await Promise.all(clients.splice(0).map((c) => c.destroy()));
  await Promise.all(servers.splice(0).map(stopServer));
});

/** Records every event of every client channel, in order, as [channel key, message]. */
function record(): [string, Record<string, unknown>][] {
  const events: [string, Record<string, unknown>][] = [];
  for (const [key, name] of Object.entries(CLIENT_CHANNELS)) {
    const fn = (message: unknown): void => {
      events.push([key, message as Record<string, unknown>]);
    };
    diagnosticsChannel.subscribe(name, fn);
    unsubscribes.push(() => diagnosticsChannel.unsubscribe(name, fn));
  }
  return events;
}

const ok = (name: string) => (_req: IncomingMessage, res: ServerResponse) => {
  res.setHeader('x-server', name);
  res.end(name);
};

describe('client diagnostics_channel events', () => {
  it('publishes the instance picked for each attempt, with its weight and warm-up factor', async () => {
    const s1 = await startServer(ok('s1'));
    servers.push(s1);
    const registry = new TestRegistry([
      instance('svc', 's1', { port: s1.port, weight: 100, registeredAt: Date.now() - HOUR }),
    ]);
    const client = createClient({ registry, services: ['svc'], clock: { random: seeded(1) } });
    clients.push(client);
    const events = record();
    const res = await client.request('http://svc/');
    await res.body.text();
    const picks = events.filter(([k]) => k === 'pick').map(([, m]) => m);
    expect(picks).toEqual([
      {
        service: 'svc',
        instance: 's1',
        origin: `http://127.0.0.1:${s1.port}`,
        weight: 100,
        warmupFactor: 1,
        inFlight: 0,
        attempt: 1,
      },
    ]);
  });

  it('publishes retry (with the reason), then the pick of another instance, when one refuses connections', async () => {
    const alive = await startServer(ok('alive'));
    const dead = await startServer(ok('dead'));
    servers.push(alive);
    await stopServer(dead);
    const registry = new TestRegistry([
      instance('svc', 'dead', { port: dead.port, registeredAt: Date.now() - HOUR }),
      instance('svc', 'alive', { port: alive.port, registeredAt: Date.now() - HOUR }),
    ]);
    const client = createClient({
      registry,
      services: ['svc'],
      retry: { minDelayMs: 0, maxDelayMs: 0 },
      // the first draw of P2C lands on `dead`
      clock: { random: () => 0 },
    });
    clients.push(client);
    const events = record();
    const res = await client.request('http://svc/');
    expect(await res.body.text()).toBe('alive');
    const sequence = events.filter(([k]) => k === 'pick' || k === 'retry');
    expect(sequence.map(([k, m]) => `${k}:${String(m.instance ?? m.reason)}`)).toEqual([
      'pick:dead',
      'retry:ECONNREFUSED',
      'pick:alive',
    ]);
    expect(sequence[1]?.[1]).toMatchObject({ service: 'svc', attempt: 1, tried: ['dead'] });
    expect(sequence[2]?.[1]).toMatchObject({ attempt: 2 });
  });

  it('publishes marker, eject (once) and refresh when a draining instance marks its responses', async () => {
    const draining = await startServer((_req, res) => {
      res.setHeader(MARKER, 'draining');
      res.end('draining');
    });
    const other = await startServer(ok('other'));
    servers.push(draining, other);
    const registry = new TestRegistry([
      instance('svc', 'draining', { port: draining.port, registeredAt: Date.now() - HOUR }),
      instance('svc', 'other', { port: other.port, registeredAt: Date.now() - HOUR }),
    ]);
    const client = createClient({ registry, services: ['svc'], clock: { random: () => 0 } });
    clients.push(client);
    const events = record();
    const res = await client.request('http://svc/');
    await res.body.text();
    await until(() => events.some(([k]) => k === 'refresh'), 'the refresh event');
    expect(events.find(([k]) => k === 'marker')?.[1]).toEqual({
      service: 'svc',
      instance: 'draining',
      origin: `http://127.0.0.1:${draining.port}`,
      status: 200,
    });
    expect(events.filter(([k]) => k === 'eject').map(([, m]) => m)).toEqual([
      { service: 'svc', instance: 'draining', origin: `http://127.0.0.1:${draining.port}`, reason: 'marker' },
    ]);
    expect(events.find(([k]) => k === 'refresh')?.[1]).toEqual({ service: 'svc', reason: 'marker' });
    // and the instance view no longer lists it
    expect(client.instances('svc').map((i) => i.instance)).toEqual(['other']);
  });

  it('publishes circuit transitions of an instance', async () => {
    const failing = await startServer((_req, res) => {
      res.statusCode = 500;
      res.end('broken');
    });
    servers.push(failing);
    const registry = new TestRegistry([instance('svc', 'f', { port: failing.port, registeredAt: Date.now() - HOUR })]);
    const client = createClient({
      registry,
      services: ['svc'],
      breaker: { volumeThreshold: 2, errorThresholdPercentage: 50 },
    });
    clients.push(client);
    const events = record();
    for (let i = 0; i < 3; i++) {
      const res = await client.request('http://svc/').catch((error: Error) => error);
      if (!(res instanceof Error)) await res.body.text();
    }
    expect(events.filter(([k]) => k === 'circuit').map(([, m]) => m)).toContainEqual({
      origin: `http://127.0.0.1:${failing.port}`,
      state: 'open',
    });
    expect(client.instances('svc')[0]?.circuit).toBe('open');
  });

  it('publishes registry errors while keeping the last good list', async () => {
    const s1 = await startServer(ok('s1'));
    servers.push(s1);
    const registry = new TestRegistry([instance('svc', 's1', { port: s1.port, registeredAt: Date.now() - HOUR })]);
    const client = createClient({ registry, services: ['svc'] });
    clients.push(client);
    await client.service('svc').ready;
    const events = record();
    for (const s of registry.subscriptions) s.onError?.(new Error('registry down'));
    expect(events.filter(([k]) => k === 'registryError').map(([, m]) => (m.error as Error).message)).toEqual([
      'registry down',
    ]);
    const res = await client.request('http://svc/');
    expect(await res.body.text()).toBe('s1');
  });
});

describe('client.instances()', () => {
  it('reports each instance with its warm-up weight, in-flight count and circuit', async () => {
    const s1 = await startServer(ok('s1'));
    const s2 = await startServer(ok('s2'));
    servers.push(s1, s2);
    let wall = 1_000_000;
    let mono = 0;
    const registry = new TestRegistry([
      instance('svc', 'old', { port: s1.port, weight: 100, registeredAt: wall - HOUR }),
    ]);
    const client = createClient({
      registry,
      services: ['svc'],
      warmup: { windowMs: 10_000, floor: 0.1 },
      clock: { now: () => mono, wallNow: () => wall },
    });
    clients.push(client);
    await client.service('svc').ready;
    registry.listed = [...registry.listed, instance('svc', 'new', { port: s2.port, weight: 100, registeredAt: wall })];
    registry.push();
    mono += 5000;
    wall += 5000;
    const view = Object.fromEntries(client.instances().map((i) => [i.instance, i]));
    expect(view.old).toMatchObject({
      service: 'svc',
      weight: 100,
      effectiveWeight: 100,
      inFlight: 0,
      circuit: 'closed',
    });
    expect(view.new?.effectiveWeight).toBeCloseTo(50, 5);
    expect(client.instances('nothing')).toEqual([]);
  });
});

describe('the channels @lossless/core/metrics listens to', () => {
  it('are these: an event on each client channel moves its counter', async () => {
    const { prometheusMetrics } = await import('@lossless/core/metrics');
    const metrics = prometheusMetrics();
    try {
      const events: [keyof typeof CLIENT_CHANNELS, object, string][] = [
        ['retry', { service: 's', attempt: 1, tried: ['a'], reason: 'ECONNREFUSED' }, 'lossless_client_retries_total'],
        ['marker', { service: 's', instance: 'a', origin: 'o', status: 200 }, 'lossless_client_marked_responses_total'],
        ['eject', { service: 's', instance: 'a', origin: 'o', reason: 'marker' }, 'lossless_client_ejections_total'],
        ['refresh', { service: 's', reason: 'marker' }, 'lossless_client_registry_refreshes_total'],
        ['registryError', { service: 's', error: new Error('down') }, 'lossless_client_registry_errors_total'],
        ['circuit', { origin: 'o', state: 'open' }, 'lossless_client_circuit_transitions_total'],
      ];
      for (const [key, message] of events) diagnosticsChannel.channel(CLIENT_CHANNELS[key]).publish(message);
      const text = await metrics.metrics();
      for (const [key, , metric] of events) expect(text, key).toMatch(new RegExp(`^${metric}\\{[^}]*\\} 1$`, 'm'));
    } finally {
      metrics.close();
    }
  });
});
