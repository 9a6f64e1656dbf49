import diagnosticsChannel from 'node:diagnostics_channel';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import type { LosslessError } from '../src/errors.js';
import type { ProviderOptions } from '../src/options.js';
import { CHANNELS, Provider } from '../src/provider.js';
import { get, listen, MemoryRegistry, until } from './helpers.js';

interface Setup {
  provider: Provider;
  registry: MemoryRegistry;
  server: Server;
  port: number;
  exits: number[];
  adminPort: () => number;
}

const live: Provider[] = [];
const servers: Server[] = [];

async function setup(options: Partial<ProviderOptions> = {}, registry = new MemoryRegistry()): Promise<Setup> {
  const { server, port } = await listen();
  servers.push(server);
  const exits: number[] = [];
  const provider = new Provider({
    service: 'orders',
    registry,
    server,
    admin: { port: 0 },
    signals: false,
    exit: (code) => exits.push(code),
    drain: { quietWindowMs: 50, maxDrainMs: 5000 },
    registration: { retryMinDelayMs: 10, retryMaxDelayMs: 20, timeoutMs: 500, confirmTimeoutMs: 200 },
    ...options,
  });
  live.push(provider);
  return { provider, registry, server, port, exits, adminPort: () => provider.adminAddress?.port ?? 0 };
}

afterEach(async () => {
  for (const provider of live.splice(0)) {
    provider.uninstall();
    if (provider.state !== 'stopped') await provider.destroy().catch(() => {});
  }
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    server.close();
  }
});

