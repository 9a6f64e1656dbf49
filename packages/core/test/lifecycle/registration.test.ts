// The registration while the provider is ready: lost registrations come back, an unreachable
// registry does not make the instance unready, nothing is registered again once a drain began, and
// the provider's own weight ramp.

import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { ProviderOptions } from '../../src/options.js';
import { Provider } from '../../src/provider.js';
import { get, listen, MemoryRegistry, until } from '../helpers.js';

const live: Provider[] = [];
const closers: (() => void)[] = [];

afterEach(async () => {
  for (const provider of live.splice(0)) {
    provider.uninstall();
    if (provider.state !== 'stopped') await provider.destroy().catch(() => {});
  }
  for (const close of closers.splice(0)) close();
});

async function ready(options: Partial<ProviderOptions> = {}, registry = new MemoryRegistry()) {
  const { server } = await listen();
  closers.push(() => {
    server.closeAllConnections();
    server.close();
  });
  const provider = new Provider({
    service: 'orders',
    registry,
    server,
    admin: { port: 0 },
    signals: false,
    exit: false,
    drain: { quietWindowMs: 50, maxDrainMs: 5000 },
    registration: {
      retryMinDelayMs: 10,
      retryMaxDelayMs: 20,
      timeoutMs: 500,
      confirmTimeoutMs: 200,
      checkIntervalMs: 50,
    },
    ...options,
  });
  live.push(provider);
  await provider.start();
  const admin = () => provider.adminAddress?.port ?? 0;
  return { provider, registry, admin };
}

const registrations = (registry: MemoryRegistry) => registry.calls.filter((c) => c.startsWith('register')).length;

describe('a registration lost while ready', () => {
  it('makes /readyz answer 503 with the reason, registers again, and answers 200 once read back', async () => {
    const { provider, registry, admin } = await ready();
    const id = provider.instance?.id as string;
    registry.failRegister = 3; // the registry comes back slowly: a few attempts fail
    registry.instances.delete(id); // the registry lost its data

    await until(async () => (await get(admin(), '/readyz')).status === 503, '/readyz 503', 2000);
    const notReady = JSON.parse((await get(admin(), '/readyz')).body);
    expect(notReady.state).toBe('registering');
    expect(notReady.reason).toMatch(/no longer lists|registration attempt/);

    await until(() => registry.instances.has(id), 'registered again');
    await until(async () => (await get(admin(), '/readyz')).status === 200, '/readyz 200 again');
    expect(provider.state).toBe('ready');
    expect(registrations(registry)).toBeGreaterThanOrEqual(2 + 3);
  });

  it('keeps serving while the registry cannot be reached, says so in /readyz, and registers nothing', async () => {
    const { provider, registry, admin } = await ready();
    const before = registrations(registry);
    registry.unreachable = true;
    await until(
      async () => JSON.parse((await get(admin(), '/readyz')).body).registry.reachable === false,
      'unreachable',
    );
    const probe = await get(admin(), '/readyz');
    expect(probe.status).toBe(200);
    expect(JSON.parse(probe.body).registry).toMatchObject({ kind: 'memory', registered: true, reachable: false });
    expect(JSON.parse(probe.body).registry.error).toMatch(/registry unreachable/);
    registry.unreachable = false;
    await until(async () => JSON.parse((await get(admin(), '/readyz')).body).registry.reachable === true, 'reachable');
    expect(provider.state).toBe('ready');
    expect(registrations(registry)).toBe(before);
  });

  it('is never registered again once a drain began', async () => {
    const { provider, registry } = await ready();
    const id = provider.instance?.id as string;
    registry.hangDeregister = true; // the drain's registry step never finishes...
    const drained = provider.drain();
    await until(() => registry.calls.includes(`deregister ${id}`), 'deregister called');
    registry.instances.delete(id); // ...while the registry drops the instance
    await new Promise((resolve) => setTimeout(resolve, 300)); // six check intervals
    expect(registrations(registry)).toBe(1);
    await provider.destroy();
    await drained;
    expect(registrations(registry)).toBe(1);
  });
});

describe('the provider raises its registered weight', () => {
  it('from 10 % to full over warmupWindowMs in ten steps, and tells consumers not to ramp again', async () => {
    const { provider, registry } = await ready({ weightRamp: true, warmupWindowMs: 400, instance: { weight: 50 } });
    const id = provider.instance?.id as string;
    expect(registry.instances.get(id)?.weight).toBe(5);
    expect(registry.instances.get(id)?.metadata['lossless.weight-ramp']).toBe('provider');
    await until(() => registry.instances.get(id)?.weight === 50, 'full weight', 3000);
    const steps = registry.calls.filter((c) => c.startsWith('setWeight')).map((c) => Number(c.split(' ')[2]));
    expect(steps).toEqual([10, 15, 20, 25, 30, 35, 40, 45, 50]);
  });

  it('by default only where the registry asks for it', async () => {
    const asks = Object.assign(new MemoryRegistry(), { rampsWeight: true });
    const a = await ready({ warmupWindowMs: 200 }, asks);
    expect(asks.instances.get(a.provider.instance?.id as string)?.weight).toBe(10);
    const b = await ready({ warmupWindowMs: 200 });
    expect(b.registry.instances.get(b.provider.instance?.id as string)?.weight).toBe(100);
    expect(b.provider.instance?.metadata['lossless.weight-ramp']).toBeUndefined();
    const c = await ready(
      { warmupWindowMs: 200, weightRamp: false },
      Object.assign(new MemoryRegistry(), { rampsWeight: true }),
    );
    expect(c.provider.instance?.weight).toBe(100);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(b.registry.calls.some((call) => call.startsWith('setWeight'))).toBe(false);
    expect(c.registry.calls.some((call) => call.startsWith('setWeight'))).toBe(false);
  });

  it('stops ramping when the drain begins', async () => {
    const { provider, registry } = await ready({ weightRamp: true, warmupWindowMs: 10_000 });
    await provider.drain();
    const calls = registry.calls.length;
    await new Promise((resolve) => setTimeout(resolve, 1100)); // past the first step
    expect(registry.calls.length).toBe(calls);
  });
});

describe('instance metadata', () => {
  it('says secure=true for an https server, as Spring Cloud reads it', async () => {
    const server = createHttpsServer({}, () => {});
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => server.close());
    const provider = new Provider({
      service: 'orders',
      registry: new MemoryRegistry(),
      server,
      admin: false,
      signals: false,
      exit: false,
    });
    live.push(provider);
    await provider.start();
    expect(provider.instance?.metadata.secure).toBe('true');
    expect(provider.instance?.port).toBe((server.address() as AddressInfo).port);
    const plain = await ready();
    expect(plain.provider.instance?.metadata.secure).toBeUndefined();
  });
});
