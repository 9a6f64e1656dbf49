// Real processes, real signals: the express example is started as a user would start it, requests of
// 0.5–2 s are in flight on keep-alive connections, and the process is told to go offline.

import { Agent } from 'node:http';
import { FileRegistry } from '@lossless/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { call, type Reply, refused, tempRegistry, until } from '../support.js';
import { type RunningExample as Running, startExample as start } from './example.js';

const QUIET_MS = 500;

function startExample(registryUrl: string): Promise<Running> {
  return start(['--registry', registryUrl, '--quiet-window-ms', String(QUIET_MS)]);
}

describe('express example, real process', () => {
  let registry: Awaited<ReturnType<typeof tempRegistry>>;
  let reader: FileRegistry;
  let running: Running | undefined;

  beforeEach(async () => {
    registry = await tempRegistry();
    reader = new FileRegistry({ dir: registry.dir });
  });
  afterEach(async () => {
    running?.child.kill('SIGKILL');
    running = undefined;
    await reader.close();
    await registry.remove();
  });

  const listedIds = async () => (await reader.list('hello-service')).map((i) => i.id);

  async function drainUnderLoad(goOffline: (r: Running) => Promise<unknown>) {
    running = await startExample(registry.url);
    const r = running;
    const id = `127.0.0.1:${r.port}`;
    expect(await listedIds()).toEqual([id]);
    expect((await call(r.adminPort, '/readyz')).status).toBe(200);

    // requests of 0.5–2 s on keep-alive connections
    const agent = new Agent({ keepAlive: true, maxSockets: 6 });
    await Promise.all([1, 2, 3].map(() => call(r.port, '/hello', { agent }))); // warm the sockets
    const durations = [500, 900, 1300, 1700, 2000];
    const sentAt = Date.now();
    const slow = durations.map((ms) => call(r.port, `/work?ms=${ms}`, { agent }));
    await until(
      async () => JSON.parse((await call(r.adminPort, '/status')).body).inFlight === durations.length,
      'the slow requests to reach the server',
    );

    const offlineAt = Date.now();
    const offline = goOffline(r);
    // the registry stops listing the instance while the server still serves
    await until(async () => !(await listedIds()).includes(id), 'the instance to leave the registry', 3000);
    const afterRemoval: Reply = await call(r.port, '/hello', { agent });
    const replies = await Promise.all(slow);
    const { code, at: exitAt } = await r.exited;
    await offline;
    agent.destroy();

    expect(replies.map((x) => x.status)).toEqual(durations.map(() => 200));
    expect(afterRemoval.status).toBe(200);
    for (const reply of [...replies, afterRemoval]) {
      expect(reply.headers['x-lossless-offline']).toBe('draining');
      expect(reply.headers.connection).toBe('close');
    }
    const longestRemaining = Math.max(...durations) - (offlineAt - sentAt);
    // it exits once idle and quiet: after its last answer, and long before a fixed wait or the
    // drain's maximum (25 s) would have let it (the overhead itself is measured by bench:rollout)
    const lastAnswerAt = Math.max(...replies.map((x) => x.at));
    expect(exitAt).toBeGreaterThanOrEqual(lastAnswerAt);
    expect(exitAt - offlineAt).toBeLessThan(longestRemaining + QUIET_MS + 2000);
    expect(code).toBe(0);
    expect(await refused(r.port)).toBe(true);
    const summary = r.logs().find((l) => l.msg?.startsWith('drain complete'));
    expect(summary).toMatchObject({ outcome: 'idle', cut: 0, registry: 'removed' });
    return { summary, exitAfterMs: exitAt - offlineAt, longestRemaining };
  }

  it('on SIGTERM: every request answered, marked, registry first, exit as soon as idle + quiet', async () => {
    await drainUnderLoad(async (r) => {
      r.child.kill('SIGTERM');
    });
  });

  it('through POST /prestop: answered when the drain is over, then the process exits', async () => {
    let prestop: Reply | undefined;
    let prestopAt = 0;
    const offlineAt = Date.now();
    await drainUnderLoad(async (r) => {
      prestop = await call(r.adminPort, '/prestop', { method: 'POST' });
      prestopAt = Date.now();
    });
    expect(prestop?.status).toBe(200);
    expect(JSON.parse(prestop!.body)).toMatchObject({ trigger: 'prestop', outcome: 'idle', cut: [] });
    // the hook returned only after the longest request (2 s, sent ~50 ms before) was answered
    expect(prestopAt - offlineAt).toBeGreaterThanOrEqual(1900);
  });

  it('a second SIGTERM cuts the drain short and exits 1, naming the request it cut', async () => {
    running = await startExample(registry.url);
    const r = running;
    const hung = call(r.port, '/work?ms=20000').catch((error: Error) => error);
    await until(async () => JSON.parse((await call(r.adminPort, '/status')).body).inFlight === 1, 'one in flight');
    r.child.kill('SIGTERM');
    await until(async () => !(await listedIds()).length, 'the instance to leave the registry');
    r.child.kill('SIGTERM');
    const { code } = await r.exited;
    expect(code).toBe(1);
    expect(await hung).toBeInstanceOf(Error);
    expect(r.lines.some((l) => l.includes('request cut at the end of the drain') && l.includes('/work?ms=20000'))).toBe(
      true,
    );
  });
});
