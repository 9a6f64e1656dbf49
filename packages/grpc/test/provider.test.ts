import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { type GrpcProvider, type LosslessGrpcOptions, lossless } from '../src/index.js';
import {
  delay,
  EchoClient,
  echoImplementation,
  echoService,
  type Hooks,
  healthCheck,
  MemoryRegistry,
  sleepCall,
  type Ticks,
  until,
  watchGoaways,
} from './helpers.js';

const started: { provider: GrpcProvider; clients: grpc.Client[] }[] = [];

/** A provider for a grpc-js server with the echo service, not listening yet. */
function create(options: Partial<LosslessGrpcOptions> = {}, hooks: Hooks = {}) {
  const registry = new MemoryRegistry();
  const server = new grpc.Server();
  server.addService(echoService, echoImplementation(hooks));
  const provider = lossless(server, {
    service: 'echo',
    registry,
    admin: false,
    signals: false,
    exit: false,
    drain: { quietWindowMs: 100, maxDrainMs: 3000, closeTimeoutMs: 500 },
    registration: { confirmTimeoutMs: 0, checkIntervalMs: 0 },
    ...options,
  });
  const entry = { provider, clients: [] as grpc.Client[] };
  started.push(entry);
  return { provider, registry, server, entry };
}

/** The same, listening and ready. */
async function boot(options: Partial<LosslessGrpcOptions> = {}, hooks: Hooks = {}) {
  const { provider, registry, server, entry } = create(options, hooks);
  const port = await provider.listen('127.0.0.1:0');
  const client = (): grpc.Client => {
    const c = new EchoClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    entry.clients.push(c);
    return c;
  };
  return { provider, registry, server, port, client };
}

afterEach(async () => {
  for (const { provider, clients } of started.splice(0)) {
    for (const c of clients) c.close();
    if (provider.state !== 'stopped') await provider.destroy();
  }
});

describe('lossless(server) for a grpc-js Server', () => {
  it('registers once bound and warmed up, with the bound address', async () => {
    let warmed = false;
    const { provider, registry, port } = await boot({
      warmups: [
        {
          name: 'cache',
          run: async () => {
            await delay(30);
            warmed = true;
          },
        },
      ],
    });
    expect(warmed).toBe(true);
    expect(provider.state).toBe('ready');
    expect([...registry.instances.values()]).toMatchObject([{ ip: '127.0.0.1', port, service: 'echo' }]);
    expect(provider.instance?.metadata.secure).toBeUndefined();
  });

  it('rejects listen() on a port already taken with LOSSLESS_ERR_LISTEN, registering nothing', async () => {
    const { port } = await boot();
    const registry = new MemoryRegistry();
    const provider = lossless(new grpc.Server(), {
      service: 'echo',
      registry,
      admin: false,
      signals: false,
      exit: false,
    });
    started.push({ provider, clients: [] });
    const error = await provider.listen(`127.0.0.1:${port}`).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'LOSSLESS_ERR_LISTEN', name: 'ListenFailedError' });
    expect(String((error as Error).message)).toContain('EADDRINUSE');
    expect((error as Error).cause).toBeInstanceOf(Error);
    expect(registry.instances.size).toBe(0);
  });

  it('follows a bind made with the server own bindAsync()', async () => {
    const registry = new MemoryRegistry();
    const server = new grpc.Server();
    server.addService(echoService, echoImplementation());
    const provider = lossless(server, { service: 'echo', registry, admin: false, signals: false, exit: false });
    started.push({ provider, clients: [] });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('localhost:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    await provider.start();
    expect(provider.instance).toMatchObject({ ip: '127.0.0.1', port });
    const client = new EchoClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    started[started.length - 1]?.clients.push(client);
    const call = sleepCall(client, { ms: 100 });
    await until(() => provider.inFlight === 1, 'the call to be counted');
    expect((await call).code).toBe(grpc.status.OK);
  });

  it('rejects what is not a grpc-js server, and unknown health options', () => {
    expect(() => lossless({} as grpc.Server, { service: 'x' })).toThrow(/expected a @grpc\/grpc-js Server/);
    expect(() => lossless(new grpc.Server(), { service: 'x', health: { service: [''] } as never })).toThrow(
      /health\.service/,
    );
  });
});