describe('Provider start', () => {
  it('registers only after the warm-up hooks resolved, and is ready only then', async () => {
    let release!: () => void;
    const registry = new MemoryRegistry();
    const { provider, adminPort } = await setup(
      { warmups: [{ name: 'cache', run: () => new Promise<void>((resolve) => (release = resolve)) }] },
      registry,
    );
    const started = provider.start();
    await until(() => provider.state === 'warming' && adminPort() > 0, 'warming');
    const during = await get(adminPort(), '/readyz');
    expect(during.status).toBe(503);
    expect(JSON.parse(during.body)).toMatchObject({ state: 'warming', reason: 'warm-up hook "cache" running' });
    expect((await get(adminPort(), '/startupz')).status).toBe(503);
    expect((await get(adminPort(), '/livez')).status).toBe(200);
    expect(registry.calls).toEqual([]);
    release();
    await started;
    expect(registry.calls).toEqual([`register ${provider.instance?.id}`]);
    expect(provider.state).toBe('ready');
    expect((await get(adminPort(), '/readyz')).status).toBe(200);
    expect((await get(adminPort(), '/startupz')).status).toBe(200);
  });

  it('registers the address the server listens on, with the warm-up metadata', async () => {
    const { provider, port } = await setup({ warmupWindowMs: 30_000, instance: { metadata: { zone: 'a' } } });
    const before = Date.now();
    await provider.start();
    const instance = provider.instance!;
    expect(instance).toMatchObject({ service: 'orders', ip: '127.0.0.1', port, id: `127.0.0.1:${port}`, weight: 100 });
    expect(instance.metadata.zone).toBe('a');
    expect(instance.metadata['lossless.warmup-ms']).toBe('30000');
    expect(Number(instance.metadata['lossless.registered-at'])).toBeGreaterThanOrEqual(before);
  });

  it('stays unregistered and not ready when a warm-up hook rejects, naming the hook', async () => {
    const registry = new MemoryRegistry();
    const { provider, adminPort } = await setup(
      {
        warmups: [
          { name: 'db', run: () => undefined },
          {
            name: 'cache',
            run: () => {
              throw new Error('redis down');
            },
          },
        ],
      },
      registry,
    );
    const errors: LosslessError[] = [];
    provider.on('error', (e) => errors.push(e));
    await expect(provider.start()).rejects.toMatchObject({ code: 'LOSSLESS_ERR_WARMUP_FAILED', hook: 'cache' });
    expect(provider.state).toBe('failed');
    expect(registry.calls).toEqual([]);
    const ready = await get(adminPort(), '/readyz');
    expect(ready.status).toBe(503);
    expect(JSON.parse(ready.body).reason).toContain('Warm-up hook "cache" failed: redis down');
    expect(errors.map((e) => e.code)).toEqual(['LOSSLESS_ERR_WARMUP_FAILED']);
  });

  it('fails with a timeout error when a warm-up hook hangs, and aborts its signal', async () => {
    let aborted = false;
    const { provider, registry } = await setup({
      warmups: [
        {
          name: 'slow',
          timeoutMs: 50,
          run: (signal) =>
            new Promise(() => {
              signal.addEventListener('abort', () => {
                aborted = true;
              });
            }),
        },
      ],
    });
    await expect(provider.start()).rejects.toMatchObject({
      code: 'LOSSLESS_ERR_WARMUP_TIMEOUT',
      hook: 'slow',
      timeoutMs: 50,
    });
    expect(aborted).toBe(true);
    expect(registry.calls).toEqual([]);
  });

  it('keeps retrying a failing registration, says why in /readyz, and becomes ready once it works', async () => {
    const registry = new MemoryRegistry();
    registry.failRegister = 3;
    const { provider, adminPort } = await setup({}, registry);
    const reasons: string[] = [];
    const started = provider.start();
    await until(async () => {
      if (adminPort() === 0) return false;
      const r = await get(adminPort(), '/readyz');
      reasons.push(JSON.parse(r.body).reason);
      return r.status === 200;
    }, 'ready');
    await started;
    expect(registry.calls.filter((c) => c.startsWith('register'))).toHaveLength(4);
    expect(
      reasons.some((r) => /registration attempt \d failed \(LOSSLESS_ERR_REGISTRY\).*registry unreachable/.test(r)),
    ).toBe(true);
  });

  it('reports a file registry it cannot write at once, with a code, and /readyz says why', async () => {
    // a directory under a regular file: mkdir fails (ENOTDIR), whoever runs the test, root included
    const parent = await mkdtemp(join(tmpdir(), 'lossless-unwritable-'));
    const file = join(parent, 'a-file');
    await writeFile(file, '');
    const errors: { code?: unknown; msg?: string }[] = [];
    const record = (fields: object, msg?: string) => errors.push({ ...(fields as { code?: unknown }), msg });
    const logger = { debug: () => {}, info: () => {}, warn: () => {}, error: record };
    const { provider, adminPort } = await setup({
      registry: pathToFileURL(join(file, 'registry')).href,
      logger,
      // a long warm-up: before registering, only the check can tell that the registry is unusable
      warmups: [{ name: 'slow', run: (signal) => new Promise((resolve) => signal.addEventListener('abort', resolve)) }],
    });
    const emitted: LosslessError[] = [];
    provider.on('error', (error) => emitted.push(error));
    const started = provider.start().catch(() => {});
    await until(() => errors.some((e) => e.code === 'LOSSLESS_ERR_REGISTRY'), 'the registry problem logged', 2000);
    expect(emitted.map((e) => e.code)).toEqual(['LOSSLESS_ERR_REGISTRY']);
    expect(errors.find((e) => e.code === 'LOSSLESS_ERR_REGISTRY')?.msg).toMatch(/file registry check .*ENOTDIR/);
    expect(provider.state).toBe('warming');
    await until(() => adminPort() !== 0, 'the admin server');
    const readyz = await get(adminPort(), '/readyz');
    expect(readyz.status).toBe(503);
    expect(JSON.parse(readyz.body).reason).toMatch(/file registry cannot be used: .*ENOTDIR/);
    await provider.destroy();
    await started;
    await rm(parent, { recursive: true, force: true });
  });

  it('says it waits for the server to listen, and stops waiting when a drain begins', async () => {
    const server = createServer();
    servers.push(server);
    const provider = new Provider({
      service: 'orders',
      registry: new MemoryRegistry(),
      server,
      signals: false,
      admin: false,
    });
    live.push(provider);
    const started = provider.start().catch((error: unknown) => error);
    await until(() => provider.reason === 'waiting for the server to listen', 'the reason');
    expect(provider.state).toBe('starting');
    const summary = await provider.drain({ exit: false });
    expect(await started).toMatchObject({ code: 'LOSSLESS_ERR_START_ABORTED', state: 'starting' });
    expect(summary.registry).toBe('not-registered');
  });

  it('aborts a registration under way when a drain begins: start() rejects, nothing is left registered', async () => {
    const registry = new MemoryRegistry();
    let land!: () => void;
    const landed = new Promise<void>((resolve) => (land = resolve));
    const register = registry.register.bind(registry);
    registry.register = async (instance) => {
      await landed;
      await register(instance);
    };
    const { provider } = await setup({}, registry);
    const started = provider.start().catch((error: unknown) => error);
    await until(() => provider.state === 'registering', 'registering');
    const draining = provider.drain({ exit: false });
    land();
    expect(await started).toMatchObject({ code: 'LOSSLESS_ERR_START_ABORTED', state: 'registering' });
    await draining;
    expect(registry.instances.size).toBe(0);
  });

  it("emits 'ready' once with the instance registered, after the transition to ready", async () => {
    const { provider } = await setup();
    const seen: string[] = [];
    provider.on('state', (change) => seen.push(change.to));
    provider.on('ready', (instance) => seen.push(`ready ${instance.id} in state ${provider.state}`));
    await provider.start();
    expect(seen).toEqual(['warming', 'registering', 'ready', `ready ${provider.instance?.id} in state ready`]);
  });

  it('opens the admin server on the address the server listens on, unless told another', async () => {
    const server = createServer((_req, res) => res.end('ok'));
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.2', resolve));
    const provider = new Provider({
      service: 'orders',
      registry: new MemoryRegistry(),
      server,
      signals: false,
      admin: { port: 0 },
    });
    live.push(provider);
    await provider.start();
    expect(provider.adminAddress?.address).toBe('127.0.0.2');
  });

  it('fails with a coded error when the admin port is taken', async () => {
    const { server: blocker, port: taken } = await listen();
    servers.push(blocker);
    const { provider } = await setup({ admin: { port: taken } });
    await expect(provider.start()).rejects.toMatchObject({ code: 'LOSSLESS_ERR_LISTEN' });
    expect(provider.state).toBe('failed');
  });

  it('warns once at creation when the service name has upper case (lossless clients look names up in lower case)', () => {
    const warned = (service: string) => {
      const lines: { code?: unknown; msg?: string }[] = [];
      const logger = {
        debug() {},
        info() {},
        error() {},
        warn: (obj: object, msg?: string) => lines.push({ ...(obj as { code?: unknown }), msg }),
      };
      new Provider({ service, registry: new MemoryRegistry(), signals: false, admin: false, logger });
      return lines;
    };
    expect(warned('OrderService')).toEqual([
      expect.objectContaining({ code: 'LOSSLESS_WARN_SERVICE_CASE', msg: expect.stringContaining("['OrderService']") }),
    ]);
    expect(warned('order-service')).toEqual([]);
  });

  it('rejects start() without a server, with a coded error', async () => {
    const provider = new Provider({ service: 'x', registry: new MemoryRegistry(), signals: false, admin: false });
    await expect(provider.start()).rejects.toMatchObject({ code: 'LOSSLESS_ERR_PROVIDER_STATE' });
  });
});

