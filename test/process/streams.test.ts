// A server-sent events stream open on the express example while it is told to go offline: the process
// does not wait for the stream (it never ends by itself), it says goodbye on it and ends it cleanly, and
// exits as soon as its ordinary requests are done.

import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { call, tempRegistry, until } from '../support.js';
import { type RunningExample, startExample } from './example.js';

const QUIET_MS = 300;

describe('express example: server-sent events during a drain', () => {
  let registry: Awaited<ReturnType<typeof tempRegistry>> | undefined;
  let running: RunningExample | undefined;
  afterEach(async () => {
    running?.child.kill('SIGKILL');
    running = undefined;
    await registry?.remove();
  });

  it('ends the stream with a goodbye event once the slow request is done, then exits 0', async ({ annotate }) => {
    registry = await tempRegistry();
    running = await startExample(['--registry', registry.url, '--quiet-window-ms', String(QUIET_MS)]);
    const r = running;
    const events: string[] = [];
    const streamEnded = new Promise<'end' | 'error'>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: r.port, path: '/events', agent: false }, (res) => {
        res.setEncoding('utf8');
        let buffer = '';
        res.on('data', (chunk: string) => {
          buffer += chunk;
          for (let i = buffer.indexOf('\n\n'); i !== -1; i = buffer.indexOf('\n\n')) {
            const event = /^event: (.*)$/m.exec(buffer.slice(0, i))?.[1];
            if (event !== undefined) events.push(event);
            buffer = buffer.slice(i + 2);
          }
        });
        res.on('end', () => resolve('end'));
        res.on('aborted', () => resolve('error'));
        res.on('error', () => resolve('error'));
      });
      req.on('error', reject);
      req.end();
    });
    const slow = call(r.port, '/work?ms=1500');
    await until(
      async () => JSON.parse((await call(r.adminPort, '/status')).body).inFlight === 1,
      'the slow request to reach the server (the stream does not count)',
    );
    const sigtermAt = Date.now();
    r.child.kill('SIGTERM');

    expect((await slow).status).toBe(200);
    expect(await streamEnded).toBe('end');
    expect(events.at(-1)).toBe('bye');
    const { code, at } = await r.exited;
    expect(code).toBe(0);
    // the slow request (about 1.4 s left) and the quiet window, not drain.maxDrainMs (25 s)
    expect(at - sigtermAt).toBeLessThan(1500 + QUIET_MS + 1500);
    const summary = r.logs().find((l) => l.msg?.startsWith('drain complete'));
    expect(summary).toMatchObject({ outcome: 'idle', cut: 0, streamsEnded: 1 });
    await annotate(
      `stream ended cleanly with its goodbye event; exit ${at - sigtermAt} ms after SIGTERM (slow request ~1400 ms left, quiet window ${QUIET_MS} ms), code 0`,
      'measured',
    );
  });
});
