// What mutation testing found unguarded: the read-back after registering and after deregistering,
// the coded log line and event of a drain that cuts requests, and /readyz while draining. Each test
// here fails when that piece of the provider is skipped.

import type { Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import type { LosslessError } from '../../src/errors.js';
import type { Logger } from '../../src/logger.js';
import type { ProviderOptions } from '../../src/options.js';
import { Provider } from '../../src/provider.js';
import type { Instance } from '../../src/registry/types.js';
import { get, listen, MemoryRegistry, until } from '../helpers.js';

/** A registry that applies registrations and deregistrations only after `lagMs`, as a replicated one may. */
class LaggingRegistry extends MemoryRegistry {
  constructor(public lagMs: number) {
    super();
  }
  override async register(instance: Instance): Promise<void> {
    this.calls.push(`register ${instance.id}`);
    setTimeout(() => this.instances.set(instance.id, instance), this.lagMs);
  }
  override async deregister(instance: Instance): Promise<void> {
    this.calls.push(`deregister ${instance.id}`);
    setTimeout(() => this.instances.delete(instance.id), this.lagMs);
  }
}

function recorder(): Logger & { lines: { level: string; obj: Record<string, unknown>; msg?: string }[] } {
  const lines: { level: string; obj: Record<string, unknown>; msg?: string }[] = [];
  const at = (level: string) => (obj: object, msg?: string) =>
    lines.push({ level, obj: obj as Record<string, unknown>, msg });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

const live: Provider[] = [];
const servers: Server[] = [];
afterEach(async () => {
  for (const p of live.splice(0)) if (p.state !== 'stopped') await p.destroy().catch(() => {});
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    s.close();
  }
});

async function provider(registry: MemoryRegistry, options: Partial<ProviderOptions> = {}) {
  const { server, port } = await listen();
  servers.push(server);
  const p = new Provider({
    service: 'orders',
    registry,
    server,
    admin: { port: 0 },
    signals: false,
    exit: false,
    drain: { quietWindowMs: 50, maxDrainMs: 5000 },
    registration: { timeoutMs: 2000, confirmTimeoutMs: 2000, retryMinDelayMs: 10, retryMaxDelayMs: 20 },
    ...options,
  });
  live.push(p);
  return { p, port, admin: () => p.adminAddress?.port ?? 0 };
}

describe('the read-back', () => {
  it('after registering: not ready until the registry lists the instance', async () => {
    const registry = new LaggingRegistry(400);
    const { p, admin } = await provider(registry);
    const started = p.start();
    await until(() => registry.calls.length === 1 && admin() > 0, 'the register call');
    const probe = await get(admin(), '/readyz');
    expect(probe.status, 'registered but not listed yet').toBe(503);
    expect(p.state).toBe('registering');
    await started;
    expect(registry.instances.has(p.instance?.id as string)).toBe(true);
    expect((await get(admin(), '/readyz')).status).toBe(200);
  });

  it('after deregistering: the quiet window starts only once the registry no longer lists it', async () => {
    const registry = new LaggingRegistry(0);
    const { p } = await provider(registry, { drain: { quietWindowMs: 50, maxDrainMs: 5000 } });
    await p.start();
    registry.lagMs = 400; // from now on the registry takes 400 ms to apply a change
    const t0 = performance.now();
    const summary = await p.drain();
    const took = performance.now() - t0;
    expect(summary.registry).toBe('removed');
    expect(registry.instances.size).toBe(0);
    // 400 ms until the registry stops listing it, then the 50 ms quiet window
    expect(took).toBeGreaterThanOrEqual(440);
  });
});

describe('a drain that cuts requests', () => {
  it('logs LOSSLESS_ERR_DRAIN_TIMEOUT with the requests, and emits it as an error event', async () => {
    const logger = recorder();
    const { p, port } = await provider(new MemoryRegistry(), {
      logger,
      drain: { quietWindowMs: 20, maxDrainMs: 200 },
    });
    await p.start();
    const errors: LosslessError[] = [];
    p.on('error', (e) => errors.push(e));
    const hung = get(port, '/?ms=5000').catch((error: Error) => error);
    await until(() => p.inFlight === 1, 'the long request');
    await p.drain();
    await hung;
    expect(errors.map((e) => e.code)).toContain('LOSSLESS_ERR_DRAIN_TIMEOUT');
    const line = logger.lines.find((l) => l.level === 'error' && l.obj.code === 'LOSSLESS_ERR_DRAIN_TIMEOUT');
    expect(line?.obj.requests).toEqual([{ method: 'GET', url: '/?ms=5000', ageMs: expect.any(Number) }]);
    expect(logger.lines.some((l) => l.level === 'warn' && l.obj.url === '/?ms=5000')).toBe(true);
  });
});

describe('/readyz while draining', () => {
  it('answers 503 from the drain start to the end, whatever else happens', async () => {
    const { p, port, admin } = await provider(new MemoryRegistry(), {
      drain: { quietWindowMs: 300, maxDrainMs: 5000 },
    });
    await p.start();
    expect((await get(admin(), '/readyz')).status).toBe(200);
    const slow = get(port, '/?ms=200');
    await until(() => p.inFlight === 1, 'the slow request');
    const drained = p.drain();
    const seen: number[] = [];
    while (p.state === 'draining') {
      // a probe sent as the drain ends may find the admin port closing under it (a connection still
      // in the listen backlog is reset): an error then is the end, one while draining a failure
      const status = await get(admin(), '/readyz').then(
        (reply) => reply.status,
        (error: unknown) => {
          if (p.state === 'draining') throw error;
          return undefined;
        },
      );
      if (status !== undefined) seen.push(status);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await slow;
    await drained;
    expect(seen.length).toBeGreaterThan(5);
    expect(new Set(seen)).toEqual(new Set([503]));
  });
});