describe('Provider drain', () => {
  it('leaves the registry before the server closes, then runs onClose and exits 0', async () => {
    const { provider, registry, server, exits } = await setup();
    await provider.start();
    const order: string[] = [];
    const origDeregister = registry.deregister.bind(registry);
    registry.deregister = async (i) => {
      order.push('deregister');
      await origDeregister(i);
    };
    server.on('close', () => order.push('server closed'));
    provider.onClose(() => {
      order.push('onClose');
    });
    const summary = await provider.drain();
    expect(order).toEqual(['deregister', 'server closed', 'onClose']);
    expect(summary).toMatchObject({ outcome: 'idle', registry: 'removed', cut: [], exitCode: 0, trigger: 'api' });
    expect(registry.instances.size).toBe(0);
    expect(provider.state).toBe('stopped');
    await until(() => exits.length === 1, 'exit to be called');
    expect(exits).toEqual([0]);
  });

  it('answers the requests in flight with the marker and Connection: close before closing', async () => {
    const { provider, port } = await setup();
    await provider.start();
    const slow = get(port, '/?ms=300');
    await until(() => provider.inFlight === 1, 'the slow request');
    const drained = provider.drain();
    const during = await get(port, '/');
    const [slowReply, summary] = await Promise.all([slow, drained]);
    for (const reply of [slowReply, during]) {
      expect(reply.status).toBe(200);
      expect(reply.headers['x-lossless-offline']).toBe('draining');
      expect(reply.headers.connection).toBe('close');
    }
    expect(summary.inFlightAtStart).toBe(1);
    expect(summary.arrivedDuringDrain).toBe(1);
    expect(summary.drainMs).toBeGreaterThanOrEqual(250);
  });

  it('disables instead of deregistering when asked to', async () => {
    const { provider, registry } = await setup({ drain: { quietWindowMs: 20, offline: 'disable' } });
    await provider.start();
    const summary = await provider.drain();
    expect(summary.registry).toBe('disabled');
    expect(registry.calls.filter((c) => c.startsWith('setEnabled'))).toEqual([
      `setEnabled ${provider.instance?.id} false`,
    ]);
    expect(registry.calls.some((c) => c.startsWith('deregister'))).toBe(false);
  });

  it('still drains when the registry is unreachable, and reports it with a code', async () => {
    const { provider, registry, port } = await setup();
    await provider.start();
    registry.hangDeregister = true;
    const errors: string[] = [];
    provider.on('error', (e) => errors.push(e.code));
    const drained = provider.drain();
    const during = await get(port, '/');
    const summary = await drained;
    expect(during.headers['x-lossless-offline']).toBe('draining');
    expect(summary.registry).toBe('failed');
    expect(summary.outcome).toBe('idle');
    expect(errors).toContain('LOSSLESS_ERR_REGISTRY_TIMEOUT');
  });

  it('cuts what is still in flight at the maximum, names it, and exits 1', async ({ annotate }) => {
    const { provider, port, exits } = await setup({ drain: { quietWindowMs: 20, maxDrainMs: 200 } });
    await provider.start();
    const hung = get(port, '/?ms=5000').catch((error: Error) => error);
    await until(() => provider.inFlight === 1, 'the long request');
    const summary = await provider.drain();
    expect(summary.outcome).toBe('timeout');
    expect(summary.cut).toEqual([{ method: 'GET', url: '/?ms=5000', ageMs: expect.any(Number) }]);
    expect(summary.exitCode).toBe(1);
    expect(await hung).toBeInstanceOf(Error);
    await until(() => exits.length === 1, 'exit');
    expect(exits).toEqual([1]);
    await annotate(
      `drain ${summary.drainMs} ms for maxDrainMs 200; cut ${summary.cut.map((r) => `${r.method} ${r.url}`).join(', ')} (caller saw ${(await hung) instanceof Error ? 'its connection reset' : 'an answer'}); exit code ${exits[0]}`,
      'measured',
    );
  });

  it('never outlasts maxDrainMs, even when the registry never answers', async () => {
    const { provider, registry } = await setup({
      drain: { quietWindowMs: 20, maxDrainMs: 300 },
      registration: { timeoutMs: 60_000, confirmTimeoutMs: 60_000 },
    });
    await provider.start();
    registry.hangDeregister = true;
    const started = Date.now();
    const summary = await provider.drain();
    // bounded by maxDrainMs (300 ms), not by the registry's 60 s timeouts; a loose bound for busy machines
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(summary).toMatchObject({ outcome: 'timeout', registry: 'failed', cut: [], exitCode: 0 });
  });

  it('exits 1 when the drain ends a process whose start failed', async () => {
    const { provider, exits } = await setup({
      warmups: [
        {
          name: 'broken',
          run: () => {
            throw new Error('no database');
          },
        },
      ],
    });
    await expect(provider.start()).rejects.toMatchObject({ code: 'LOSSLESS_ERR_WARMUP_FAILED' });
    const summary = await provider.drain();
    expect(summary).toMatchObject({ registry: 'not-registered', exitCode: 1 });
    await until(() => exits.length === 1, 'exit');
    expect(exits).toEqual([1]);
  });

  it('is idempotent: every call gets the same summary', async () => {
    const { provider } = await setup();
    await provider.start();
    const a = provider.drain();
    const b = provider.close();
    expect(await a).toBe(await b);
  });

  it('aborts a start under way: never registered, start() rejects with a code', async () => {
    const { provider, registry } = await setup({
      warmups: [{ name: 'slow', run: (signal) => new Promise((r) => signal.addEventListener('abort', r)) }],
    });
    const started = provider.start().catch((error: unknown) => error);
    await until(() => provider.state === 'warming', 'warming');
    const summary = await provider.drain();
    expect(await started).toMatchObject({ code: 'LOSSLESS_ERR_START_ABORTED' });
    expect(summary.registry).toBe('not-registered');
    expect(registry.calls).toEqual(['close']);
  });

  it('runs preDrain and onClose hooks, and survives one that throws', async () => {
    const { provider } = await setup();
    const seen: string[] = [];
    provider.preDrain(() => {
      seen.push('preDrain');
      throw new Error('boom');
    }, 'stopConsumers');
    provider.onReady(() => {
      seen.push('onReady');
    });
    provider.onClose(() => {
      seen.push('onClose');
    });
    const errors: LosslessError[] = [];
    provider.on('error', (e) => errors.push(e));
    await provider.start();
    const summary = await provider.drain();
    expect(seen).toEqual(['onReady', 'preDrain', 'onClose']);
    expect(summary.outcome).toBe('idle');
    expect(errors.map((e) => [e.code, e.message])).toEqual([
      ['LOSSLESS_ERR_HOOK_FAILED', 'preDrain hook "stopConsumers" failed: boom'],
    ]);
  });

  it('publishes every transition on diagnostics_channel', async () => {
    const seen: string[] = [];
    const listener = (message: unknown): void => {
      const m = message as { from: string; to: string; service: string };
      if (m.service === 'orders') seen.push(`${m.from}->${m.to}`);
    };
    diagnosticsChannel.subscribe(CHANNELS.state, listener);
    try {
      const { provider } = await setup();
      await provider.start();
      await provider.drain();
    } finally {
      diagnosticsChannel.unsubscribe(CHANNELS.state, listener);
    }
    expect(seen).toEqual([
      'starting->warming',
      'warming->registering',
      'registering->ready',
      'ready->draining',
      'draining->stopped',
    ]);
  });
});