describe('health service', () => {
  it('answers SERVING only while ready: NOT_SERVING while warming, from the drain start, after it', async () => {
    let release!: () => void;
    const { provider, server, entry } = create({
      health: { services: ['', 'test.Echo'] },
      warmups: [{ name: 'gate', run: () => new Promise<void>((resolve) => (release = resolve)) }],
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    const ready = provider.start();
    await until(() => provider.state === 'warming', 'warming');
    expect(await healthCheck(port)).toBe('NOT_SERVING');
    release();
    await ready;
    expect(await healthCheck(port)).toBe('SERVING');
    expect(await healthCheck(port, 'test.Echo')).toBe('SERVING');
    expect(await healthCheck(port, 'other')).toBe(`error ${grpc.status.NOT_FOUND}`);
    // health calls are neither in flight nor arrivals: probes do not hold a drain open
    expect(provider.tracker.total).toBe(0);

    const client = new EchoClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    entry.clients.push(client);
    const slow = sleepCall(client, { ms: 300 });
    await until(() => provider.inFlight === 1, 'a call in flight');
    const drained = provider.drain();
    expect(provider.state).toBe('draining');
    expect(await healthCheck(port)).toBe('NOT_SERVING');
    expect(await healthCheck(port, 'test.Echo')).toBe('NOT_SERVING');
    expect((await slow).code).toBe(grpc.status.OK);
    await drained;
  });

  it('a drain during the warm-up: listen() rejects with LOSSLESS_ERR_START_ABORTED, nothing registered, the provider stopped', async () => {
    const { provider, registry } = create({
      drain: { quietWindowMs: 50, maxDrainMs: 3000 },
      // a warm-up that never ends by itself: only the drain's abort ends it
      warmups: [
        {
          name: 'slow',
          run: (signal) =>
            new Promise<void>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason))),
        },
      ],
    });
    const listening = provider.listen('127.0.0.1:0').catch((e: unknown) => e);
    await until(() => provider.state === 'warming', 'warming');
    await provider.drain();
    expect(await listening).toMatchObject({ code: 'LOSSLESS_ERR_START_ABORTED' });
    expect(registry.instances.size).toBe(0);
    expect(provider.state).toBe('stopped');
  });

  it('answers NOT_SERVING while registering again after the registration was lost', async () => {
    const { provider, registry, port } = await boot({ registration: { checkIntervalMs: 20, confirmTimeoutMs: 0 } });
    expect(await healthCheck(port)).toBe('SERVING');
    let open!: () => void;
    registry.gate = new Promise((resolve) => (open = resolve));
    registry.instances.clear();
    await until(() => provider.state === 'registering', 'the loss to be noticed');
    expect(await healthCheck(port)).toBe('NOT_SERVING');
    open();
    await until(() => provider.state === 'ready', 'registered again');
    expect(await healthCheck(port)).toBe('SERVING');
  });

  it('is left out with health: false', async () => {
    const { port } = await boot({ health: false });
    expect(await healthCheck(port)).toBe(`error ${grpc.status.UNIMPLEMENTED}`);
  });
});

describe('calls in flight', () => {
  it('counts unary and streaming calls from their start to their status', async () => {
    const { provider, client } = await boot();
    const c = client();
    const unary = sleepCall(c, { ms: 200 });
    const stream = (c as unknown as { ticks: (r: object) => grpc.ClientReadableStream<{ i: number }> }).ticks({
      n: 5,
      everyMs: 40,
    });
    const ticks: number[] = [];
    stream.on('data', (m: { i: number }) => ticks.push(m.i));
    await until(() => provider.inFlight === 2, 'both calls in flight');
    expect(provider.tracker.oldestAgeMs()).toBeGreaterThan(0);
    expect(provider.tracker.snapshot().map((r) => r.url)).toEqual(
      expect.arrayContaining(['/test.Echo/Sleep', '/test.Echo/Ticks']),
    );
    expect((await unary).code).toBe(grpc.status.OK);
    await new Promise((resolve) => stream.on('status', resolve));
    expect(ticks).toEqual([0, 1, 2, 3, 4]);
    await until(() => provider.inFlight === 0, 'no call in flight');
    expect(provider.tracker.total).toBe(2);
  });

  it('forgets a call the client cancels', async () => {
    const { provider, client } = await boot();
    const call = (client() as unknown as { ticks: (r: object) => grpc.ClientReadableStream<unknown> }).ticks({
      everyMs: 10,
    });
    call.on('error', () => {});
    call.on('data', () => {});
    await until(() => provider.inFlight === 1, 'the stream in flight');
    call.cancel();
    await until(() => provider.inFlight === 0, 'the cancelled call forgotten');
  });
});

