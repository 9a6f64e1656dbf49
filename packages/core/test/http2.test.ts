// node:http2 servers under a provider, over real h2c connections on 127.0.0.1: streams counted as
// requests, the marker on every response, GOAWAY twice (the final one a round trip after the first),
// streams already open served, sessions closed at the end and destroyed at drain.closeTimeoutMs.

import {
  type ClientHttp2Session,
  connect as connectH2,
  constants,
  createServer as createH2Server,
  createSecureServer,
  type Http2Server,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type IncomingHttpHeaders,
  type ServerHttp2Stream,
} from 'node:http2';
import { type AddressInfo, connect as connectTcp, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Provider } from '../src/provider.js';
import { Http2Sessions } from '../src/server/http2.js';
import { InFlightTracker } from '../src/tracking/in-flight.js';
import { MemoryRegistry, until } from './helpers.js';

const marker = { header: 'x-lossless-offline', value: 'draining' };

/** `?ms=N`: answers 200 "ok" after N ms; `/hang` and `/events`: left to the test. */
function handler(req: Http2ServerRequest, res: Http2ServerResponse): void {
  if (req.url === '/hang' || req.url === '/events') return;
  const ms = Number(new URL(req.url, 'http://x').searchParams.get('ms') ?? 0);
  setTimeout(() => res.end('ok'), ms);
}

const servers: Http2Server[] = [];
const clients: ClientHttp2Session[] = [];
const sockets: Socket[] = [];
const providers: Provider[] = [];
const followed: Http2Sessions[] = [];

function follow(server: Http2Server): Http2Sessions {
  const sessions = new Http2Sessions(server);
  followed.push(sessions);
  return sessions;
}

/** The streams open on `server`, as the tracker gives them to Http2Sessions.goaway(). */
function openStreams(server: Http2Server): Set<ServerHttp2Stream> {
  const open = new Set<ServerHttp2Stream>();
  server.on('stream', (stream: ServerHttp2Stream) => {
    open.add(stream);
    stream.once('close', () => open.delete(stream));
  });
  return open;
}

async function listenH2(): Promise<{ server: Http2Server; port: number }> {
  const server = createH2Server(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

function session(port: number): ClientHttp2Session {
  const client = connectH2(`http://127.0.0.1:${port}`);
  client.on('error', () => {});
  clients.push(client);
  return client;
}

interface H2Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

function get(client: ClientHttp2Session, path: string): Promise<H2Reply> {
  return new Promise((resolve, reject) => {
    const stream = client.request({ ':path': path });
    let headers: IncomingHttpHeaders = {};
    let body = '';
    stream.setEncoding('utf8');
    stream.on('response', (h) => {
      headers = h;
    });
    stream.on('data', (chunk: string) => {
      body += chunk;
    });
    stream.on('end', () => resolve({ status: Number(headers[':status']), headers, body }));
    stream.on('error', reject);
    stream.end();
  });
}

afterEach(async () => {
  for (const provider of providers.splice(0)) if (provider.state !== 'stopped') await provider.destroy();
  // a session that sent its final GOAWAY and has no stream left reads no more: only a close ends it
  for (const sessions of followed.splice(0)) {
    sessions.destroy();
    sessions.detach();
  }
  for (const client of clients.splice(0)) client.destroy();
  for (const socket of sockets.splice(0)) socket.destroy();
  for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve));
});

