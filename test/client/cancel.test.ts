// What the circuit breaker makes of requests that end without an answer: a caller that gives up (an
// AbortSignal: a cancelled or hedged request) or whose own callback throws says nothing of the
// instance, and must not open the circuit of a healthy one; the client's overall timeout says the
// instance did not answer in time.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createClient, type LosslessClient } from '@lossless/client';
import type { Dispatcher } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';

const servers: Server[] = [];
const clients: LosslessClient[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) await client.destroy();
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    server.close();
  }
});

/** A provider that answers after `delayMs`, or never. */
async function provider(delayMs: number | 'never'): Promise<string> {
  const server = createServer((_req, res) => {
    if (delayMs !== 'never') setTimeout(() => res.end('ok'), delayMs);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/**
 * Dispatches through the client with a handler of the caller's (or an interceptor composed above the
 * client) that throws while it reads the response: undici ends the request with that exception.
 */
function dispatchThrowing(
  client: LosslessClient,
  where: 'start' | 'data' | 'start, nothing',
  thrown: unknown[],
): Promise<void> {
  return new Promise<void>((resolve) => {
    const handler: Dispatcher.DispatchHandler = {
      onResponseStart() {
        if (where === 'start') throw new Error('caller bug in onResponseStart');
        if (where === 'start, nothing') throw undefined;
      },
      onResponseData() {
        if (where === 'data') throw new Error('caller bug in onResponseData');
      },
      onResponseEnd: () => resolve(),
      onResponseError: (_controller, error) => {
        thrown.push(error.message);
        resolve();
      },
    };
    client.dispatcher.dispatch({ origin: 'http://svc', path: '/', method: 'GET' }, handler);
  });
}

describe('a request that ends without an answer', () => {
  it('given up by its caller leaves the circuit of a healthy instance closed', async () => {
    const host = await provider(100);
    const client = createClient({ registry: `static://${host}`, breaker: { volumeThreshold: 5 } });
    clients.push(client);
    let gaveUp = 0;
    for (let i = 0; i < 20; i++) {
      const signal = AbortSignal.timeout(10);
      await client.request('http://svc/', { signal }).catch((error: Error) => {
        expect(error.name).toBe('TimeoutError');
        gaveUp++;
      });
    }
    expect(gaveUp).toBe(20);
    expect(client.circuit(`http://${host}`)).toBe('closed');
    const { statusCode, body } = await client.request('http://svc/');
    expect([statusCode, await body.text()]).toEqual([200, 'ok']);
  });

  it("ended by the caller's own exception leaves the circuit of a healthy instance closed", async () => {
    const host = await provider(0);
    const client = createClient({ registry: `static://${host}`, breaker: { volumeThreshold: 5 } });
    clients.push(client);
    const thrown: unknown[] = [];
    for (let i = 0; i < 10; i++) await dispatchThrowing(client, i % 2 === 0 ? 'start' : 'data', thrown);
    expect(thrown).toEqual(
      Array.from({ length: 10 }, (_, i) => `caller bug in ${i % 2 === 0 ? 'onResponseStart' : 'onResponseData'}`),
    );
    // `throw undefined`: undici ends the request with an abort error of its own instead
    for (let i = 0; i < 6; i++) await dispatchThrowing(client, 'start, nothing', []);
    expect(client.circuit(`http://${host}`)).toBe('closed');
    const { statusCode, body } = await client.request('http://svc/');
    expect([statusCode, await body.text()]).toEqual([200, 'ok']);

    // the status an instance answered with still counts: its 500s open the circuit, callers' bugs or not
    const failing = createServer((_req, res) => {
      res.statusCode = 500;
      res.end('down');
    });
    servers.push(failing);
    await new Promise<void>((resolve) => failing.listen(0, '127.0.0.1', resolve));
    const down = `127.0.0.1:${(failing.address() as AddressInfo).port}`;
    const other = createClient({ registry: `static://${down}`, breaker: { volumeThreshold: 5 } });
    clients.push(other);
    for (let i = 0; i < 5; i++) await dispatchThrowing(other, 'start', []);
    expect(other.circuit(`http://${down}`)).toBe('open');
  });

  it("that outlives the client's timeoutMs counts against the instance and opens its circuit", async () => {
    const host = await provider('never');
    const client = createClient({
      registry: `static://${host}`,
      timeoutMs: 30,
      breaker: { volumeThreshold: 5, connectionFailures: 0 },
    });
    clients.push(client);
    const codes: string[] = [];
    for (let i = 0; i < 6; i++)
      await client.request('http://svc/').catch((error: Error & { code?: string }) => codes.push(String(error.code)));
    expect(codes.slice(0, 5)).toEqual(Array(5).fill('LOSSLESS_ERR_TIMEOUT'));
    expect(client.circuit(`http://${host}`)).toBe('open');
  });
});
