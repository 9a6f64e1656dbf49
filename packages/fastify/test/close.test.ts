// fastify's own close (what close-with-grace and fastify-cli call) goes through the drain: out of the
// registry first, requests arriving meanwhile are served with the marker (not fastify's 503), the
// request in flight is answered, and the provider ends stopped, deregistered, without exiting the process.

import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { FileRegistry } from '@lossless/core';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { lossless, losslessPlugin } from '../src/index.js';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function get(port: number, path: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

let dir: string;
let reader: FileRegistry;
const apps: FastifyInstance[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lossless-fastify-'));
  reader = new FileRegistry({ dir });
});
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close().catch(() => {});
  await reader.close();
  await rm(dir, { recursive: true, force: true });
});

function app(): FastifyInstance {
  const a = Fastify({ logger: false });
  a.get('/work', async (req) => {
    const ms = Number((req.query as { ms?: string }).ms ?? 0);
    await new Promise((resolve) => setTimeout(resolve, ms));
    return { ms };
  });
  apps.push(a);
  return a;
}

const options = (exits: number[]) => ({
  service: 'orders',
  registry: pathToFileURL(dir).href,
  admin: false as const,
  signals: false as const,
  exit: (code: number) => exits.push(code),
  drain: { quietWindowMs: 300 },
});

const listed = async () => (await reader.list('orders')).length;

describe('app.close() drains', () => {
  it('through lossless(app): deregisters first, serves (marked) what arrives, answers what is in flight, no exit', async () => {
    const exits: number[] = [];
    const a = app();
    const provider = lossless(a, options(exits));
    const { port } = await provider.listen({ port: 0, host: '127.0.0.1' });
    expect(await listed()).toBe(1);
    const slow = get(port, '/work?ms=400');
    await until(() => provider.inFlight === 1, 'the slow request');

    const closed = a.close();
    await until(async () => (await listed()) === 0, 'the registry entry to go, while the server serves');
    const during = await get(port, '/work');
    expect(during.status).toBe(200);
    expect(during.headers['x-lossless-offline']).toBe('draining');
    const first = await slow;
    expect(first.status).toBe(200);
    expect(first.headers['x-lossless-offline']).toBe('draining');
    await closed;
    expect(provider.state).toBe('stopped');
    expect(a.server.listening).toBe(false);
    expect(exits).toEqual([]);
  });

  it('as a plugin: app.lossless starts once the app listens, and app.close() drains it', async () => {
    const exits: number[] = [];
    const a = app();
    await a.register(losslessPlugin, options(exits));
    await a.listen({ port: 0, host: '127.0.0.1' });
    await until(() => a.lossless.state === 'ready', 'ready');
    expect(await listed()).toBe(1);
    const port = (a.server.address() as AddressInfo).port;
    expect((await get(port, '/work')).status).toBe(200);
    await a.close();
    expect(a.lossless.state).toBe('stopped');
    expect(await listed()).toBe(0);
    expect(exits).toEqual([]);
  });

  it('with a callback, and on an app that never listened (nothing to drain: no quiet window)', async () => {
    const a = app();
    const provider = lossless(a, options([]));
    await new Promise<void>((resolve) => a.close(() => resolve()));
    // closed without a drain (a drain would wait its quiet window first)
    expect(provider.state).toBe('starting');
  });

  it('a drain started by a signal or drain() closes fastify once, and app.close() joins it', async () => {
    const exits: number[] = [];
    const a = app();
    const provider = lossless(a, options(exits));
    await provider.listen({ port: 0, host: '127.0.0.1' });
    const drained = provider.drain();
    const closed = a.close();
    const summary = await drained;
    await closed;
    expect(summary.outcome).toBe('idle');
    expect(exits).toEqual([0]);
    expect(a.server.listening).toBe(false);
  });
});
