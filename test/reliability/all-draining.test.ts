// Every instance of a service drains at once (a scale to zero, a Recreate deployment, every pod
// deleted): three express providers get SIGTERM together under load. They deregister at once, but
// each serves through its quiet window; the client must keep using them as a last resort (as
// kube-proxy uses serving-and-terminating endpoints when no ready one is left) instead of failing
// requests locally with LOSSLESS_ERR_NO_INSTANCE while they still serve.

import { createClient, type LosslessClient } from '@lossless/client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type RunningExample, startExample } from '../process/example.js';
import { tempRegistry, until } from '../support.js';
import { failures, steadyLoad } from './load.js';

const SERVICE = 'hello-service';

describe('every instance draining at once', () => {
  let registry: Awaited<ReturnType<typeof tempRegistry>>;
  let client: LosslessClient | undefined;
  let providers: RunningExample[] = [];

  beforeEach(async () => {
    registry = await tempRegistry();
  });
  afterEach(async () => {
    await client?.destroy();
    client = undefined;
    for (const p of providers) p.child.kill('SIGKILL');
    await Promise.all(providers.map((p) => p.exited));
    providers = [];
    await registry.remove();
  });

  it('serves every request through the drains until the providers have left', async ({ annotate }) => {
    providers = await Promise.all(
      [0, 1, 2].map(() =>
        startExample([
          '--registry',
          registry.url,
          '--service',
          SERVICE,
          '--warmup-ms',
          '0',
          '--quiet-window-ms',
          '1500',
        ]),
      ),
    );
    const c = createClient({ registry: registry.url, services: [SERVICE] });
    client = c;
    await c.service(SERVICE).ready;
    await until(() => c.service(SERVICE).endpoints.length === 3, 'three instances');

    const load = steadyLoad({ ratePerSec: 100, maxInFlight: 20, maxRequests: 600 }, async () => {
      const res = await c.request(`http://${SERVICE}/hello`);
      await res.body.text();
      return res.statusCode;
    });
    await until(() => load.sent() >= 50, 'some steady load first');
    const sigtermAt = performance.now();
    for (const p of providers) p.child.kill('SIGTERM');
    // the requests sent while the three drain (their quiet window keeps them serving while callers
    // still arrive): all must be answered
    const exits = await Promise.all(providers.map((p) => p.exited));
    const lastExitAt = performance.now();
    const outcomes = await load.stop();
    const during = outcomes.filter((o) => o.startedAt >= sigtermAt && o.endedAt <= lastExitAt);
    const failed = failures(during);
    await annotate(
      `${during.length} requests while all three drained (${Math.round(lastExitAt - sigtermAt)} ms), ${failed.length} failed`,
      'measured',
    );
    expect(exits.map((e) => e.code)).toEqual([0, 0, 0]);
    expect(during.length).toBeGreaterThan(20);
    expect(failed).toEqual([]);
  });
});
