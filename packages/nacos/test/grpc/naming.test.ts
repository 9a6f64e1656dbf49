// The gRPC transport's bookkeeping against a fake Nacos gRPC server (fake-server.ts) on 127.0.0.1:
// redo after a reconnect, a deregistration racing it, coalesced updates, watch() and subscriptions.

import { type Instance, type RegistrationState, silentLogger } from '@lossless/core';
import { afterEach, describe, expect, it } from 'vitest';
import { GrpcNaming } from '../../src/grpc/naming.js';
import { resolveNacosOptions } from '../../src/options.js';
import { type FakeNacos, type Received, startFakeNacos } from './fake-server.js';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function fake(port = 0): Promise<FakeNacos> {
  const f = await startFakeNacos(port);
  cleanup.push(() => f.stop());
  return f;
}

function naming(server: FakeNacos, extra: Record<string, unknown> = {}): GrpcNaming {
  const port = Number(server.address.split(':')[1]);
  const options = resolveNacosOptions({ servers: '127.0.0.1:8848', grpcPort: port, requestTimeoutMs: 3000, ...extra });
  const n = new GrpcNaming(options, silentLogger, { reconnectMinMs: 20, reconnectMaxMs: 100 });
  cleanup.push(() => n.close());
  return n;
}

function instance(port: number, extra: Partial<Instance> = {}): Instance {
  return {
    service: 'orders',
    id: `orders-${port}`,
    ip: '127.0.0.1',
    port,
    weight: 100,
    enabled: true,
    healthy: true,
    metadata: {},
    ...extra,
  };
}

