import { Agent, request, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { InFlightTracker } from '../../src/tracking/in-flight.js';
import { get, listen, until } from '../helpers.js';

const marker = { header: 'x-lossless-offline', value: 'draining' };

describe('InFlightTracker', () => {
  let server: Server | undefined;
  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
    server = undefined;
  });

  it('counts a request from arrival until its response finished', async () => {
    const started = listen();
    const { server: s, port } = await started;
    server = s;
    const tracker = new InFlightTracker();
    tracker.attach(s);
    const pending = get(port, '/?ms=200');
    await until(() => tracker.size === 1, 'the request to be counted');
    expect(tracker.snapshot()).toEqual([{ method: 'GET', url: '/?ms=200', ageMs: expect.any(Number) }]);
    const reply = await pending;
    expect(reply.status).toBe(200);
    await until(() => tracker.size === 0, 'the request to be released');
    expect(tracker.total).toBe(1);
  });

  it('never leaks the counter when the caller aborts', async () => {
    const { server: s, port } = await listen(() => {
      // never answers: only the socket closing can end these requests
    });
    server = s;
    const tracker = new InFlightTracker();
    tracker.attach(s);
    let idle = 0;
    tracker.onIdle = () => idle++;
    const requests = Array.from({ length: 20 }, () => {
      const req = request({ host: '127.0.0.1', port, path: '/hang', agent: false });
      req.on('error', () => {});
      req.end();
      return req;
    });
    await until(() => tracker.size === 20, 'all 20 requests to arrive');
    for (const req of requests) req.destroy();
    await until(() => tracker.size === 0, 'the aborted requests to be released');
    expect(idle).toBe(1);
  });

  it('marks responses in flight and every later response once marking starts', async () => {
    const { server: s, port } = await listen();
    server = s;
    const tracker = new InFlightTracker();
    tracker.attach(s);
    const agent = new Agent({ keepAlive: true, maxSockets: 4 });
    const before = await get(port, '/', agent);
    expect(before.headers['x-lossless-offline']).toBeUndefined();
    expect(before.headers.connection).toBe('keep-alive');
    const inFlight = get(port, '/?ms=150', agent);
    await until(() => tracker.size === 1, 'the slow request to arrive');
    tracker.startMarking(marker);
    const after = await get(port, '/', agent);
    const slow = await inFlight;
    for (const reply of [slow, after]) {
      expect(reply.status).toBe(200);
      expect(reply.headers['x-lossless-offline']).toBe('draining');
      expect(reply.headers.connection).toBe('close');
    }
    expect(tracker.arrivedWhileMarking).toBe(1);
    agent.destroy();
  });

  it('marks before any handler runs, even one that answers synchronously', async () => {
    const { server: s, port } = await listen((_req, res) => res.end('sync'));
    server = s;
    const tracker = new InFlightTracker();
    tracker.attach(s);
    tracker.startMarking(marker);
    const reply = await get(port, '/');
    expect(reply.headers['x-lossless-offline']).toBe('draining');
  });

  it('skips ignored requests entirely', async () => {
    const { server: s, port } = await listen();
    server = s;
    const tracker = new InFlightTracker();
    tracker.ignore = (req) => req.url === '/readyz';
    tracker.attach(s);
    await get(port, '/readyz');
    expect(tracker.total).toBe(0);
    expect(tracker.lastArrival).toBe(Number.NEGATIVE_INFINITY);
    await get(port, '/work');
    expect(tracker.total).toBe(1);
  });

  it('stops tracking once detached', async () => {
    const { server: s, port } = await listen();
    server = s;
    const tracker = new InFlightTracker();
    const detach = tracker.attach(s);
    await get(port, '/');
    detach();
    await get(port, '/');
    expect(tracker.total).toBe(1);
  });
});
