// A slow consumer and an idle keep-alive socket while a provider process goes offline (SIGTERM): the
// drain waits for the response the slow reader is still taking, then the server closes the idle
// socket itself, so that neither holds the process past the drain.

import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { launchScript, listening, type RunningExample } from '../process/example.js';
import { tempRegistry, until } from '../support.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/slow-provider.mjs', import.meta.url));
const QUIET_MS = 500;
/**
 * Bounds the server's close once the drain is over. Longer than the margin, so that an idle socket
 * holding the close would show in the exit time; shorter than the slow read, so that a drain that did
 * not wait for the slow response would cut it.
 */
const CLOSE_TIMEOUT_MS = 3000;
/** For starting the process's exit, closing the admin server and the registry, on a busy machine. */
const MARGIN_MS = 1500;
/** The slow reader's pace and body: ~6.5 s for the whole body, longer than the quiet window + close timeout. */
const READ_BYTES_PER_SEC = 4 * 1024 * 1024;
const BODY_MB = 26;

/** What the fixture sends for /big: this 64 KiB block, repeated. */
const BLOCK = Buffer.from(Array.from({ length: 65_536 }, (_, i) => (i * 7 + 3) % 256));

/** A raw socket that sends one keep-alive request, reads its answer, and then only sits there. */
function idleKeepAlive(port: number): Promise<{
  socket: Socket;
  first: string;
  closed: Promise<{ at: number; ended: boolean; error?: string; extra: number }>;
}> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    let answered = false;
    let ended = false;
    let extra = 0;
    let error: string | undefined;
    const closed = new Promise<{ at: number; ended: boolean; error?: string; extra: number }>((done) =>
      socket.on('close', () => done({ at: Date.now(), ended, extra, ...(error === undefined ? {} : { error }) })),
    );
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      if (answered) {
        extra += chunk.length;
        return;
      }
      text += chunk;
      const head = text.indexOf('\r\n\r\n');
      const length = /content-length: (\d+)/i.exec(text)?.[1];
      if (head >= 0 && length !== undefined && text.length >= head + 4 + Number(length)) {
        answered = true;
        resolve({ socket, first: text, closed });
      }
    });
    socket.on('end', () => {
      ended = true;
    });
    socket.on('error', (e: NodeJS.ErrnoException) => {
      error = e.code ?? e.message;
      reject(e);
    });
    socket.write('GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n');
  });
}

interface SlowRead {
  status: number;
  offline: string | undefined;
  bytes: number;
  sha256: string;
  doneAt: number;
  error?: string;
}

/** GET /big, read at READ_BYTES_PER_SEC; `progress()` says how much has arrived. */
function slowRead(port: number): { result: Promise<SlowRead>; progress: () => number } {
  let bytes = 0;
  const result = new Promise<SlowRead>((resolve) => {
    const hash = createHash('sha256');
    const req = request({ host: '127.0.0.1', port, path: `/big?mb=${BODY_MB}`, agent: false }, async (res) => {
      const startedAt = Date.now();
      try {
        for await (const chunk of res) {
          bytes += (chunk as Buffer).length;
          hash.update(chunk as Buffer);
          const ahead = (bytes / READ_BYTES_PER_SEC) * 1000 - (Date.now() - startedAt);
          if (ahead > 0) await new Promise((r) => setTimeout(r, ahead));
        }
        resolve({
          status: res.statusCode ?? 0,
          offline: res.headers['x-lossless-offline'] as string | undefined,
          bytes,
          sha256: hash.digest('hex'),
          doneAt: Date.now(),
        });
      } catch (error) {
        resolve({
          status: res.statusCode ?? 0,
          offline: undefined,
          bytes,
          sha256: '',
          doneAt: Date.now(),
          error: String(error),
        });
      }
    });
    req.on('error', (error) =>
      resolve({ status: 0, offline: undefined, bytes, sha256: '', doneAt: Date.now(), error: String(error) }),
    );
    req.end();
  });
  return { result, progress: () => bytes };
}