async function until(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Resolves once a list succeeds: lists fail at once while the connection is lost. */
async function connected(n: GrpcNaming): Promise<void> {
  const deadline = Date.now() + 5000;
  for (;;) {
    try {
      await n.list('orders');
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}

/** Registration requests as `register 7001@1` / `deregister 7001` / `batch 7001@1,7002@0.5`. */
function registrations(received: readonly Received[]): string[] {
  const one = (i: unknown): string => {
    const { port, weight, enabled } = i as { port: number; weight: number; enabled: boolean };
    return `${port}@${weight}${enabled ? '' : ' disabled'}`;
  };
  return received
    .filter((p) => p.type === 'InstanceRequest' || p.type === 'BatchInstanceRequest')
    .map((p) =>
      p.type === 'BatchInstanceRequest'
        ? `batch ${(p.body.instances as unknown[]).map(one).join(',')}`
        : `${p.body.type === 'deregisterInstance' ? 'deregister' : 'register'} ${one(p.body.instance)}`,
    );
}

describe('GrpcNaming', () => {
  it('registers with namespace, group, cluster and Nacos weights, and updates by registering again', async () => {
    const server = await fake();
    const n = naming(server, { namespace: 'dev', group: 'G', cluster: 'C', metadata: { zone: 'a' } });
    const a = instance(7001);
    await n.register(a);
    await n.setWeight(a, 50);
    await n.setEnabled(a, false);
    await n.deregister(a);
    expect(registrations(server.received)).toEqual([
      'register 7001@1',
      'register 7001@0.5',
      'register 7001@0.5 disabled',
      'deregister 7001@0.5 disabled',
    ]);
    const first = server.received.find((p) => p.type === 'InstanceRequest');
    expect(first?.body).toMatchObject({
      namespace: 'dev',
      groupName: 'G',
      serviceName: 'orders',
      instance: {
        clusterName: 'C',
        ephemeral: true,
        healthy: true,
        metadata: { zone: 'a', 'lossless.instance-id': 'orders-7001' },
      },
    });
    // servers on loopback: the client address reported is 127.0.0.1, never the host's LAN address
    expect(new Set(server.received.map((p) => p.clientIp))).toEqual(new Set(['127.0.0.1']));
  });

  it('reports the clientIp option as the client address', async () => {
    const server = await fake();
    const n = naming(server, { clientIp: '127.0.0.9' });
    await n.list('orders');
    expect(new Set(server.received.map((p) => p.clientIp))).toEqual(new Set(['127.0.0.9']));
  });

  it('coalesces a burst of weight changes and sends the latest', async () => {
    const server = await fake();
    const n = naming(server);
    const a = instance(7002, { weight: 10 });
    await n.register(a);
    await Promise.all([20, 30, 40, 50, 60, 70, 80, 90, 100].map((w) => n.setWeight(a, w)));
    const sent = registrations(server.received);
    expect(sent.length).toBeLessThan(1 + 9);
    expect(sent.at(-1)).toMatch(/^register 7002@1\.0000001$/);
  });

  it('redo: after a reconnect, registers again with the latest weight, set while the connection was down', async () => {
    const server = await fake();
    const port = Number(server.address.split(':')[1]);
    const n = naming(server);
    const a = instance(7003, { weight: 10 });
    await n.register(a);
    await server.stop();
    // while down: the update may fail (the connection is down), the registry keeps it for the redo
    await n.setWeight(a, 40).catch(() => {});
    const back = await fake(port);
    await until(() => registrations(back.received).length > 0, 'the redo');
    expect(registrations(back.received)).toEqual(['register 7003@0.4']);
  });

  it('never registers again an instance deregistered while the connection was down', async () => {
    const server = await fake();
    const port = Number(server.address.split(':')[1]);
    const n = naming(server);
    const a = instance(7004);
    const b = instance(7005);
    await n.register(a);
    await n.register(b);
    await server.stop();
    // it cannot be confirmed while the connection is down (the server dropped it with the connection)
    await n.deregister(a).catch(() => {});
    const back = await fake(port);
    await until(() => registrations(back.received).length > 0, 'the redo');
    expect(registrations(back.received)).toEqual(['register 7005@1']);
  });

  it('a deregistration during a redo waits for it, then deregisters: the instance is not left registered', async () => {
    const server = await fake();
    const port = Number(server.address.split(':')[1]);
    const n = naming(server);
    const a = instance(7006);
    await n.register(a);
    await server.stop();
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const back = await fake(port);
    back.answer = (p) =>
      p.type === 'InstanceRequest' && p.body.type === 'registerInstance'
        ? held.then(() => ({ type: 'InstanceResponse', body: { resultCode: 200 } }))
        : undefined;
    await until(() => registrations(back.received).length === 1, 'the redo to be under way');
    const leaving = n.deregister(a);
    release();
    await leaving;
    expect(registrations(back.received)).toEqual(['register 7006@1', 'deregister 7006@1']);
  });

  it('a failed registration is not made later by a redo (the caller retries it, or gives up)', async () => {
    const server = await fake();
    const port = Number(server.address.split(':')[1]);
    const n = naming(server, { requestTimeoutMs: 300 });
    await n.list('orders'); // connected once
    await server.stop();
    await expect(n.register(instance(7007))).rejects.toMatchObject({ code: 'LOSSLESS_ERR_NACOS_UNAVAILABLE' });
    const back = await fake(port);
    await connected(n);
    expect(registrations(back.received)).toEqual([]);
  });

  it('watch: unreachable when the connection is lost, present once the redo registered it again', async () => {
    const server = await fake();
    const port = Number(server.address.split(':')[1]);
    const n = naming(server);
    const a = instance(7008);
    const states: RegistrationState['kind'][] = [];
    n.watch(a, (s) => states.push(s.kind));
    await n.register(a);
    await until(() => states.length === 1, 'present');
    await server.stop();
    await until(() => states.length === 2, 'unreachable');
    const back = await fake(port);
    await until(() => states.length === 3, 'present again');
    expect(states).toEqual(['present', 'unreachable', 'present']);
    expect(registrations(back.received)).toEqual(['register 7008@1']);
  });

  it('watch: absent when a push of its service lacks it after listing it; not while it is disabled', async () => {
    const server = await fake();
    const n = naming(server);
    const a = instance(7009);
    const states: RegistrationState[] = [];
    n.watch(a, (s) => states.push(s));
    await n.register(a);
    const host = { ip: '127.0.0.1', port: 7009, weight: 1, enabled: true, healthy: true, metadata: {} };
    const push = (lastRefTime: number, hosts: unknown[]): void =>
      server.push('NotifySubscriberRequest', {
        requestId: String(lastRefTime),
        namespace: 'public',
        serviceName: 'orders',
        groupName: 'DEFAULT_GROUP',
        serviceInfo: { name: 'orders', groupName: 'DEFAULT_GROUP', lastRefTime, hosts },
      });
    push(10, [host]);
    push(11, []);
    await until(() => states.some((s) => s.kind === 'absent'), 'absent');
    expect(states.map((s) => s.kind)).toEqual(['present', 'absent']);
    expect(states[1]).toMatchObject({ reason: expect.stringContaining('127.0.0.1:7009') });
    // registered again (disabled): present; and as Nacos leaves disabled instances out of every list,
    // a list without it is no loss
    await n.setEnabled(a, false);
    expect(states.at(-1)).toMatchObject({ kind: 'present', instance: { enabled: false, port: 7009 } });
    push(12, [host]);
    push(13, []);
    await until(() => server.received.filter((p) => p.type === 'NotifySubscriberResponse').length === 4, 'the acks');
    expect(states.map((s) => s.kind)).toEqual(['present', 'absent', 'present']);
  });

  it('subscribers get the list from the subscription, then from pushes; older lists are dropped', async () => {
    const server = await fake();
    const n = naming(server);
    const lists: number[][] = [];
    n.subscribe('orders', (list) => lists.push(list.map((i) => i.port)));
    await until(() => lists.length === 1, 'the first list');
    const host = (port: number) => ({ ip: '127.0.0.1', port, weight: 1, enabled: true, healthy: true, metadata: {} });
    const push = (lastRefTime: number, ports: number[]): void =>
      server.push('NotifySubscriberRequest', {
        requestId: String(lastRefTime),
        serviceInfo: { name: 'DEFAULT_GROUP@@orders', lastRefTime, hosts: ports.map(host) },
      });
    push(20, [7010, 7011]);
    push(19, [7010]); // generated before the one above: stale
    push(21, []);
    await until(() => lists.length === 3, 'the pushed lists');
    expect(lists).toEqual([[], [7010, 7011], []]);
  });

  it('lookup: rejects while the connection is lost (cannot tell), undefined when Nacos answers without it', async () => {
    const server = await fake();
    const n = naming(server);
    expect(await n.lookup(instance(7012))).toBeUndefined();
    await server.stop();
    // until the loss is noticed a lookup may still go out (and fail); then it fails at once
    await expect(
      (async () => {
        for (;;) await n.lookup(instance(7012));
      })(),
    ).rejects.toMatchObject({ code: 'LOSSLESS_ERR_NACOS_UNAVAILABLE' });
  });
});
