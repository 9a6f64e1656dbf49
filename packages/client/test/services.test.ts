// Service names with upper case (common among Java services): a URL's host name is lower case, so
// such a service is found once it is listed in `services`, and looked up by its name as listed.

import { afterEach, describe, expect, it } from 'vitest';
import { createClient, type LosslessClient } from '../src/client.js';
import { instance, startServer, stopServer, TestRegistry, type TestServer } from './helpers.js';

const servers: TestServer[] = [];
const clients: LosslessClient[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) await client.close();
  for (const server of servers.splice(0)) await stopServer(server);
});

describe('a service registered with upper case', () => {
  it('is called by its lower-case host name once listed in services, and looked up as listed', async () => {
    const server = await startServer((_req, res) => res.end('camel'));
    servers.push(server);
    const registry = new TestRegistry([instance('OrderService', 'a', { port: server.port })]);
    const client = createClient({ registry, services: ['OrderService'] });
    clients.push(client);
    const res = await client.request('http://orderservice/');
    expect(await res.body.text()).toBe('camel');
    const again = await client.request('http://OrderService/');
    expect(await again.body.text()).toBe('camel');
    expect(client.service('OrderService').endpoints).toHaveLength(1);
  });

  it('is not found by a client that does not list it (the registry is asked for "orderservice")', async () => {
    const registry = new TestRegistry([instance('OrderService', 'a', { port: 1 })]);
    const client = createClient({ registry });
    clients.push(client);
    await expect(client.request('http://OrderService/')).rejects.toMatchObject({
      code: 'LOSSLESS_ERR_NO_INSTANCE',
      service: 'orderservice',
    });
  });
});
