// @lossless/client over HTTP/2: real core providers on http2.createSecureServer (allowHTTP1, a
// self-signed certificate for 127.0.0.1) that undici 8 negotiates h2 with, the client trusting it
// through its `connect: { ca }` option. The client keeps every promise it keeps over HTTP/1.1: the
// marker ejects, a GOAWAY ejects, a refused stream is retried whatever its method, another reset
// only when the method is idempotent, and 5xx answers open the breaker.
// The registry here changes only when a test says so: whatever else the client learns, it learns from
// the providers.

import diagnosticsChannel from 'node:diagnostics_channel';
import {
  constants,
  createSecureServer,
  type Http2SecureServer,
  type Http2ServerRequest,
  type Http2ServerResponse,
} from 'node:http2';
import type { AddressInfo } from 'node:net';
import { CLIENT_CHANNELS, createClient, type LosslessClient } from '@lossless/client';
import { createProvider, type DiscoveryRegistry, type Instance, type Provider } from '@lossless/core';
import { Pool } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { until } from '../support.js';
import { TLS } from '../tls.js';

const SERVICE = 'orders';

type Handler = (req: Http2ServerRequest, res: Http2ServerResponse) => void;

interface Running {
  provider: Provider;
  server: Http2SecureServer;
  origin: string;
  instance: Instance;
  /** Requests the handler saw, with their HTTP version. */
  seen: { method: string; url: string; version: string }[];
}

/** A registry that lists what `instances()` returns; subscribers hear again on `publish()` only. */
function fixedRegistry(instances: () => Instance[]): DiscoveryRegistry & { publish(): void } {
  const listeners = new Set<(list: Instance[]) => void>();
  return {
    kind: 'fixed',
    list: async () => instances(),
    subscribe: (_service, listener) => {
      listeners.add(listener);
      queueMicrotask(() => listener(instances()));
      return () => listeners.delete(listener);
    },
    close: async () => {},
    publish: () => {
      for (const listener of listeners) listener(instances());
    },
  };
}

const ok: Handler = (req, res) => {
  const ms = Number(new URL(req.url, 'http://x').searchParams.get('ms') ?? 0);
  setTimeout(() => res.end(req.method === 'POST' ? 'created' : 'ok'), ms);
};

