import diagnosticsChannel from 'node:diagnostics_channel';
import type { Server } from 'node:http';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { promSample as sample } from '../../../test/support.js';
import { LosslessError } from '../src/errors.js';
import { type LosslessMetrics, prometheusMetrics } from '../src/metrics.js';
import type { MetricsSource } from '../src/options.js';
import { Provider } from '../src/provider.js';
import { get, listen, MemoryRegistry, until } from './helpers.js';

const live: { provider?: Provider; server?: Server; metrics?: LosslessMetrics }[] = [];

afterEach(async () => {
  for (const { provider, server, metrics } of live.splice(0)) {
    metrics?.close();
    if (provider !== undefined && provider.state !== 'stopped') await provider.destroy().catch(() => {});
    server?.closeAllConnections();
    server?.close();
  }
});

/** A provider on an admin port whose `metrics` option is `source` (prometheusMetrics() by default; null: none). */
async function providerWithMetrics(
  registry = new MemoryRegistry(),
  source: MetricsSource | null = prometheusMetrics(),
) {
  const { server, port } = await listen();
  const provider = new Provider({
    service: 'orders',
    registry,
    server,
    admin: { port: 0 },
    signals: false,
    exit: false,
    ...(source === null ? {} : { metrics: source }),
    drain: { quietWindowMs: 50, maxDrainMs: 5000 },
    registration: { retryMinDelayMs: 10, retryMaxDelayMs: 20, timeoutMs: 500, confirmTimeoutMs: 200 },
  });
  const metrics = source as LosslessMetrics;
  live.push({ provider, server, ...('close' in (source ?? {}) ? { metrics } : {}) });
  return { provider, port, metrics, registry, adminPort: () => provider.adminAddress?.port ?? 0 };
}

