// The consumer example serves its client's metrics: a scraper sees a provider's instance with its
// weight, then, once that provider drains, the marked responses and the instance out of rotation
// (a second provider takes the traffic: with none left, the client would keep calling the draining
// one as a last resort).

import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { call, promSample, tempRegistry, until } from '../support.js';
import { launchScript, type Running, startExample } from './example.js';

const CONSUMER = fileURLToPath(new URL('../../examples/consumer/client.mjs', import.meta.url));

describe('consumer example: GET /metrics with --metrics-port', () => {
  let registry: Awaited<ReturnType<typeof tempRegistry>> | undefined;
  const children: Running[] = [];
  afterEach(async () => {
    for (const c of children.splice(0)) c.child.kill('SIGKILL');
    await registry?.remove();
  });

  it('shows the instance and its weight, then the markers, and the instance gone, when it drains', async () => {
    registry = await tempRegistry();
    const [provider, other] = await Promise.all([
      startExample(['--registry', registry.url, '--quiet-window-ms', '300']),
      startExample(['--registry', registry.url, '--quiet-window-ms', '300']),
    ]);
    children.push(provider, other);
    const consumer = launchScript(CONSUMER, [
      '--registry',
      registry.url,
      // 300 ms requests: several are in flight when the provider is told to go, and their answers carry the marker
      '--path',
      '/work?ms=300',
      '--rate',
      '50',
      '--duration',
      '20',
      '--metrics-port',
      '0',
    ]);
    children.push(consumer);
    let metricsPort = 0;
    await until(() => {
      metricsPort = Number(consumer.logs().find((l) => l.metricsPort !== undefined)?.metricsPort ?? 0);
      return metricsPort > 0;
    }, 'the consumer to serve metrics');
    const scrape = async () => (await call(metricsPort, '/metrics')).body;
    const instance = { service: 'hello-service', instance: `127.0.0.1:${provider.port}` };
    await until(
      async () => (promSample(await scrape(), 'lossless_client_instance_weight', instance) ?? 0) > 0,
      'the instance in the client metrics',
    );
    expect(promSample(await scrape(), 'lossless_client_circuit_state', instance)).toBe(0);

    provider.child.kill('SIGTERM');
    await provider.exited;
    const text = await scrape();
    expect(promSample(text, 'lossless_client_marked_responses_total', instance)).toBeGreaterThanOrEqual(1);
    // the instance leaves rotation by the first marked answer (an ejection, which asks the registry
    // again) or by the registry's own update, whichever comes first: never both
    const ejections = promSample(text, 'lossless_client_ejections_total', { service: 'hello-service' }) ?? 0;
    expect(ejections).toBeLessThanOrEqual(1);
    if (ejections === 1)
      expect(
        promSample(text, 'lossless_client_registry_refreshes_total', { service: 'hello-service', reason: 'marker' }),
      ).toBeGreaterThanOrEqual(1);
    // the ejected instance is no longer in rotation
    expect(promSample(text, 'lossless_client_instance_weight', instance)).toBeUndefined();
  });
});