describe('InFlightTracker on an http2 server', () => {
  it('counts each stream of a session as a request, from arrival until its response ends', async () => {
    const { server, port } = await listenH2();
    const tracker = new InFlightTracker();
    tracker.attach(server);
    const client = session(port);
    const replies = [get(client, '/?ms=150'), get(client, '/?ms=250'), get(client, '/?ms=50')];
    await until(() => tracker.size === 3, 'three streams of one session in flight');
    expect(tracker.snapshot().map((r) => r.url)).toEqual(expect.arrayContaining(['/?ms=150', '/?ms=250', '/?ms=50']));
    await replies[2];
    await until(() => tracker.size === 2, 'the short stream to be released');
    await Promise.all(replies);
    await until(() => tracker.size === 0, 'every stream released');
    expect(tracker.total).toBe(3);
  });

  it('releases streams the caller resets, and counts exactly once a drain waits', async () => {
    const { server, port } = await listenH2();
    const tracker = new InFlightTracker();
    tracker.attach(server);
    let idle = 0;
    const client = session(port);
    const streams = Array.from({ length: 5 }, () => {
      const stream = client.request({ ':path': '/hang' });
      stream.on('error', () => {});
      stream.end();
      return stream;
    });
    await until(() => tracker.size === 5, 'five hanging streams');
    tracker.onIdle = () => idle++;
    for (const stream of streams) stream.close(constants.NGHTTP2_CANCEL);
    await until(() => tracker.size === 0, 'the reset streams to be released');
    expect(idle).toBe(1);
  });

  it('marks responses in flight and later ones, never with a Connection header', async () => {
    const { server, port } = await listenH2();
    const tracker = new InFlightTracker();
    tracker.attach(server);
    const client = session(port);
    expect((await get(client, '/')).headers['x-lossless-offline']).toBeUndefined();
    const inFlight = get(client, '/?ms=100');
    await until(() => tracker.size === 1, 'a stream in flight');
    tracker.startMarking(marker);
    const later = await get(client, '/');
    for (const reply of [await inFlight, later]) {
      expect(reply.status).toBe(200);
      expect(reply.headers['x-lossless-offline']).toBe('draining');
      expect(reply.headers.connection).toBeUndefined();
    }
    expect(tracker.marked).toBe(2);
    expect(tracker.arrivedWhileMarking).toBe(1);
  });

  it('skips ignored paths, and stops counting a stream declared long-lived', async () => {
    const { server, port } = await listenH2();
    const tracker = new InFlightTracker();
    tracker.ignore = (req) => req.url === '/readyz';
    let streamRes: Http2ServerResponse | undefined;
    server.prependListener('request', (req: Http2ServerRequest, res: Http2ServerResponse) => {
      if (req.url === '/events') {
        streamRes = res;
        res.write('hello\n');
      }
    });
    tracker.attach(server);
    const client = session(port);
    await get(client, '/readyz');
    expect(tracker.total).toBe(0);
    const events = client.request({ ':path': '/events' });
    events.resume();
    events.end();
    await until(() => tracker.size === 1 && streamRes !== undefined, 'the event stream in flight');
    const ended = new Promise((resolve) => events.on('end', resolve));
    tracker.stream(streamRes as Http2ServerResponse, (res) => res.end('bye\n'));
    expect(tracker.size).toBe(0);
    expect(tracker.streams).toBe(1);
    expect(tracker.endStreams(() => {})).toBe(1);
    await ended;
    await until(() => tracker.streams === 0, 'the stream to be forgotten');
  });

  it('abortAll() resets the streams in flight', async () => {
    const { server, port } = await listenH2();
    const tracker = new InFlightTracker();
    tracker.attach(server);
    tracker.onIdle = () => {};
    const client = session(port);
    const hanging = get(client, '/hang');
    await until(() => tracker.size === 1, 'a hanging stream');
    tracker.abortAll();
    await expect(hanging).rejects.toMatchObject({ code: 'ERR_HTTP2_STREAM_ERROR' });
    await until(() => tracker.size === 0, 'the cut stream released');
  });
});

