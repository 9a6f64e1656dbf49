// Three providers behind @lossless/client under steady load; one drains and restarts: no request
// fails, and the drained instance gets no new request once the client has seen its marker.

import diagnosticsChannel from 'node:diagnostics_channel';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createClient, type LosslessClient } from '@lossless/client';
import { createProvider, type Provider } from '@lossless/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempRegistry, until } from '../support.js';

interface Running {
  provider: Provider;
  server: Server;
  origin: string;
}

describe('client with three providers, one drains and restarts', () => {
  let registry: Awaited<ReturnType<typeof tempRegistry>>;
  let client: LosslessClient | undefined;
  const running: Running[] = [];

  beforeEach(async () => {
    registry = await tempRegistry();
  });
  afterEach(async () => {
    await client?.close();
    for (const r of running.splice(0)) if (r.provider.state !== 'stopped') await r.provider.destroy();
    await registry.remove();
  });

  async function startProvider(port = 0): Promise<Running> {
    const server = createServer((req, res) => {
      // a realistic mix: mostly fast, some slower
      const ms = Math.random() < 0.05 ? 150 : 2;
      setTimeout(() => res.end(req.method === 'POST' ? 'created' : 'ok'), ms);
    });
    server.listen(port, '127.0.0.1');
    const provider = createProvider({
      service: 'orders',
      server,
      registry: registry.url,
      admin: false,
      signals: false,
      exit: false,
      drain: { quietWindowMs: 300, maxDrainMs: 5000 },
    });
    await provider.start();
    const r = { provider, server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
    running.push(r);
    return r;
  }

  it('loses nothing, and sends nothing new to the drained instance after its first marked response', async () => {
    const [first] = [await startProvider(), await startProvider(), await startProvider()];
    client = createClient({ registry: `${registry.url}?pollMs=200` });
    const c = client;

    // every request the client creates, with the origin it went to
    const created: { origin: string; at: number }[] = [];
    const onCreate = (message: unknown): void => {
      const { request } = message as { request: { origin: string } };
      created.push({ origin: String(request.origin), at: performance.now() });
    };
    diagnosticsChannel.subscribe('undici:request:create', onCreate);

    let firstMarkedAt = Number.POSITIVE_INFINITY;
    const failures: string[] = [];
    const statuses = new Map<number, number>();
    let sent = 0;
    let stop = false;
    const loops = Array.from({ length: 8 }, async (_, i) => {
      while (!stop) {
        sent++;
        const post = (sent + i) % 5 === 0;
        try {
          const res = await c.request('http://orders/api', post ? { method: 'POST', body: '{}' } : {});
          await res.body.text();
          statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
          if (res.headers['x-lossless-offline'] !== undefined)
            firstMarkedAt = Math.min(firstMarkedAt, performance.now());
        } catch (error) {
          failures.push(`${(error as { code?: string }).code}: ${(error as Error).message}`);
        }
      }
    });
    try {
      await until(() => sent > 300, 'steady load');
      const drainedOrigin = first!.origin;
      const port = Number(new URL(drainedOrigin).port);
      const summary = await first!.provider.drain();
      expect(summary.outcome).toBe('idle');
      // restart on the same port: a new registration
      const restartCalledAt = performance.now();
      await startProvider(port);
      const sentAtRestart = sent;
      await until(() => sent > sentAtRestart + 300, 'load after the restart');
      // the restarted instance gets traffic again
      await until(
        () =>
          created.some((r) => r.origin === drainedOrigin && r.at > firstMarkedAt + 1) || sent > sentAtRestart + 5000,
        'the restarted instance to get traffic',
      );
      stop = true;
      await Promise.all(loops);

      expect(failures).toEqual([]);
      expect([...statuses.keys()].every((s) => s === 200)).toBe(true);
      expect(firstMarkedAt).toBeLessThan(Number.POSITIVE_INFINITY);
      // between the first marked response and the restart, nothing new went to the drained instance
      const gap = created.filter((r) => r.origin === drainedOrigin && r.at > firstMarkedAt && r.at < restartCalledAt);
      expect(gap).toEqual([]);
      expect(created.filter((r) => r.origin === drainedOrigin && r.at < firstMarkedAt).length).toBeGreaterThan(0);
      expect(created.some((r) => r.origin === drainedOrigin && r.at > restartCalledAt)).toBe(true);
    } finally {
      stop = true;
      diagnosticsChannel.unsubscribe('undici:request:create', onCreate);
    }
  });
});