describe('slow consumer and an idle keep-alive socket past the drain', () => {
  let registry: Awaited<ReturnType<typeof tempRegistry>>;
  let running: RunningExample | undefined;

  beforeEach(async () => {
    registry = await tempRegistry();
  });
  afterEach(async () => {
    running?.child.kill('SIGKILL');
    running = undefined;
    await registry.remove();
  });

  it('on SIGTERM: the slow reader gets its whole body, the idle socket is closed by the server, the process exits in time', async ({
    annotate,
  }) => {
    running = await listening(
      launchScript(FIXTURE, [
        '--registry',
        registry.url,
        '--quiet-window-ms',
        String(QUIET_MS),
        '--close-timeout-ms',
        String(CLOSE_TIMEOUT_MS),
      ]),
    );
    const r = running;
    const idle = await idleKeepAlive(r.port);
    expect(idle.first).toMatch(/^HTTP\/1\.1 200/);
    expect(idle.first).toMatch(/connection: keep-alive/i);

    const slow = slowRead(r.port);
    await until(() => slow.progress() >= 2 * 1024 * 1024, 'the slow reader to be under way');

    const sigtermAt = Date.now();
    r.child.kill('SIGTERM');
    const [read, exit, idleClosed] = await Promise.all([slow.result, r.exited, idle.closed]);

    let expected = createHash('sha256');
    for (let i = 0; i < BODY_MB * 16; i++) expected = expected.update(BLOCK);
    // the longest remaining request, as the server saw it: until its last byte went to the kernel
    const finished = r.logs().find((l) => l.msg === 'big response finished');
    const remainingMs = Date.parse(String(finished?.time)) - sigtermAt;
    const drainStarted = r.logs().find((l) => l.msg === 'drain started');
    const summary = r.logs().find((l) => l.msg?.startsWith('drain complete'));
    console.log(
      `keep-alive past the drain: ${JSON.stringify({
        bodyBytes: read.bytes,
        remainingAtServerMs: remainingMs,
        slowReaderRemainingMs: read.doneAt - sigtermAt,
        exitAfterSigtermMs: exit.at - sigtermAt,
        idleSocketClosedAfterSigtermMs: idleClosed.at - sigtermAt,
        drainMs: summary?.drainMs,
      })}`,
    );

    await annotate(
      `exit ${exit.at - sigtermAt} ms after SIGTERM (slow response done at the server after ${remainingMs} ms, quiet window ${QUIET_MS} ms); idle socket closed by the server after ${idleClosed.at - sigtermAt} ms; ${read.bytes} of ${BODY_MB * 1024 * 1024} bytes read`,
      'measured',
    );
    // the slow reader got every byte, unmarked (its response began before the drain)
    expect(read.error).toBeUndefined();
    expect(read.status).toBe(200);
    expect(read.offline).toBeUndefined();
    expect(read.bytes).toBe(BODY_MB * 1024 * 1024);
    expect(read.sha256).toBe(expected.digest('hex'));
    // the drain saw it in flight and waited for it; nothing was cut
    expect(drainStarted).toMatchObject({ inFlight: 1 });
    expect(summary).toMatchObject({ outcome: 'idle', cut: 0 });
    // the server closed the idle keep-alive socket cleanly (FIN, no reset, no stray bytes), not its
    // 30 s keep-alive timer
    expect(idleClosed).toEqual({ at: idleClosed.at, ended: true, extra: 0 });
    expect(idleClosed.at).toBeGreaterThanOrEqual(sigtermAt);
    expect(idleClosed.at).toBeLessThanOrEqual(exit.at + MARGIN_MS);
    // and it did not hold the process: exit within the longest remaining request + quiet window + margin
    expect(exit.code).toBe(0);
    expect(remainingMs).toBeGreaterThan(0);
    expect(exit.at - sigtermAt).toBeLessThanOrEqual(remainingMs + QUIET_MS + MARGIN_MS);
  });
});
