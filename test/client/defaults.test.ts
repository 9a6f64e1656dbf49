// The client's defaults as a user meets them: a provider and a client given no registry find each
// other, and a client installed as the global dispatcher leaves every call that does not name a
// service alone (IP addresses, ports, dotted host names).

import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient, type LosslessClient, serviceOfOrigin } from '@lossless/client';
import { createProvider, defaultRegistryUrl, type Provider, silentLogger } from '@lossless/core';
import { type Dispatcher, getGlobalDispatcher, request, setGlobalDispatcher } from 'undici';
import { afterEach, describe, expect, it, vi } from 'vitest';

function listen(answer: string): Promise<Server> {
  const server = createServer((_req, res) => res.end(answer));
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}
const portOf = (server: Server): number => (server.address() as AddressInfo).port;

const servers: Server[] = [];
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  for (const server of servers.splice(0)) server.close();
  vi.unstubAllEnvs();
});

describe('a provider and a client given no registry', () => {
  it('find each other through the default file registry', async () => {
    // the default registry lives under os.tmpdir(), which follows TMPDIR: a directory of this test's own
    const dir = await mkdtemp(join(tmpdir(), 'lossless-defaults-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    vi.stubEnv('TMPDIR', dir);
    vi.stubEnv('LOSSLESS_REGISTRY', undefined);
    expect(defaultRegistryUrl()).toContain(dir);

    const server = await listen('from the provider');
    servers.push(server);
    const provider: Provider = createProvider({ service: 'defaults-svc', server, admin: false, signals: false });
    cleanups.push(() => provider.destroy());
    await provider.start();

    const client = createClient({ logger: silentLogger });
    cleanups.push(() => client.close());
    const res = await client.request('http://defaults-svc/');
    expect(res.statusCode).toBe(200);
    expect(await res.body.text()).toBe('from the provider');
  });

  it('LOSSLESS_REGISTRY comes before the default, for the client as for the provider', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lossless-env-registry-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const env = { LOSSLESS_REGISTRY: `file://${dir}` };
    const server = await listen('through LOSSLESS_REGISTRY');
    servers.push(server);
    const provider = createProvider({ service: 'env-svc', server, admin: false, signals: false, env });
    cleanups.push(() => provider.destroy());
    await provider.start();
    const client = createClient({ env, logger: silentLogger });
    cleanups.push(() => client.close());
    const res = await client.request('http://env-svc/');
    expect(await res.body.text()).toBe('through LOSSLESS_REGISTRY');
  });
});

/** A dotted name that /etc/hosts maps to a loopback address, if the machine has one (read, not looked up). */
function dottedLoopbackName(): string | undefined {
  let hosts: string;
  try {
    hosts = readFileSync('/etc/hosts', 'utf8');
  } catch {
    return undefined;
  }
  for (const line of hosts.split('\n')) {
    const [address, ...names] = line.replace(/#.*/, '').trim().split(/\s+/);
    if (address === undefined || !/^127\./.test(address)) continue;
    const dotted = names.find((name) => name.includes('.'));
    if (dotted !== undefined) return dotted;
  }
  return undefined;
}

describe('the client as the global dispatcher', () => {
  let client: LosslessClient;
  let previous: Dispatcher;

  async function install(): Promise<void> {
    client = createClient({ registry: 'static://127.0.0.1:1', logger: silentLogger });
    previous = getGlobalDispatcher();
    setGlobalDispatcher(client.dispatcher);
    cleanups.push(async () => {
      setGlobalDispatcher(previous);
      await client.close();
    });
  }

  it('leaves a call to an IP address and port alone', async () => {
    const server = await listen('plain network');
    servers.push(server);
    await install();
    const res = await request(`http://127.0.0.1:${portOf(server)}/`);
    expect(await res.body.text()).toBe('plain network');
    const local = await request(`http://localhost:${portOf(server)}/`);
    expect(await local.body.text()).toBe('plain network');
  });

  it('treats a dotted host name as somebody else’s server unless it is listed in services', () => {
    for (const origin of ['http://api.example.com', 'https://registry.npmjs.org', 'http://orders.default.svc'])
      expect(serviceOfOrigin(origin, undefined), origin).toBeUndefined();
    expect(serviceOfOrigin('http://orders', undefined)).toBe('orders');
    expect(serviceOfOrigin('http://ORDERS', undefined)).toBe('orders');
    for (const origin of ['http://orders:8080', 'http://localhost', 'http://127.0.0.1', 'http://[::1]'])
      expect(serviceOfOrigin(origin, undefined), origin).toBeUndefined();
    const listed = new Set(['orders.default.svc']);
    expect(serviceOfOrigin('http://orders.default.svc', listed)).toBe('orders.default.svc');
    expect(serviceOfOrigin('http://orders', listed)).toBeUndefined();
  });

  const dotted = dottedLoopbackName();
  it.runIf(dotted !== undefined)(
    'sends a port-less call to a dotted name that resolves to loopback to the network',
    async (ctx) => {
      // port-less, so that only the dot tells it from a service: port 80, where this process may bind it
      const server = createServer((_req, res) => res.end('dotted name'));
      const bound = await new Promise<boolean>((resolve) => {
        server.once('error', () => resolve(false));
        server.listen(80, '127.0.0.1', () => resolve(true));
      });
      if (!bound) ctx.skip();
      servers.push(server);
      await install();
      const res = await request(`http://${dotted}/`);
      expect(await res.body.text()).toBe('dotted name');
    },
  );

  it('still calls a service by its name through the registry', async () => {
    const server = await listen('the service');
    servers.push(server);
    client = createClient({ registry: `static://127.0.0.1:${portOf(server)}`, logger: silentLogger });
    previous = getGlobalDispatcher();
    setGlobalDispatcher(client.dispatcher);
    cleanups.push(async () => {
      setGlobalDispatcher(previous);
      await client.close();
    });
    const res = await request('http://any-service/');
    expect(await res.body.text()).toBe('the service');
  });
});