describe('prometheusMetrics() with a provider', () => {
  it('serves lifecycle state, requests, registry calls and the drain on GET /metrics of the admin server', async () => {
    const { provider, port, adminPort } = await providerWithMetrics();
    await provider.start();
    for (let i = 0; i < 3; i++) expect((await get(port, '/?ms=1')).status).toBe(200);

    const ready = await get(adminPort(), '/metrics');
    expect(ready.status).toBe(200);
    expect(ready.headers['content-type']).toMatch(/^text\/plain/);
    expect(sample(ready.body, 'lossless_provider_state', { service: 'orders', state: 'ready' })).toBe(1);
    expect(sample(ready.body, 'lossless_provider_state', { service: 'orders', state: 'draining' })).toBe(0);
    expect(sample(ready.body, 'lossless_provider_requests_total', { service: 'orders' })).toBe(3);
    expect(sample(ready.body, 'lossless_provider_in_flight', { service: 'orders' })).toBe(0);
    expect(
      sample(ready.body, 'lossless_registry_operations_total', { operation: 'register', result: 'ok' }),
    ).toBeGreaterThanOrEqual(1);

    // a request in flight when the drain begins, and one arriving during the drain
    const slow = get(port, '/?ms=300');
    await until(() => provider.inFlight === 1, 'the slow request in flight');
    const drained = provider.drain();
    await until(() => provider.state === 'draining', 'draining');
    const during = await get(port, '/?ms=1');
    expect(during.headers['x-lossless-offline']).toBeDefined();
    const draining = await get(adminPort(), '/metrics');
    expect(sample(draining.body, 'lossless_provider_state', { state: 'draining' })).toBe(1);
    expect(sample(draining.body, 'lossless_provider_in_flight')).toBe(1);
    expect(sample(draining.body, 'lossless_provider_requests_during_drain_total')).toBe(1);
    expect(sample(draining.body, 'lossless_registry_operations_total', { operation: 'deregister', result: 'ok' })).toBe(
      1,
    );
    expect((await slow).status).toBe(200);
    const summary = await drained;

    const text = await provider.options.metrics?.metrics();
    expect(text).toBeDefined();
    expect(sample(text as string, 'lossless_provider_state', { state: 'stopped' })).toBe(1);
    // the slow request and the late one were both marked
    expect(sample(text as string, 'lossless_provider_marked_responses_total')).toBe(2);
    expect(sample(text as string, 'lossless_provider_drain_duration_seconds_count', { outcome: summary.outcome })).toBe(
      1,
    );
    expect(
      sample(text as string, 'lossless_provider_drain_duration_seconds_sum', { outcome: summary.outcome }),
    ).toBeCloseTo(summary.drainMs / 1000, 3);
  });

  it('counts failed registry calls by operation', async () => {
    const registry = new MemoryRegistry();
    registry.failRegister = 2;
    const { provider, metrics } = await providerWithMetrics(registry);
    await provider.start();
    const text = await metrics.metrics();
    expect(sample(text, 'lossless_registry_operations_total', { operation: 'register', result: 'error' })).toBe(2);
    expect(sample(text, 'lossless_registry_operations_total', { operation: 'register', result: 'ok' })).toBe(1);
  });

  it('answers 404 for /metrics when no metrics were given', async () => {
    const { provider, adminPort } = await providerWithMetrics(new MemoryRegistry(), null);
    await provider.start();
    expect((await get(adminPort(), '/metrics')).status).toBe(404);
  });

  it('answers 500 with a code when the metrics source fails, and 405 for POST', async () => {
    const { provider, adminPort } = await providerWithMetrics(new MemoryRegistry(), {
      contentType: 'text/plain',
      metrics: () => Promise.reject(new Error('collector broke')),
    });
    await provider.start();
    const reply = await get(adminPort(), '/metrics');
    expect(reply.status).toBe(500);
    expect(JSON.parse(reply.body)).toMatchObject({ error: 'LOSSLESS_ERR_METRICS' });
    const post = await fetch(`http://127.0.0.1:${adminPort()}/metrics`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });
});

describe('prometheusMetrics() with client events', () => {
  it('counts retries, markers, ejections, refreshes and circuit transitions from the client channels', async () => {
    const metrics = prometheusMetrics();
    live.push({ metrics });
    diagnosticsChannel
      .channel('lossless:client:retry')
      .publish({ service: 'orders', attempt: 1, tried: ['a'], reason: 'ECONNREFUSED' });
    diagnosticsChannel
      .channel('lossless:client:marker')
      .publish({ service: 'orders', instance: 'a', origin: 'http://127.0.0.1:1', status: 200 });
    diagnosticsChannel
      .channel('lossless:client:eject')
      .publish({ service: 'orders', instance: 'a', origin: 'http://127.0.0.1:1', reason: 'marker' });
    diagnosticsChannel.channel('lossless:client:refresh').publish({ service: 'orders', reason: 'marker' });
    diagnosticsChannel.channel('lossless:client:circuit').publish({ origin: 'http://127.0.0.1:1', state: 'open' });
    metrics.track({
      instances: () => [
        {
          service: 'orders',
          instance: 'b',
          origin: 'http://127.0.0.1:2',
          effectiveWeight: 0.25,
          inFlight: 3,
          circuit: 'open',
        },
      ],
    });
    const text = await metrics.metrics();
    expect(sample(text, 'lossless_client_retries_total', { service: 'orders', reason: 'ECONNREFUSED' })).toBe(1);
    expect(sample(text, 'lossless_client_marked_responses_total', { instance: 'a' })).toBe(1);
    expect(sample(text, 'lossless_client_ejections_total', { service: 'orders' })).toBe(1);
    expect(sample(text, 'lossless_client_registry_refreshes_total', { reason: 'marker' })).toBe(1);
    expect(sample(text, 'lossless_client_circuit_transitions_total', { state: 'open' })).toBe(1);
    expect(sample(text, 'lossless_client_instance_weight', { instance: 'b' })).toBe(0.25);
    expect(sample(text, 'lossless_client_instance_in_flight', { instance: 'b' })).toBe(3);
    expect(sample(text, 'lossless_client_circuit_state', { instance: 'b' })).toBe(2);
  });

  it('stops counting once closed and can share a registry given by the application', async () => {
    const register = new Registry();
    const metrics = prometheusMetrics({ register, prefix: 'app_lossless_' });
    metrics.close();
    diagnosticsChannel
      .channel('lossless:client:eject')
      .publish({ service: 'orders', instance: 'a', origin: 'x', reason: 'marker' });
    expect(await register.metrics()).not.toContain('app_lossless_');
    const again = prometheusMetrics({ register, prefix: 'app_lossless_' });
    live.push({ metrics: again });
    expect(await register.metrics()).toContain('app_lossless_client_ejections_total');
  });

  it.each([
    [{ prefix: '9bad' }, 'prefix'],
    [{ register: {} }, 'register'],
    [{ drainBuckets: [0] }, 'drainBuckets'],
  ])('refuses bad options with a coded error (%o)', (options, option) => {
    let error: unknown;
    try {
      prometheusMetrics(options as never);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(LosslessError);
    expect(error).toMatchObject({ code: 'LOSSLESS_ERR_INVALID_OPTION', option });
  });

  it('refuses to track something that is neither a provider nor a client', () => {
    const metrics = prometheusMetrics();
    live.push({ metrics });
    expect(() => metrics.track({} as never)).toThrow(LosslessError);
  });
});
