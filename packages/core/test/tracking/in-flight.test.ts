import { Agent, request, type Server } from 'node:http';
import { connect } from 'node:net';
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

  describe('by connection until something waits, then by response', () => {
    it('counts requests in flight on keep-alive connections, one after another on the same socket', async () => {
      const { server: s, port } = await listen();
      server = s;
      const tracker = new InFlightTracker();
      tracker.attach(s);
      const agent = new Agent({ keepAlive: true, maxSockets: 2 });
      await Promise.all([get(port, '/', agent), get(port, '/', agent)]);
      expect(tracker.size).toBe(0);
      // the same two sockets carry the next requests
      const slow = [get(port, '/?ms=300', agent), get(port, '/?ms=300', agent)];
      await until(() => tracker.size === 2, 'two in flight');
      expect(tracker.snapshot().map((r) => r.url)).toEqual(['/?ms=300', '/?ms=300']);
      expect(tracker.oldestAgeMs()).toBeGreaterThanOrEqual(0);
      await Promise.all(slow);
      await until(() => tracker.size === 0, 'none in flight');
      expect(tracker.total).toBe(4);
      agent.destroy();
    });

    it('a request in flight when counting switches is released by its own close, and onIdle fires', async () => {
      const { server: s, port } = await listen();
      server = s;
      const tracker = new InFlightTracker();
      tracker.attach(s);
      const slow = get(port, '/?ms=200');
      await until(() => tracker.size === 1, 'the slow request');
      let idle = 0;
      tracker.onIdle = () => idle++;
      expect(tracker.size).toBe(1);
      await slow;
      await until(() => idle === 1, 'onIdle');
      expect(tracker.size).toBe(0);
    });

    it('does not count an ignored request, and counts the next one on the same socket', async () => {
      const { server: s, port } = await listen();
      server = s;
      const tracker = new InFlightTracker();
      tracker.ignore = (req) => req.url?.startsWith('/readyz') === true;
      tracker.attach(s);
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      const probe = get(port, '/readyz?ms=200', agent);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(tracker.size).toBe(0);
      await probe;
      const work = get(port, '/work?ms=200', agent);
      await until(() => tracker.size === 1, 'the request after the probe');
      await work;
      agent.destroy();
    });

    it('two trackers on one server count independently', async () => {
      const { server: s, port } = await listen();
      server = s;
      const a = new InFlightTracker();
      const b = new InFlightTracker();
      a.attach(s);
      b.attach(s);
      const slow = get(port, '/?ms=200');
      await until(() => a.size === 1 && b.size === 1, 'both to count it');
      a.startMarking(marker);
      expect(a.size).toBe(1);
      expect(b.size).toBe(1);
      expect((await slow).headers['x-lossless-offline']).toBe('draining');
      await until(() => a.size === 0 && b.size === 0, 'both to release it');
    });
  });

  describe('HTTP/1.1 pipelining', () => {
    /** Writes two GETs back to back on one connection; resolves with the socket and what it received. */
    function pipeline(port: number, first: string, second: string) {
      const socket = connect(port, '127.0.0.1');
      let received = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => {
        received += chunk;
      });
      socket.on('error', () => {});
      socket.write(`GET ${first} HTTP/1.1\r\nHost: x\r\n\r\nGET ${second} HTTP/1.1\r\nHost: x\r\n\r\n`);
      return { socket, received: () => received };
    }

    it('counts a response queued behind another on the same connection', async () => {
      const { server: s, port } = await listen();
      server = s;
      const tracker = new InFlightTracker();
      tracker.attach(s);
      const p = pipeline(port, '/?ms=200', '/?ms=100');
      await until(() => tracker.total === 2, 'both requests to arrive');
      expect(tracker.size).toBe(2);
      expect(tracker.snapshot().map((r) => r.url)).toEqual(['/?ms=200', '/?ms=100']);
      await until(() => (p.received().match(/HTTP\/1\.1 200/g) ?? []).length === 2, 'both answers');
      await until(() => tracker.size === 0, 'none in flight');
      p.socket.destroy();
    });

    it('at the start of a drain both are followed and answered; only the last answer closes the connection', async () => {
      const { server: s, port } = await listen();
      server = s;
      const tracker = new InFlightTracker();
      tracker.attach(s);
      const p = pipeline(port, '/?ms=200', '/?ms=100');
      await until(() => tracker.total === 2, 'both requests to arrive');
      tracker.startMarking(marker);
      expect(tracker.size).toBe(2);
      // Connection: close on the first answer would make Node drop the second, already handled
      await until(() => (p.received().match(/HTTP\/1\.1 200/g) ?? []).length === 2, 'both answers');
      const [first, second] = p.received().split(/(?=HTTP\/1\.1 )/);
      expect(first).toMatch(/x-lossless-offline: draining/i);
      expect(first).not.toMatch(/connection: close/i);
      expect(second).toMatch(/x-lossless-offline: draining/i);
      expect(second).toMatch(/connection: close/i);
      await until(() => tracker.size === 0, 'none in flight');
      p.socket.destroy();
    });

    it('while marking, a request pipelined behind another takes the close from the one before it', async () => {
      const { server: s, port } = await listen();
      server = s;
      const tracker = new InFlightTracker();
      tracker.attach(s);
      tracker.startMarking(marker);
      const p = pipeline(port, '/?ms=200', '/?ms=50');
      await until(() => (p.received().match(/HTTP\/1\.1 200/g) ?? []).length === 2, 'both answers');
      const [first, second] = p.received().split(/(?=HTTP\/1\.1 )/);
      expect(first).not.toMatch(/connection: close/i);
      expect(second).toMatch(/connection: close/i);
      expect(tracker.arrivedWhileMarking).toBe(2);
      p.socket.destroy();
    });

    it('forgets a queued response whose connection closed (it never emits close), before and during a drain', async () => {
      const { server: s, port } = await listen(() => {
        // never answers
      });
      server = s;
      for (const exact of [false, true]) {
        const tracker = new InFlightTracker();
        const detach = tracker.attach(s);
        let idle = 0;
        const p = pipeline(port, '/hang', '/queued');
        await until(() => tracker.total === 2, 'both requests to arrive');
        if (exact) tracker.onIdle = () => idle++;
        expect(tracker.size).toBe(2);
        p.socket.destroy();
        await until(() => tracker.size === 0, 'both to be released');
        if (exact) expect(idle).toBe(1);
        detach();
      }
    });
  });
});
