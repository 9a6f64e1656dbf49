// Long-lived responses (server-sent events) during a drain: declared with provider.stream() they do
// not hold the drain open and are ended cleanly by the application's hook; undeclared they count as
// in flight until drain.maxDrainMs and are cut.

import { type IncomingMessage, request, type Server, type ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import type { LosslessError } from '../src/errors.js';
import { Provider } from '../src/provider.js';
import { get, listen, MemoryRegistry, until } from './helpers.js';

const QUIET_MS = 100;
const MAX_DRAIN_MS = 1500;
const live: { provider: Provider; server: Server }[] = [];

afterEach(async () => {
  for (const { provider, server } of live.splice(0)) {
    if (provider.state !== 'stopped') await provider.destroy().catch(() => {});
    server.closeAllConnections();
    server.close();
  }
});

type Ender = ((res: ServerResponse) => unknown) | 'undeclared' | undefined;

/** A provider whose /events answers an SSE stream (a tick every 50 ms), declared with `end` unless 'undeclared'. */
async function sseProvider(end: Ender) {
  let provider!: Provider;
  const { server, port } = await listen((req: IncomingMessage, res: ServerResponse) => {
    if (req.url?.startsWith('/events')) {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
      res.write('event: hello\ndata: 0\n\n');
      const tick = setInterval(() => res.write('event: tick\ndata: 1\n\n'), 50);
      res.on('close', () => clearInterval(tick));
      if (end !== 'undeclared') provider.stream(res, end);
      return;
    }
    const ms = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('ms') ?? 0);
    setTimeout(() => res.end('ok'), ms);
  });
  const exits: number[] = [];
  const warnings: string[] = [];
  provider = new Provider({
    service: 'events',
    registry: new MemoryRegistry(),
    server,
    admin: false,
    signals: false,
    exit: (code) => exits.push(code),
    drain: { quietWindowMs: QUIET_MS, maxDrainMs: MAX_DRAIN_MS, closeTimeoutMs: 1000 },
    logger: {
      debug: () => {},
      info: () => {},
      warn: (_o: object, msg?: string) => warnings.push(msg ?? ''),
      error: () => {},
    },
  });
  provider.on('error', () => {});
  live.push({ provider, server });
  await provider.start();
  return { provider, port, exits, warnings };
}

interface Subscription {
  readonly events: string[];
  /** Resolves when the stream ended: `end` for a clean end of the body, `error` when the connection was cut. */
  readonly ended: Promise<'end' | 'error'>;
}

function subscribe(port: number): Promise<Subscription> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/events', agent: false }, (res) => {
      const events: string[] = [];
      let buffer = '';
      const ended = new Promise<'end' | 'error'>((done) => {
        res.on('end', () => done('end'));
        res.on('error', () => done('error'));
        res.on('aborted', () => done('error'));
      });
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        for (let i = buffer.indexOf('\n\n'); i !== -1; i = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, i);
          buffer = buffer.slice(i + 2);
          events.push(/^event: (.*)$/m.exec(block)?.[1] ?? 'message');
        }
      });
      resolve({ events, ended });
    });
    req.on('error', reject);
    req.end();
  });
}

describe('provider.stream(): long-lived responses during a drain', () => {
  it('does not hold the drain: the hook says goodbye and ends the stream cleanly once the wait is over', async () => {
    const { provider, port, exits } = await sseProvider((res) => {
      res.end('event: bye\ndata: reconnect elsewhere\n\n');
    });
    const sub = await subscribe(port);
    await until(() => sub.events.includes('tick'), 'a tick');
    expect(provider.inFlight).toBe(0);
    expect(provider.tracker.streams).toBe(1);

    const started = Date.now();
    const summary = await provider.drain();
    const tookMs = Date.now() - started;
    expect(await sub.ended).toBe('end');
    expect(sub.events.at(-1)).toBe('bye');
    expect(summary).toMatchObject({ outcome: 'idle', streamsEnded: 1, cut: [], exitCode: 0 });
    // ends after the quiet window, not at the maximum: 'idle' above says so; the time, for the record
    expect(tookMs).toBeLessThan(MAX_DRAIN_MS);
    expect(exits).toEqual([0]);
  });

  it('waits for ordinary requests first, and streams keep flowing until then', async () => {
    const { provider, port } = await sseProvider(undefined); // default hook: res.end()
    const sub = await subscribe(port);
    const slow = get(port, '/?ms=400');
    await until(() => provider.inFlight === 1, 'the slow request');
    const drained = provider.drain();
    const reply = await slow;
    const ticksWhenSlowDone = sub.events.filter((e) => e === 'tick').length;
    expect(reply.status).toBe(200);
    const summary = await drained;
    expect(await sub.ended).toBe('end');
    expect(ticksWhenSlowDone).toBeGreaterThan(3);
    expect(summary).toMatchObject({ outcome: 'idle', streamsEnded: 1, exitCode: 0 });
    expect(summary.drainMs).toBeGreaterThanOrEqual(350);
  });

  it('by default (not declared) a stream counts as in flight: the drain waits for drain.maxDrainMs, then cuts it', async () => {
    const { provider, port, exits } = await sseProvider('undeclared');
    const sub = await subscribe(port);
    await until(() => provider.inFlight === 1, 'the stream in flight');
    const summary = await provider.drain();
    expect(await sub.ended).toBe('error');
    expect(summary.outcome).toBe('timeout');
    expect(summary.drainMs).toBeGreaterThanOrEqual(MAX_DRAIN_MS - 50);
    expect(summary.cut.map((r) => `${r.method} ${r.url}`)).toEqual(['GET /events']);
    expect(summary.exitCode).toBe(1);
    expect(exits).toEqual([1]);
  });

  it('a hook that throws is logged and its connection closed; the drain still ends', async () => {
    const { provider, port, warnings } = await sseProvider(() => {
      throw new Error('broken goodbye');
    });
    const sub = await subscribe(port);
    await until(() => provider.tracker.streams === 1, 'the stream');
    const summary = await provider.drain();
    expect(await sub.ended).toBe('error');
    expect(summary).toMatchObject({ outcome: 'idle', streamsEnded: 1, exitCode: 0 });
    expect(warnings).toContain('ending a stream failed; its connection is closed');
  });

  it('a stream the caller closed before the drain is forgotten', async () => {
    const calls: string[] = [];
    const { provider, port } = await sseProvider((res) => {
      calls.push('end');
      res.end();
    });
    await new Promise<void>((resolve) => {
      const req = request({ host: '127.0.0.1', port, path: '/events', agent: false }, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.end();
    });
    await until(() => provider.tracker.streams === 0, 'the stream to be forgotten');
    const summary = await provider.drain();
    expect(summary.streamsEnded).toBe(0);
    expect(calls).toEqual([]);
  });

  it('refuses an end hook that is not a function with a coded error', async () => {
    const { provider } = await sseProvider(undefined);
    let error: LosslessError | undefined;
    try {
      provider.stream({} as ServerResponse, 'bye' as never);
    } catch (e) {
      error = e as LosslessError;
    }
    expect(error?.code).toBe('LOSSLESS_ERR_INVALID_OPTION');
  });
});