describe('drain', () => {
  it('marks answers: trailers of calls in flight, headers and trailers of later ones', async () => {
    const { provider, client } = await boot({ drain: { quietWindowMs: 300, maxDrainMs: 3000 } });
    const c = client();
    const before = await sleepCall(c);
    expect(before.trailers['x-lossless-offline']).toBeUndefined();
    const inFlight = sleepCall(c, { ms: 200 });
    await until(() => provider.inFlight === 1, 'a call in flight');
    const drained = provider.drain();
    const later = await sleepCall(client());
    const failed = await sleepCall(client(), { fail: grpc.status.NOT_FOUND });
    expect(later).toMatchObject({
      code: grpc.status.OK,
      headers: { 'x-lossless-offline': 'draining' },
      trailers: { 'x-lossless-offline': 'draining' },
    });
    // an error answered before any header went out: trailers-only, the marker with the status
    expect(failed).toMatchObject({ code: grpc.status.NOT_FOUND, trailers: { 'x-lossless-offline': 'draining' } });
    expect((await inFlight).trailers['x-lossless-offline']).toBe('draining');
    const summary = await drained;
    expect(summary).toMatchObject({ outcome: 'idle', inFlightAtStart: 1, arrivedDuringDrain: 2, cut: [] });
    expect(provider.tracker.marked).toBe(3);
  });

  it('leaves the registry first, then sends GOAWAY, then shuts the server down', async () => {
    const { provider, registry, port, client } = await boot({ drain: { quietWindowMs: 200, maxDrainMs: 3000 } });
    const watcher = watchGoaways(port);
    await sleepCall(client());
    const slow = sleepCall(client(), { ms: 400 });
    await until(() => provider.inFlight === 1, 'a call in flight');
    const startedAt = Date.now();
    const drained = provider.drain();
    await until(() => watcher.goaways.length > 0, 'GOAWAY', 2000);
    const deregistered = registry.calls.find((c) => c.call === 'deregister');
    expect(deregistered).toBeDefined();
    expect(watcher.goaways[0]?.at).toBeGreaterThanOrEqual(deregistered?.at ?? Number.POSITIVE_INFINITY);
    expect(watcher.goaways[0]?.code).toBe(0);
    // GOAWAY does not cut the call in flight
    expect((await slow).code).toBe(grpc.status.OK);
    const summary = await drained;
    expect(summary).toMatchObject({ outcome: 'idle', registry: 'removed', exitCode: 0 });
    expect(summary.drainMs).toBeGreaterThanOrEqual(350);
    expect(Date.now() - startedAt).toBeLessThan(2500);
    // shut down: a new call finds nobody listening
    expect((await sleepCall(client(), {}, { deadline: Date.now() + 1000 })).code).toBe(grpc.status.UNAVAILABLE);
    watcher.close();
  });

  it('is bounded by drain.maxDrainMs: a call still running is cut with UNAVAILABLE, exit code 1', async () => {
    const { provider, client } = await boot({ drain: { quietWindowMs: 50, maxDrainMs: 300, closeTimeoutMs: 200 } });
    const stuck = sleepCall(client(), { ms: 5000 });
    await until(() => provider.inFlight === 1, 'a call in flight');
    const startedAt = Date.now();
    const summary = await provider.drain();
    expect(summary).toMatchObject({ outcome: 'timeout', exitCode: 1 });
    expect(summary.cut).toMatchObject([{ url: '/test.Echo/Sleep' }]);
    expect((await stuck).code).toBe(grpc.status.UNAVAILABLE);
    expect(Date.now() - startedAt).toBeLessThan(2000);
  });

  it('a second drain() joins the first; destroy() forces the end', async () => {
    const { provider, client } = await boot({ drain: { quietWindowMs: 50, maxDrainMs: 10_000 } });
    const stuck = sleepCall(client(), { ms: 5000 });
    await until(() => provider.inFlight === 1, 'a call in flight');
    const first = provider.drain();
    expect(provider.drain()).toBe(first);
    const forced = await provider.destroy();
    expect(forced).toMatchObject({ outcome: 'forced', exitCode: 1 });
    expect([grpc.status.UNAVAILABLE, grpc.status.CANCELLED]).toContain((await stuck).code);
  });
});