describe('Http2Sessions', () => {
  it('sends a first GOAWAY with the highest stream id, the final one a round trip later, and serves open streams', async () => {
    const { server, port } = await listenH2();
    const sessions = follow(server);
    const streams = openStreams(server);
    let arrived = 0;
    server.prependListener('request', () => arrived++);
    const client = session(port);
    const goaways: number[] = [];
    client.on('goaway', (_code, last) => goaways.push(last));
    await get(client, '/');
    const open = get(client, '/?ms=200');
    await until(() => sessions.size === 1 && arrived === 2, 'the open stream at the server');
    sessions.goaway(streams);
    await until(() => goaways.length >= 2, 'two GOAWAY frames');
    expect(goaways[0]).toBe(2 ** 31 - 1);
    expect(goaways[1]).toBe(3); // the open stream, the last one processed
    expect((await open).body).toBe('ok');
  });

  it('tells a client whose stream crossed the first GOAWAY that it was not processed, within a round trip', async () => {
    const { server, port } = await listenH2();
    const sessions = follow(server);
    const streams = openStreams(server);
    const seen: string[] = [];
    server.prependListener('request', (req: Http2ServerRequest) => seen.push(req.url));
    // a client that opened stream 3 before it read the GOAWAY: written before its PING acknowledgement
    const raw = await rawClient(port, (self) => self.headers(3, '/'));
    raw.headers(1, '/?ms=300');
    await until(() => seen.length === 1, 'the first stream');
    const started = Date.now();
    sessions.goaway(streams);
    await until(() => raw.goaways.length === 2, 'the final GOAWAY');
    expect(Date.now() - started).toBeLessThan(250); // a round trip, not the end of the open stream
    expect(raw.goaways).toEqual([2 ** 31 - 1, 1]); // stream 3 was not processed: the client may replay it
    // the final GOAWAY answered the PING that followed the first one: one round trip later
    expect(raw.frames.filter((f) => f === 'GOAWAY' || f === 'PING')).toEqual(['GOAWAY', 'PING', 'GOAWAY']);
    expect(seen).toEqual(['/?ms=300']);
    await until(() => raw.ended.includes(1), 'the open stream served');
  });

  it('sends both GOAWAYs at once to a session with no stream open (it reads nothing more after the first)', async () => {
    const { server, port } = await listenH2();
    const sessions = follow(server);
    const raw = await rawClient(port, (self) => self.headers(3, '/'));
    raw.headers(1, '/');
    await until(() => raw.ended.includes(1), 'the first stream served');
    sessions.goaway();
    await until(() => raw.goaways.length === 2, 'both GOAWAYs');
    // stream 3, sent as the first GOAWAY arrived, is left out: the client may replay it at once
    expect(raw.goaways).toEqual([2 ** 31 - 1, 1]);
  });

  it('serves the streams of a session opened during the drain, and sends it GOAWAY once it has none open', async () => {
    const { server, port } = await listenH2();
    const sessions = follow(server);
    let arrived = 0;
    server.prependListener('request', () => arrived++);
    sessions.goaway();
    const client = session(port);
    const goaways: number[] = [];
    client.on('goaway', (_code, last) => goaways.push(last));
    // a stream opened while the first is still served is served too: no GOAWAY yet
    const first = get(client, '/?ms=150');
    await until(() => arrived === 1, 'the first stream at the server');
    expect((await get(client, '/')).status).toBe(200);
    expect(goaways).toEqual([]);
    expect((await first).status).toBe(200);
    await until(() => goaways.length >= 2, 'GOAWAY on the new session once it is idle');
    expect(goaways[0]).toBe(2 ** 31 - 1);
  });

  it('close() ends sessions once their streams end, so that server.close() completes; destroy() ends the rest', async () => {
    const { server, port } = await listenH2();
    const sessions = follow(server);
    let arrived = 0;
    server.prependListener('request', () => arrived++);
    const idle = session(port);
    await get(idle, '/');
    const busy = session(port);
    const open = get(busy, '/?ms=150');
    const stuck = session(port);
    const hanging = get(stuck, '/hang');
    await until(() => sessions.size === 3 && arrived === 3, 'three sessions, two streams open');
    let closed = false;
    server.close(() => {
      closed = true;
    });
    sessions.close();
    await until(() => idle.closed || idle.destroyed, 'the idle session closed');
    expect((await open).body).toBe('ok');
    await until(() => sessions.size === 1, 'only the hanging session left');
    expect(closed).toBe(false);
    sessions.destroy();
    await until(() => closed, 'the server closed');
    // the stream ended without an answer
    expect((await hanging).headers[':status']).toBeUndefined();
    servers.splice(servers.indexOf(server), 1);
  });
});

