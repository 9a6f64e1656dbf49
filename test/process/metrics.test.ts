// The express example serves Prometheus metrics on its admin port; a scraper sees the instance ready,
// then draining with its request in flight and the registry entry removed, as an operator would.

import { Agent } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { call, promSample, tempRegistry, until } from '../support.js';
import { type RunningExample, startExample } from './example.js';

describe('express example: GET /metrics on the admin port', () => {
  let registry: Awaited<ReturnType<typeof tempRegistry>> | undefined;
  let running: RunningExample | undefined;
  afterEach(async () => {
    running?.child.kill('SIGKILL');
    running = undefined;
    await registry?.remove();
  });

  it('shows ready, requests, registry calls, then the drain while it happens', async () => {
    registry = await tempRegistry();
    running = await startExample(['--registry', registry.url, '--quiet-window-ms', '300']);
    const r = running;
    const scrape = async (): Promise<string> => {
      const reply = await call(r.adminPort, '/metrics');
      expect(reply.status).toBe(200);
      expect(reply.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
      return reply.body;
    };
    for (let i = 0; i < 5; i++) expect((await call(r.port, '/hello')).status).toBe(200);

    const ready = await scrape();
    const service = { service: 'hello-service' };
    expect(promSample(ready, 'lossless_provider_state', { ...service, state: 'ready' })).toBe(1);
    expect(promSample(ready, 'lossless_provider_requests_total', service)).toBe(5);
    expect(promSample(ready, 'lossless_provider_in_flight', service)).toBe(0);
    expect(
      promSample(ready, 'lossless_registry_operations_total', {
        ...service,
        registry: 'file',
        operation: 'register',
        result: 'ok',
      }),
    ).toBe(1);
    // the process' default metrics sit beside lossless' own
    expect(promSample(ready, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);

    // a slow request in flight, then SIGTERM: the scraper sees the drain
    const agent = new Agent({ keepAlive: true });
    const slow = call(r.port, '/work?ms=1500', { agent });
    await until(async () => promSample(await scrape(), 'lossless_provider_in_flight') === 1, 'the slow request');
    r.child.kill('SIGTERM');
    await until(
      async () => promSample(await scrape(), 'lossless_provider_state', { state: 'draining' }) === 1,
      'the draining state',
    );
    const late = await call(r.port, '/hello');
    expect(late.headers['x-lossless-offline']).toBe('draining');
    const draining = await scrape();
    expect(promSample(draining, 'lossless_provider_in_flight')).toBe(1);
    expect(promSample(draining, 'lossless_provider_requests_during_drain_total')).toBe(1);
    expect(promSample(draining, 'lossless_provider_marked_responses_total')).toBeGreaterThanOrEqual(1);
    await until(
      async () =>
        promSample(await scrape(), 'lossless_registry_operations_total', { operation: 'deregister', result: 'ok' }) ===
        1,
      'the deregistration',
    );
    expect((await slow).status).toBe(200);
    agent.destroy();
    expect((await r.exited).code).toBe(0);
  });
});