describe('client over HTTP/2 (TLS) to core providers', () => {
  const running: Running[] = [];
  let client: LosslessClient | undefined;
  const unsubscribe: (() => void)[] = [];

  afterEach(async () => {
    for (const u of unsubscribe.splice(0)) u();
    await client?.destroy();
    client = undefined;
    for (const r of running.splice(0)) if (r.provider.state !== 'stopped') await r.provider.destroy();
  });

  async function startProvider(handler: Handler = ok): Promise<Running> {
    const seen: Running['seen'] = [];
    const server = createSecureServer({ ...TLS, allowHTTP1: true }, (req, res) => {
      seen.push({ method: req.method, url: req.url, version: req.httpVersion });
      handler(req, res);
    });
    server.listen(0, '127.0.0.1');
    const provider = createProvider({
      service: SERVICE,
      server,
      registry: 'static://127.0.0.1:1', // registration is not what this test is about
      admin: false,
      signals: false,
      exit: false,
      drain: { quietWindowMs: 300, maxDrainMs: 5000 },
    });
    await provider.start();
    const port = (server.address() as AddressInfo).port;
    const instance: Instance = {
      service: SERVICE,
      id: `127.0.0.1:${port}`,
      ip: '127.0.0.1',
      port,
      weight: 100,
      enabled: true,
      healthy: true,
      // what a core provider on a TLS server registers (provider.instance): the client calls it over https
      metadata: { ...provider.instance?.metadata },
    };
    expect(instance.metadata.secure).toBe('true');
    const r = { provider, server, origin: `https://127.0.0.1:${port}`, instance, seen };
    running.push(r);
    return r;
  }

  function clientFor(
    instances: Running[],
    options: Partial<Parameters<typeof createClient>[0]> = {},
    registry = fixedRegistry(() => instances.map((r) => r.instance)),
  ): LosslessClient {
    client = createClient({
      registry,
      connect: { ca: TLS.cert },
      warmup: { windowMs: 1 },
      ...options,
    });
    return client;
  }

  function listen<T>(channel: string): T[] {
    const events: T[] = [];
    const fn = (m: unknown): void => {
      events.push(m as T);
    };
    diagnosticsChannel.subscribe(channel, fn);
    unsubscribe.push(() => diagnosticsChannel.unsubscribe(channel, fn));
    return events;
  }

  async function get(c: LosslessClient, path: string, method = 'GET'): Promise<{ status: number; body: string }> {
    const res = await c.request(`http://${SERVICE}${path}`, { method, ...(method === 'POST' ? { body: '{}' } : {}) });
    return { status: res.statusCode, body: await res.body.text() };
  }

  it('calls a secure instance over https, where undici negotiates HTTP/2; the CA comes from `connect`', async () => {
    const a = await startProvider();
    const c = clientFor([a]);
    expect(await get(c, '/')).toEqual({ status: 200, body: 'ok' });
    expect(a.seen.map((s) => s.version)).toEqual(['2.0']);
    // without the CA the certificate is refused
    const strict = createClient({ registry: fixedRegistry(() => [a.instance]), retry: { attempts: 1 } });
    await expect(get(strict, '/')).rejects.toMatchObject({ code: expect.stringMatching(/CERT|SELF_SIGNED|UNABLE/) });
    await strict.destroy();
  });

  it('ejects an instance on its first marked response, and sends nothing more there', async () => {
    const a = await startProvider();
    const b = await startProvider();
    const listed = [a];
    const registry = fixedRegistry(() => listed.map((r) => r.instance));
    const c = clientFor(listed, {}, registry);
    const ejections = listen<{ instance: string; reason: string }>(CLIENT_CHANNELS.eject);
    // a request in flight at a when its drain begins: its response carries the marker
    const inFlight = get(c, '/?ms=300');
    await until(() => a.provider.inFlight === 1, 'a request in flight at a');
    listed.push(b);
    registry.publish();
    const drained = a.provider.drain();
    expect(await inFlight).toEqual({ status: 200, body: 'ok' });
    await until(() => ejections.some((e) => e.instance === a.instance.id), 'a ejected');
    const seenAtA = a.seen.length;
    for (let i = 0; i < 20; i++) expect((await get(c, '/')).status).toBe(200);
    expect(a.seen.length).toBe(seenAtA);
    expect(c.instances(SERVICE).map((i) => i.instance)).toEqual([b.instance.id]);
    await drained;
  });

  it('ejects an instance whose idle session gets GOAWAY, before any response could carry the marker', async () => {
    const a = await startProvider();
    const b = await startProvider();
    const c = clientFor([a, b]);
    const ejections = listen<{ instance: string; reason: string }>(CLIENT_CHANNELS.eject);
    for (let i = 0; i < 20; i++) await get(c, '/');
    expect(a.seen.length).toBeGreaterThan(0); // a session to a is open, and idle
    const seenAtA = a.seen.length;
    const drained = a.provider.drain();
    await until(() => ejections.length > 0, 'an ejection');
    expect(ejections).toEqual([expect.objectContaining({ instance: a.instance.id, reason: 'goaway' })]);
    expect(c.refreshCount(SERVICE)).toBeGreaterThan(0);
    for (let i = 0; i < 20; i++) expect((await get(c, '/')).status).toBe(200);
    expect(a.seen.length).toBe(seenAtA);
    await drained;
  });

  it('with ejectOnGoaway: false, leaves GOAWAY alone: the marker still ejects', async () => {
    const a = await startProvider();
    const b = await startProvider();
    const c = clientFor([a, b], { ejectOnGoaway: false });
    const ejections = listen<{ instance: string; reason: string }>(CLIENT_CHANNELS.eject);
    for (let i = 0; i < 20; i++) await get(c, '/');
    const drained = a.provider.drain();
    // until a request lands on a (a new session there) and its marked answer ejects it
    for (let i = 0; i < 200 && ejections.length === 0; i++) expect((await get(c, '/')).status).toBe(200);
    expect(ejections).toEqual([expect.objectContaining({ instance: a.instance.id, reason: 'marker' })]);
    await drained;
  });

  it('loses no request of a steady load across a drain: marker and GOAWAY, replays counted once', async () => {
    const a = await startProvider();
    const b = await startProvider();
    const c = clientFor([a, b]);
    const retries = listen<{ reason: string; tried: string[] }>(CLIENT_CHANNELS.retry);
    let sent = 0;
    const failures: unknown[] = [];
    const replies: Promise<void>[] = [];
    let stop = false;
    const load = (async () => {
      while (!stop) {
        sent++;
        const method = sent % 5 === 0 ? 'POST' : 'GET';
        replies.push(
          get(c, `/?ms=${sent % 10 === 0 ? 50 : 1}&n=${sent}`, method).then(
            (r) => {
              if (r.status !== 200) failures.push(r);
            },
            (error: unknown) => {
              failures.push(error);
            },
          ),
        );
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    })();
    await until(() => a.seen.length > 20 && b.seen.length > 20, 'load on both instances');
    await a.provider.drain();
    await until(() => b.seen.length > 200, 'more load on b');
    stop = true;
    await load;
    await Promise.all(replies);
    expect(failures).toEqual([]);
    // every request reached a handler: none lost. undici's replays of streams a GOAWAY left out
    // happen below the client and are not requests of their own: they never run twice. A request
    // runs twice only when the client retried it after it was written (a stream reset once written:
    // the instance may have run it), which it does for idempotent methods alone: never a POST.
    const runs = new Map<number, string[]>();
    for (const r of [...a.seen, ...b.seen]) {
      const n = Number(new URL(r.url, 'http://x').searchParams.get('n'));
      runs.set(n, [...(runs.get(n) ?? []), r.method]);
    }
    expect(runs.size, 'requests that reached a handler').toBe(sent);
    const twice = [...runs].filter(([, methods]) => methods.length > 1);
    expect(
      twice.filter(([, methods]) => methods.some((m) => m !== 'GET')),
      'requests other than GETs run more than once',
    ).toEqual([]);
    expect(
      twice.length,
      `GETs run twice ${JSON.stringify(twice)}; retries ${JSON.stringify(retries)}`,
    ).toBeLessThanOrEqual(retries.length);
    expect(c.instances(SERVICE).every((i) => i.inFlight === 0)).toBe(true);
  });

  it('lets a plain undici client (no lossless) that keeps calling a draining provider lose nothing and wait no longer', async () => {
    const a = await startProvider();
    const pool = new Pool(a.origin, { connect: { ca: TLS.cert } });
    let sent = 0;
    let slowest = 0;
    const failures: unknown[] = [];
    const replies: Promise<void>[] = [];
    let stop = false;
    const load = (async () => {
      while (!stop) {
        sent++;
        const started = Date.now();
        replies.push(
          pool
            .request({ path: '/', method: sent % 5 === 0 ? 'POST' : 'GET', body: sent % 5 === 0 ? '{}' : undefined })
            .then(
              async (r) => {
                await r.body.text();
                slowest = Math.max(slowest, Date.now() - started);
              },
              (error: unknown) => {
                failures.push(error);
              },
            ),
        );
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
    })();
    await until(() => a.seen.length > 50, 'load on the provider');
    const drained = a.provider.drain();
    // the caller keeps calling (it does not read the marker): new sessions are served
    await until(() => a.provider.tracker.arrivedWhileMarking > 50, 'requests served during the drain');
    stop = true;
    await load;
    await Promise.all(replies);
    await pool.close();
    await drained;
    expect(failures).toEqual([]);
    expect(a.seen.length).toBe(sent);
    // no stream waited for a GOAWAY that a session which stopped reading would never send
    expect(slowest).toBeLessThan(500);
  });

  it('retries a POST whose stream was refused (REFUSED_STREAM: never processed) on another instance', async () => {
    const a = await startProvider((req) => req.stream.close(constants.NGHTTP2_REFUSED_STREAM));
    const b = await startProvider();
    const c = clientFor([a, b], { breaker: { connectionFailures: 0, volumeThreshold: 1000 } });
    for (let i = 0; i < 10; i++) expect(await get(c, '/', 'POST')).toEqual({ status: 200, body: 'created' });
    expect(a.seen.length).toBeGreaterThan(0);
    expect(b.seen.length).toBe(10);
  });

  it('retries a GET whose stream was reset otherwise, never a POST (it may have been processed)', async () => {
    const a = await startProvider((req) => req.stream.close(constants.NGHTTP2_INTERNAL_ERROR));
    const b = await startProvider();
    const c = clientFor([a, b], { breaker: { connectionFailures: 0, volumeThreshold: 1000 } });
    const retries = listen<{ reason: string }>(CLIENT_CHANNELS.retry);
    for (let i = 0; i < 10; i++) expect((await get(c, '/')).status).toBe(200);
    expect(retries.length).toBeGreaterThan(0);
    const posts = await Promise.allSettled(Array.from({ length: 10 }, () => get(c, '/', 'POST')));
    const failed = posts.filter((p) => p.status === 'rejected');
    // the POSTs that went to a failed and were not sent again
    expect(failed.length).toBe(a.seen.filter((s) => s.method === 'POST').length);
    expect(failed.length).toBeGreaterThan(0);
    expect((failed[0] as PromiseRejectedResult).reason).toMatchObject({ code: 'ERR_HTTP2_STREAM_ERROR' });
  });

  it('opens the circuit of an instance that answers 5xx over HTTP/2', async () => {
    const a = await startProvider((_req, res) => {
      res.statusCode = 500;
      res.end('boom');
    });
    const b = await startProvider();
    const c = clientFor([a, b], {
      breaker: { volumeThreshold: 5, errorThresholdPercentage: 50, resetTimeoutMs: 60_000 },
    });
    for (let i = 0; i < 40 && c.circuit(a.origin) !== 'open'; i++) await get(c, '/');
    expect(c.circuit(a.origin)).toBe('open');
    const seenAtA = a.seen.length;
    for (let i = 0; i < 20; i++) expect((await get(c, '/')).status).toBe(200);
    expect(a.seen.length).toBe(seenAtA);
  });
});