describe('Provider on an http2 server', () => {
  async function start(server: Http2Server, closeTimeoutMs = 1000): Promise<Provider> {
    const provider = new Provider({
      service: 'h2',
      registry: new MemoryRegistry(),
      server,
      admin: false,
      signals: false,
      exit: false,
      drain: { quietWindowMs: 50, maxDrainMs: 5000, closeTimeoutMs },
    });
    providers.push(provider);
    await provider.start();
    return provider;
  }

  it('drains: streams in flight marked and served, sessions closed at the end (no closeIdleConnections needed)', async () => {
    const { server, port } = await listenH2();
    const provider = await start(server);
    const client = session(port);
    const slow = [get(client, '/?ms=300'), get(client, '/?ms=150')];
    await until(() => provider.inFlight === 2, 'two streams in flight');
    const summary = provider.drain();
    const replies = await Promise.all(slow);
    for (const reply of replies) {
      expect(reply.status).toBe(200);
      expect(reply.headers['x-lossless-offline']).toBe('draining');
    }
    expect(await summary).toMatchObject({ outcome: 'idle', cut: [], inFlightAtStart: 2, exitCode: 0 });
    expect(server.listening).toBe(false);
    await until(() => client.closed || client.destroyed, 'the client session to be closed');
    servers.splice(servers.indexOf(server), 1);
  });

  it('destroys the sessions left at drain.closeTimeoutMs', async () => {
    const { server, port } = await listenH2();
    const provider = await start(server, 200);
    // a long-lived stream whose end function never ends it
    server.prependListener('request', (req: Http2ServerRequest, res: Http2ServerResponse) => {
      if (req.url === '/events') {
        res.write('hello\n');
        provider.stream(res, () => {});
      }
    });
    const client = session(port);
    const events = client.request({ ':path': '/events' });
    events.on('error', () => {});
    events.resume();
    events.end();
    await until(() => provider.tracker.streams === 1, 'the event stream');
    const started = Date.now();
    const summary = await provider.drain();
    expect(summary.outcome).toBe('idle');
    expect(Date.now() - started).toBeGreaterThanOrEqual(200);
    expect(server.listening).toBe(false);
    await until(() => client.destroyed, 'the client session destroyed');
    servers.splice(servers.indexOf(server), 1);
  });

  it('counts the streams of a server used through its stream event alone; their answers carry no marker', async () => {
    const server = createH2Server();
    servers.push(server);
    server.on('stream', (stream) => {
      stream.resume();
      stream.on('end', () =>
        setTimeout(() => {
          stream.respond({ ':status': 200 });
          stream.end('raw');
        }, 150),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const provider = await start(server);
    const client = session((server.address() as AddressInfo).port);
    const reply = get(client, '/raw');
    await until(() => provider.inFlight === 1, 'the raw stream counted');
    const summary = provider.drain();
    expect(await reply).toMatchObject({ status: 200, body: 'raw' });
    expect((await reply).headers['x-lossless-offline']).toBeUndefined();
    expect(await summary).toMatchObject({ outcome: 'idle', inFlightAtStart: 1, cut: [] });
    servers.splice(servers.indexOf(server), 1);
  });

  it('registers an http2 secure server with secure=true', async () => {
    const server = createSecureServer({ allowHTTP1: true });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const provider = new Provider({
      service: 'h2s',
      registry: new MemoryRegistry(),
      server,
      admin: false,
      signals: false,
      exit: false,
      drain: { quietWindowMs: 10 },
    });
    providers.push(provider);
    await provider.start();
    expect(provider.instance?.metadata.secure).toBe('true');
    await provider.drain();
  });
});

/** A client that writes HTTP/2 frames itself: it may open a stream after a GOAWAY, as a racing client does. */
interface RawClient {
  headers: (stream: number, path: string) => void;
  goaways: number[];
  ended: number[];
  /** Frames received, in order (GOAWAY, PING, ...). */
  frames: string[];
}

async function rawClient(port: number, onFirstGoaway: (self: RawClient) => void = () => {}): Promise<RawClient> {
  const socket = connectTcp(port, '127.0.0.1');
  sockets.push(socket);
  await new Promise((resolve) => socket.once('connect', resolve));
  const frame = (type: number, flags: number, stream: number, payload: Buffer): Buffer => {
    const head = Buffer.alloc(9);
    head.writeUIntBE(payload.length, 0, 3);
    head[3] = type;
    head[4] = flags;
    head.writeUInt32BE(stream, 5);
    return Buffer.concat([head, payload]);
  };
  socket.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
  socket.write(frame(0x4, 0, 0, Buffer.alloc(0))); // SETTINGS
  const goaways: number[] = [];
  const ended: number[] = [];
  const frames: string[] = [];
  const names: Record<number, string> = {
    0: 'DATA',
    1: 'HEADERS',
    3: 'RST_STREAM',
    4: 'SETTINGS',
    6: 'PING',
    7: 'GOAWAY',
  };
  let buffer = Buffer.alloc(0);
  // frames are handled in the order they arrive: what onFirstGoaway writes goes out before any later ack
  socket.on('data', (data: Buffer) => {
    buffer = Buffer.concat([buffer, data]);
    while (buffer.length >= 9) {
      const length = buffer.readUIntBE(0, 3);
      if (buffer.length < 9 + length) break;
      const [type, flags] = [buffer[3] as number, buffer[4] as number];
      const id = buffer.readUInt32BE(5) & 0x7fffffff;
      const payload = buffer.subarray(9, 9 + length);
      buffer = buffer.subarray(9 + length);
      frames.push(names[type] ?? String(type));
      if (type === 0x4 && (flags & 0x1) === 0) socket.write(frame(0x4, 0x1, 0, Buffer.alloc(0))); // SETTINGS ack
      if (type === 0x6 && (flags & 0x1) === 0) socket.write(frame(0x6, 0x1, 0, payload)); // PING ack
      if (type === 0x7) {
        goaways.push(payload.readUInt32BE(0) & 0x7fffffff);
        if (goaways.length === 1) onFirstGoaway(self);
      }
      if (type === 0x0 && (flags & 0x1) !== 0) ended.push(id);
    }
  });
  const self: RawClient = {
    // HPACK: :method GET, :scheme http (static table), :path literal, :authority literal
    headers: (stream, path) =>
      socket.write(
        frame(
          0x1,
          0x4 | 0x1, // END_HEADERS | END_STREAM
          stream,
          Buffer.concat([
            Buffer.from([0x82, 0x86, 0x04, path.length]),
            Buffer.from(path),
            Buffer.from([0x01, 9]),
            Buffer.from('127.0.0.1'),
          ]),
        ),
      ),
    goaways,
    ended,
    frames,
  };
  return self;
}
