// The same behaviour, checked on every server kind: what a caller and an operator notice while an
// instance comes online and goes offline. Over HTTP/1.1 a draining instance says `Connection: close`;
// over HTTP/2 its sessions get GOAWAY (servers.ts and callers.ts say which kind speaks what).

import type { Agent } from 'node:http';
import type { Socket } from 'node:net';
import { FileRegistry, type Provider } from '@lossless/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { call, refused, tempRegistry, until } from '../support.js';
import { callerFor } from './callers.js';
import { KINDS, type Options } from './servers.js';

describe.each(KINDS)('%s', (_name, start, protocol) => {
  const caller = callerFor(protocol);
  let registry: Awaited<ReturnType<typeof tempRegistry>>;
  let reader: FileRegistry;
  const providers: Provider[] = [];

  const boot = async (extra: Partial<Options> = {}) => {
    const started = await start({
      service: 'conformance',
      registry: registry.url,
      admin: { port: 0 },
      signals: false,
      exit: false,
      drain: { quietWindowMs: 150, maxDrainMs: 5000 },
      ...extra,
    });
    providers.push(started.provider);
    return started;
  };
  const listed = async (id: string | undefined) => (await reader.list('conformance')).some((i) => i.id === id);

  beforeEach(async () => {
    registry = await tempRegistry();
    reader = new FileRegistry({ dir: registry.dir });
  });
  afterEach(async () => {
    for (const provider of providers.splice(0)) if (provider.state !== 'stopped') await provider.destroy();
    await reader.close();
    await registry.remove();
  });

  it('is registered and ready once start() resolves, and serves', async () => {
    const { provider, port } = await boot();
    expect(provider.state).toBe('ready');
    expect(await listed(provider.instance?.id)).toBe(true);
    expect(provider.instance?.port).toBe(port);
    expect((await call(provider.adminAddress!.port, '/readyz')).status).toBe(200);
    expect(await caller.call(port, '/fast')).toMatchObject({ status: 200, body: 'ok' });
    // the protocol the caller meant to speak is the one the server saw
    expect((await caller.call(port, '/version')).body).toBe(caller.http2 ? '2.0' : '1.1');
  });

  it('counts requests in flight through the framework', async () => {
    const { provider, port } = await boot();
    const slow = caller.call(port, '/slow?ms=200');
    await until(() => provider.inFlight === 1, 'one request in flight');
    await slow;
    await until(() => provider.inFlight === 0, 'no request in flight');
  });

  it(`drains: out of the registry first, every response marked${caller.http2 ? ', GOAWAY on the session' : ' with Connection: close'}, none lost`, async () => {
    const { provider, port } = await boot();
    const connection = caller.connect(port);
    const slow = [connection.call('/slow?ms=400'), connection.call('/slow?ms=250')];
    await until(() => provider.inFlight === 2, 'two requests in flight');
    const id = provider.instance?.id;
    const drained = provider.drain();
    await until(async () => !(await listed(id)), 'the instance to leave the registry');
    expect(provider.state).toBe('draining');
    const during = await Promise.all([connection.call('/fast'), connection.call('/boom')]);
    const replies = [...(await Promise.all(slow)), ...during];
    expect(replies.map((r) => r.status)).toEqual([200, 200, 200, 500]);
    for (const reply of replies) {
      expect(reply.headers['x-lossless-offline']).toBe('draining');
      // HTTP/2 forbids the Connection header: the session is told with GOAWAY instead
      expect(reply.headers.connection).toBe(caller.http2 ? undefined : 'close');
    }
    if (caller.http2) expect(connection.goaways).toContain(2 ** 31 - 1);
    const summary = await drained;
    expect(summary).toMatchObject({ outcome: 'idle', registry: 'removed', cut: [], inFlightAtStart: 2 });
    expect(await refused(port)).toBe(true);
    await until(() => connection.closed(), 'every connection closed');
    connection.destroy();
  });

  it.runIf(caller.http2)(
    'tells an idle session to go away when the drain begins, and closes it at the end',
    async () => {
      const { provider, port } = await boot({ drain: { quietWindowMs: 300, maxDrainMs: 5000 } });
      const connection = caller.connect(port);
      await connection.call('/fast');
      const drained = provider.drain();
      await until(() => connection.goaways.length >= 1, 'GOAWAY on the idle session');
      expect(connection.goaways[0]).toBe(2 ** 31 - 1);
      // the caller moves to a new session: served, marked, and told to go away in turn
      const reply = await connection.call('/fast');
      expect(reply).toMatchObject({ status: 200, headers: { 'x-lossless-offline': 'draining' } });
      expect(provider.state).toBe('draining');
      await drained;
      await until(() => connection.closed(), 'every session closed');
      connection.destroy();
    },
  );

  it.runIf(!caller.http2)('keeps idle keep-alive sockets open until the drain ends', async () => {
    const { provider, port } = await boot({ drain: { quietWindowMs: 300, maxDrainMs: 5000 } });
    const connection = caller.connect(port);
    await connection.call('/fast');
    const agent = connection.agent as Agent; // HTTP/1.1 callers have one
    const socket = Object.values(agent.freeSockets)[0]?.[0] as Socket;
    expect(socket).toBeDefined();
    let closedAt = 0;
    socket.on('close', () => {
      closedAt = Date.now();
    });
    const drainStarted = Date.now();
    const drained = provider.drain();
    // the idle socket is still usable during the drain: the reply tells the caller to move on
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(closedAt).toBe(0);
    const reused = await connection.call('/fast');
    expect(reused.status).toBe(200);
    expect(reused.headers.connection).toBe('close');
    await drained;
    await until(() => closedAt > 0, 'the socket to close');
    expect(closedAt - drainStarted).toBeGreaterThanOrEqual(100);
    connection.destroy();
  });

  it('answers POST /prestop mounted on the main port, although that server closes', async () => {
    const { provider, port } = await boot({ admin: false, mountAdmin: true });
    const reply = await caller.call(port, '/prestop', { method: 'POST' });
    expect(reply.status).toBe(200);
    expect(JSON.parse(reply.body)).toMatchObject({ trigger: 'prestop', outcome: 'idle' });
    await until(() => provider.state === 'stopped', 'the provider to stop');
    // the server closed at once: its connections did not have to be cut after closeTimeoutMs
    expect(provider.status()).toMatchObject({ lastDrain: { outcome: 'idle' } });
  });

  it('serves the admin endpoints on the main port when mounted, without counting probes', async () => {
    const { provider, port } = await boot({ admin: false, mountAdmin: true });
    const ready = await caller.call(port, '/readyz');
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.body)).toMatchObject({ state: 'ready', service: 'conformance' });
    expect(provider.tracker.total).toBe(0);
    const drained = provider.drain();
    // probes keep coming during the drain; they must not hold it open
    let probing = true;
    const probes = (async () => {
      while (probing) {
        const r = await caller.call(port, '/readyz').catch(() => undefined);
        if (r !== undefined) expect(r.status).toBe(503);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    const summary = await drained;
    probing = false;
    await probes;
    expect(summary.outcome).toBe('idle');
    expect(summary.drainMs).toBeLessThan(1500);
  });

  it('POST /prestop on the admin port answers when the drain is over', async () => {
    const { provider, port } = await boot();
    const slow = caller.call(port, '/slow?ms=300');
    await until(() => provider.inFlight === 1, 'a request in flight');
    const started = Date.now();
    const reply = await call(provider.adminAddress!.port, '/prestop', { method: 'POST' });
    expect(reply.status).toBe(200);
    expect(JSON.parse(reply.body)).toMatchObject({ trigger: 'prestop', outcome: 'idle' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect((await slow).status).toBe(200);
    await until(() => provider.state === 'stopped', 'the provider to stop');
  });
});