describe('long-lived streams', () => {
  it('a declared stream does not hold the drain, and gets its goodbye once the wait is over', async () => {
    const { provider, client } = await boot(
      { drain: { quietWindowMs: 100, maxDrainMs: 5000 } },
      { onTicks: (call) => provider.stream(call) },
    );
    const stream = (client() as unknown as { ticks: (r: object) => grpc.ClientReadableStream<{ i: number }> }).ticks({
      everyMs: 20,
    });
    let received = 0;
    stream.on('data', () => received++);
    const ended = new Promise<grpc.StatusObject>((resolve) => stream.on('status', resolve));
    await until(() => provider.tracker.streams === 1 && received > 1, 'the stream declared');
    expect(provider.inFlight).toBe(0);
    const summary = await provider.drain();
    expect(summary).toMatchObject({ outcome: 'idle', streamsEnded: 1, cut: [], exitCode: 0 });
    expect(summary.drainMs).toBeLessThan(2000);
    const status = await ended;
    expect(status.code).toBe(grpc.status.OK);
    expect(status.metadata.get('x-lossless-offline')).toEqual(['draining']);
  });

  it('calls the goodbye given: a last message and a status of its choice', async () => {
    const { provider, client } = await boot(
      { drain: { quietWindowMs: 50, maxDrainMs: 5000 } },
      {
        onTicks: (call: Ticks) =>
          provider.stream(call, (c) => {
            c.write({ i: -1 });
            c.emit('error', { code: grpc.status.UNAVAILABLE, details: 'moving elsewhere' });
          }),
      },
    );
    const stream = (client() as unknown as { ticks: (r: object) => grpc.ClientReadableStream<{ i: number }> }).ticks({
      everyMs: 50,
    });
    const seen: number[] = [];
    stream.on('data', (m: { i: number }) => seen.push(m.i));
    stream.on('error', () => {});
    const ended = new Promise<grpc.StatusObject>((resolve) => stream.on('status', resolve));
    await until(() => provider.tracker.streams === 1, 'the stream declared');
    await provider.drain();
    const status = await ended;
    expect(seen.at(-1)).toBe(-1);
    expect(status).toMatchObject({ code: grpc.status.UNAVAILABLE, details: 'moving elsewhere' });
  });

  it('an undeclared stream holds the drain until drain.maxDrainMs, then is cut (no tryShutdown hang)', async () => {
    const { provider, client } = await boot({ drain: { quietWindowMs: 50, maxDrainMs: 400, closeTimeoutMs: 200 } });
    const stream = (client() as unknown as { ticks: (r: object) => grpc.ClientReadableStream<unknown> }).ticks({
      everyMs: 20,
    });
    stream.on('data', () => {});
    stream.on('error', () => {});
    const ended = new Promise<grpc.StatusObject>((resolve) => stream.on('status', resolve));
    await until(() => provider.inFlight === 1, 'the stream in flight');
    const summary = await provider.drain();
    expect(summary).toMatchObject({ outcome: 'timeout', exitCode: 1 });
    expect((await ended).code).toBe(grpc.status.UNAVAILABLE);
  });

  it('refuses what is not a call of this server', async () => {
    const { provider } = await boot();
    expect(() => provider.stream({ metadata: new grpc.Metadata(), end: () => {} })).toThrow(/expected the call object/);
  });
});