describe('Provider signals and preStop', () => {
  it('drains on SIGTERM; a second SIGTERM cuts what is in flight', async () => {
    const { provider, port, exits } = await setup({ signals: ['SIGTERM'] });
    await provider.start();
    const hung = get(port, '/?ms=5000').catch((error: Error) => error);
    await until(() => provider.inFlight === 1, 'the long request');
    process.emit('SIGTERM', 'SIGTERM');
    await until(() => provider.state === 'draining', 'draining');
    const errors: LosslessError[] = [];
    provider.on('error', (e) => errors.push(e));
    process.emit('SIGTERM', 'SIGTERM');
    await until(() => exits.length === 1, 'exit');
    expect(exits).toEqual([1]);
    expect(await hung).toBeInstanceOf(Error);
    expect(errors.map((e) => e.message)).toContain(
      'Second SIGTERM during the drain: closing now with 1 request(s) still in flight',
    );
    expect(process.listenerCount('SIGTERM')).toBe(0);
  });

  it('POST /prestop answers once the drain is over; a SIGTERM during it joins it', async () => {
    const { provider, port, adminPort, exits } = await setup({ signals: ['SIGTERM'] });
    await provider.start();
    const slow = get(port, '/?ms=200');
    await until(() => provider.inFlight === 1, 'the slow request');
    const { request } = await import('node:http');
    const prestop = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: adminPort(), path: '/prestop', method: 'POST' }, (res) => {
        let body = '';
        res.on('data', (c) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });
    await until(() => provider.state === 'draining', 'draining');
    process.emit('SIGTERM', 'SIGTERM');
    const reply = await prestop;
    expect((await slow).status).toBe(200);
    expect(reply.status).toBe(200);
    expect(JSON.parse(reply.body)).toMatchObject({ trigger: 'prestop', outcome: 'idle', cut: [] });
    await until(() => exits.length === 1, 'exit');
    expect(exits).toEqual([0]);
  });

  it('uninstall() removes its signal handlers', async () => {
    const before = process.listenerCount('SIGINT');
    const { provider } = await setup({ signals: ['SIGINT'] });
    await provider.start();
    expect(process.listenerCount('SIGINT')).toBe(before + 1);
    provider.uninstall();
    expect(process.listenerCount('SIGINT')).toBe(before);
  });
});
