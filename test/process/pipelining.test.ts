// HTTP/1.1 pipelining around SIGTERM, on a raw socket, against the express example as a user runs it:
// every request that was read is answered (a POST queued behind a slow GET has already run in its
// handler: its 201 must go out), and only the last answer closes the connection.

import { connect, type Socket } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { call, tempRegistry, until } from '../support.js';
import { type RunningExample, startExample } from './example.js';

interface Pipe {
  readonly socket: Socket;
  readonly received: () => string;
  readonly answers: () => string[];
  /** True once the server ended the connection. */
  readonly ended: () => boolean;
}

function pipeline(port: number, requests: string[]): Pipe {
  const socket = connect(port, '127.0.0.1');
  let received = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    received += chunk;
  });
  let ended = false;
  socket.on('end', () => {
    ended = true;
  });
  socket.on('error', () => {});
  socket.write(requests.join(''));
  return {
    socket,
    received: () => received,
    answers: () => received.split(/(?=HTTP\/1\.1 \d{3} )/).filter(Boolean),
    ended: () => ended,
  };
}

const body = JSON.stringify({ item: 'tea' });
const REQUESTS = [
  'GET /work?ms=600 HTTP/1.1\r\nHost: x\r\n\r\n',
  `POST /orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  'GET /hello HTTP/1.1\r\nHost: x\r\n\r\n',
];

describe('pipelined requests around SIGTERM (express example, raw socket)', () => {
  let registry: Awaited<ReturnType<typeof tempRegistry>>;
  let running: RunningExample | undefined;
  let pipe: Pipe | undefined;

  beforeEach(async () => {
    registry = await tempRegistry();
  });
  afterEach(async () => {
    pipe?.socket.destroy();
    running?.child.kill('SIGKILL');
    running = undefined;
    await registry.remove();
  });

  const statuses = (p: Pipe) => p.answers().map((a) => Number(a.slice(9, 12)));

  it('answers all three read before the signal; no answer but the last may close the connection', async () => {
    running = await startExample(['--registry', registry.url, '--quiet-window-ms', '300']);
    const r = running;
    await until(async () => (await call(r.adminPort, '/readyz')).status === 200, 'ready');
    pipe = pipeline(r.port, REQUESTS);
    const p = pipe;
    // all three read: the slow GET runs, the POST and the GET wait behind it on the connection
    await until(async () => JSON.parse((await call(r.adminPort, '/status')).body).inFlight === 3, '3 in flight');
    r.child.kill('SIGTERM');
    await until(() => p.answers().length === 3, `three answers (got: ${p.received()})`, 5000);
    expect(statuses(p)).toEqual([200, 201, 200]);
    const [first, second] = p.answers() as [string, string, string];
    expect(second).toContain('"item":"tea"');
    // the POST and the last GET were handled at once and wait, written, behind the slow GET: only
    // the slow one can still be marked, and it must not close the connection in front of them
    expect(first).toMatch(/x-lossless-offline: draining/i);
    for (const answer of [first, second]) expect(answer).not.toMatch(/connection: close/i);
    const { code } = await r.exited;
    expect(code).toBe(0);
    // the connection, idle once the third answer went out, is closed by the server at the end
    await until(() => p.ended(), 'the server to end the connection');
    const summary = r.logs().find((l) => l.msg?.startsWith('drain complete'));
    expect(summary).toMatchObject({ cut: 0 });
  });

  it('answers all three when they arrive during the drain', async () => {
    running = await startExample(['--registry', registry.url, '--quiet-window-ms', '1500']);
    const r = running;
    await until(async () => (await call(r.adminPort, '/readyz')).status === 200, 'ready');
    r.child.kill('SIGTERM');
    await until(async () => (await call(r.adminPort, '/readyz')).status === 503, 'draining');
    pipe = pipeline(r.port, REQUESTS);
    const p = pipe;
    await until(() => p.answers().length === 3, `three answers (got: ${p.received()})`, 5000);
    expect(statuses(p)).toEqual([200, 201, 200]);
    expect(p.answers()[2]).toMatch(/connection: close/i);
    const { code } = await r.exited;
    expect(code).toBe(0);
  });
});
