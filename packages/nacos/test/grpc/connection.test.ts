// GrpcConnection against a fake Nacos gRPC server in this process (fake-server.ts), on 127.0.0.1.

import { type Logger, silentLogger } from '@lossless/core';
import { afterEach, describe, expect, it } from 'vitest';
import { type ConnectionConfig, GrpcConnection, ServerAnswerError } from '../../src/grpc/connection.js';
import { type FakeNacos, startFakeNacos } from './fake-server.js';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function fake(port = 0): Promise<FakeNacos> {
  const f = await startFakeNacos(port);
  cleanup.push(() => f.stop());
  return f;
}

function connection(servers: string[], extra: Partial<ConnectionConfig> = {}): GrpcConnection {
  const c = new GrpcConnection({
    servers,
    tls: false,
    requestTimeoutMs: 2000,
    clientIp: '127.0.0.1',
    namespace: 'dev',
    log: silentLogger,
    ...extra,
  });
  cleanup.push(() => c.close());
  return c;
}

async function until(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('GrpcConnection', () => {
  it('shakes hands as Nacos expects: server check, setup on the stream, health checks until registered', async () => {
    const server = await fake();
    server.unregisteredChecks = 2;
    const c = connection([server.address]);
    const epochs: number[] = [];
    c.onReady((epoch) => epochs.push(epoch));
    expect(await c.ready('wait')).toBe(1);
    expect(epochs).toEqual([1]);
    expect(server.received.map((p) => `${p.via} ${p.type}`)).toEqual([
      'unary ServerCheckRequest',
      'stream ConnectionSetupRequest',
      'unary HealthCheckRequest',
      'unary HealthCheckRequest',
      'unary HealthCheckRequest',
    ]);
    const setup = server.received[1];
    expect(setup?.body).toMatchObject({
      tenant: 'dev',
      // without module=naming Nacos would not keep the connection's instances
      labels: { source: 'sdk', module: 'naming' },
      clientVersion: expect.stringMatching(/^Nacos-Lossless-Client:/),
    });
    // loopback-clean: the address reported is the one configured, in every payload
    expect(new Set(server.received.map((p) => p.clientIp))).toEqual(new Set(['127.0.0.1']));
  });

  it('sends headers in the metadata and answers with the body; an error answer is a ServerAnswerError', async () => {
    const server = await fake();
    server.answer = (p) =>
      p.type === 'InstanceRequest' && p.body.type === 'bad'
        ? { type: 'ErrorResponse', body: { resultCode: 500, errorCode: 403, message: 'no right' } }
        : undefined;
    const c = connection([server.address]);
    const body = await c.request(
      'InstanceRequest',
      { type: 'registerInstance' },
      { headers: { accessToken: 't' }, wait: 'wait' },
    );
    expect(body).toMatchObject({ resultCode: 200 });
    const sent = server.received.find((p) => p.type === 'InstanceRequest');
    expect(sent?.headers).toEqual({ accessToken: 't' });
    // as Java sends them: the headers in the metadata, none in the body
    expect(sent?.body).toMatchObject({ type: 'registerInstance', headers: {}, requestId: expect.any(String) });
    const refused = c.request('InstanceRequest', { type: 'bad' }, { wait: 'wait' });
    await expect(refused).rejects.toBeInstanceOf(ServerAnswerError);
    await expect(refused).rejects.toMatchObject({ errorCode: 403, message: 'no right' });
  });

  it('answers what the server pushes: NotifySubscriberRequest through its handler, ClientDetectionRequest itself', async () => {
    const server = await fake();
    const c = connection([server.address]);
    const pushed: unknown[] = [];
    c.handle('NotifySubscriberRequest', (body) => {
      pushed.push(body.serviceInfo);
      return {};
    });
    await c.ready('wait');
    server.push('NotifySubscriberRequest', { requestId: '41', serviceInfo: { name: 's', hosts: [] } });
    server.push('ClientDetectionRequest', { requestId: '42' });
    await until(() => server.received.filter((p) => p.via === 'stream').length >= 3, 'the acks');
    expect(pushed).toEqual([{ name: 's', hosts: [] }]);
    const acks = server.received.filter((p) => p.via === 'stream' && p.type.endsWith('Response'));
    expect(acks.map((p) => [p.type, p.body.requestId, p.body.resultCode])).toEqual([
      ['NotifySubscriberResponse', '41', 200],
      ['ClientDetectionResponse', '42', 200],
    ]);
  });

  it('when the server goes away: tells the listeners at once and connects to the next server', async () => {
    const first = await fake();
    const second = await fake();
    const c = connection([first.address, second.address]);
    const events: string[] = [];
    c.onReady((epoch) => events.push(`ready ${epoch}`));
    c.onLost(() => events.push('lost'));
    await c.ready('wait');
    await first.stop();
    await until(() => events.length === 3, 'lost and ready again');
    expect(events).toEqual(['ready 1', 'lost', 'ready 2']);
    const before = second.received.length;
    await c.request('ServiceQueryRequest', { serviceName: 's' }, { wait: 'wait' });
    expect(second.received.slice(before).map((p) => p.type)).toEqual(['ServiceQueryRequest']);
  });

  it('reconnects when the server answers that it no longer knows the connection (301)', async () => {
    const server = await fake();
    let forget = true;
    server.answer = (p) => {
      if (p.type !== 'InstanceRequest' || !forget) return undefined;
      forget = false;
      return {
        type: 'ErrorResponse',
        body: { resultCode: 500, errorCode: 301, message: 'Connection is unregistered.' },
      };
    };
    const c = connection([server.address]);
    const epochs: number[] = [];
    c.onReady((epoch) => epochs.push(epoch));
    await c.ready('wait');
    await expect(c.request('InstanceRequest', {}, { wait: 'wait' })).rejects.toMatchObject({
      code: 'LOSSLESS_ERR_NACOS_UNAVAILABLE',
    });
    await until(() => epochs.length === 2, 'a new connection');
    expect(server.received.filter((p) => p.type === 'ServerCheckRequest')).toHaveLength(2);
  });

  it('finds a server that stopped answering with health checks after an idle while', async () => {
    const server = await fake();
    const c = connection([server.address], { timing: { healthIdleMs: 100, healthTimeoutMs: 100, healthTries: 2 } });
    const lost: Error[] = [];
    c.onLost((error) => lost.push(error));
    await c.ready('wait');
    const readyAt = Date.now();
    server.answer = (p) => (p.type === 'HealthCheckRequest' ? 'hang' : undefined);
    await until(() => lost.length === 1, 'the connection to be lost');
    expect(lost[0]?.message).toMatch(/health check failed/);
    // idle 100 ms, then two tries of 100 ms each
    expect(Date.now() - readyAt).toBeGreaterThanOrEqual(250);
    expect(server.received.filter((p) => p.type === 'HealthCheckRequest').length).toBeGreaterThanOrEqual(3);
  });

  it('once a connection was lost, lookups fail at once; requests go through again on the next connection', async () => {
    const server = await fake();
    const port = Number(server.address.split(':')[1]);
    const c = connection([server.address], {
      requestTimeoutMs: 10_000,
      timing: { reconnectMinMs: 20, reconnectMaxMs: 50 },
    });
    await c.ready('wait');
    await server.stop();
    await until(() => c.readyEpoch === undefined, 'the loss');
    const started = Date.now();
    await expect(c.request('ServiceQueryRequest', {}, { wait: 'fail-fast-when-lost' })).rejects.toMatchObject({
      code: 'LOSSLESS_ERR_NACOS_UNAVAILABLE',
    });
    // at once, not at its 10 s timeout (a loose bound: the machine may be busy)
    expect(Date.now() - started).toBeLessThan(2500);
    const back = await fake(port);
    await until(() => c.readyEpoch !== undefined, 'the next connection');
    await expect(c.request('InstanceRequest', {}, { wait: 'wait' })).resolves.toMatchObject({ resultCode: 200 });
    expect(back.received.map((p) => p.type)).toContain('InstanceRequest');
  });

  it('tells a waiting request why at once when every server refused, instead of at its timeout', async () => {
    const c = connection(['127.0.0.1:1', '127.0.0.1:2'], { requestTimeoutMs: 10_000 });
    const started = Date.now();
    await expect(c.request('InstanceRequest', {}, { wait: 'wait' })).rejects.toMatchObject({
      code: 'LOSSLESS_ERR_NACOS_UNAVAILABLE',
      message: expect.stringMatching(/127\.0\.0\.1:1, 127\.0\.0\.1:2/),
    });
    // long before its 10 s timeout (a loose bound: the machine may be busy)
    expect(Date.now() - started).toBeLessThan(5000);
    // a known outage: the next caller hears it without waiting for the servers again
    const next = Date.now();
    await expect(c.request('InstanceRequest', {}, { wait: 'wait' })).rejects.toMatchObject({
      code: 'LOSSLESS_ERR_NACOS_UNAVAILABLE',
    });
    expect(Date.now() - next).toBeLessThan(2500);
  });

  it('close() ends what waits for a connection, without reporting a loss', async () => {
    const warnings: unknown[] = [];
    const log: Logger = { ...silentLogger, warn: (fields: unknown) => warnings.push(fields) };
    const c = connection(['127.0.0.1:1'], { log });
    const lost: Error[] = [];
    c.onLost((error) => lost.push(error));
    const waiting = c.request('InstanceRequest', {}, { wait: 'wait' });
    await c.close();
    await expect(waiting).rejects.toMatchObject({ code: 'LOSSLESS_ERR_NACOS_UNAVAILABLE' });
    expect(lost).toEqual([]);
    await c.close();
  });
});
