// The express example on Nacos, as real processes, over both transports (gRPC, the default, and
// HTTP): online only after warm-up and read-back, seen by another process; offline on SIGTERM before
// the server closes; Nacos down at start-up, during the drain; wrong credentials.

import { Agent } from 'node:http';
import { NacosRegistry, type NacosTransport } from '@lossless/nacos';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { launchExample, listening, type Running, type RunningExample, watch } from '../process/example.js';
import { call, until } from '../support.js';
import { grpcPortOf, type RunningNacos, startNacos } from './server.js';

let nacos: RunningNacos;
// for the tests that stop Nacos under a provider: a local rnacos, whatever serves the others
let local: RunningNacos;
let n = 0;
const children: Running[] = [];

beforeAll(async () => {
  nacos = await startNacos();
  local = nacos.source === 'rnacos' ? nacos : await startNacos({ controlled: true });
}, 120_000);
afterAll(async () => {
  if (local !== nacos) await local?.stop();
  await nacos?.stop();
});
afterEach(() => {
  for (const c of children.splice(0)) c.child.kill('SIGKILL');
});

const fresh = () => `nacos-svc-${process.pid}-${++n}`;
const readyz = async (r: { adminPort: number }) => {
  const reply = await call(r.adminPort, '/readyz');
  return { status: reply.status, ...(JSON.parse(reply.body) as { state: string; reason: string }) };
};

describe.each(['grpc', 'http'] as const)('express example on Nacos over %s', (transport: NacosTransport) => {
  let reader: NacosRegistry;
  beforeAll(() => {
    reader = new NacosRegistry({ servers: nacos.addr, grpcPort: grpcPortOf(nacos), transport });
  });
  afterAll(async () => {
    await reader?.close();
  });
  const url = (server = nacos) =>
    `nacos://${server.addr}/?pollMs=200&transport=${transport}&grpcPort=${grpcPortOf(server)}`;
  const ids = async (service: string, from = reader) => (await from.list(service)).map((i) => i.id);
  async function example(service: string, extra: string[] = [], server = nacos): Promise<RunningExample> {
    const launched = launchExample([
      '--registry',
      url(server),
      '--service',
      service,
      '--quiet-window-ms',
      '500',
      ...extra,
    ]);
    children.push(launched);
    return listening(launched);
  }

  it('registers only after warm-up, is ready only once Nacos lists it, and another process sees it', async () => {
    const service = fresh();
    const watcher = watch(url(), service);
    children.push(watcher);
    const launched = launchExample([
      '--registry',
      url(),
      '--service',
      service,
      '--warmup-ms',
      '1500',
      '--quiet-window-ms',
      '500',
    ]);
    children.push(launched);
    // the admin port is only known once listening; poll Nacos meanwhile: nothing may be registered
    const started = Date.now();
    const r = await listening(launched);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1400);
    const id = `127.0.0.1:${r.port}`;
    // readiness turned 200 only after Nacos listed the instance
    const readyLine = r.logs().find((l) => l.msg === 'ready: registered and serving');
    expect(readyLine).toBeDefined();
    expect(await ids(service)).toEqual([id]);
    expect((await readyz(r)).status).toBe(200);
    await until(() => watcher.seen().some((s) => s.ids.includes(id)), 'the other process to see the instance');
  });

  it('on SIGTERM leaves Nacos before the server closes; the other process sees it leave; nothing lost', async () => {
    const service = fresh();
    const r = await example(service);
    const id = `127.0.0.1:${r.port}`;
    const watcher = watch(url(), service);
    children.push(watcher);
    await until(() => watcher.seen().some((s) => s.ids.includes(id)), 'the watcher to see the instance');
    const agent = new Agent({ keepAlive: true });
    const slow = [call(r.port, '/work?ms=800', { agent }), call(r.port, '/work?ms=1200', { agent })];
    await new Promise((resolve) => setTimeout(resolve, 50));
    r.child.kill('SIGTERM');
    await until(async () => !(await ids(service)).includes(id), 'the instance to leave Nacos', 5000);
    const afterRemoval = await call(r.port, '/hello', { agent });
    expect(afterRemoval.status).toBe(200);
    expect(afterRemoval.headers['x-lossless-offline']).toBe('draining');
    const replies = await Promise.all(slow);
    expect(replies.map((x) => x.status)).toEqual([200, 200]);
    const { code } = await r.exited;
    expect(code).toBe(0);
    await until(() => watcher.seen().at(-1)?.ids.length === 0, 'the other process to see it leave');
    agent.destroy();
  });

  it('with Nacos down at start-up: not ready, /readyz says why, ready once Nacos is back', async ({ annotate }) => {
    const service = fresh();
    let notReady = '';
    await local.pause();
    try {
      const launched = launchExample(['--registry', url(local), '--service', service]);
      children.push(launched);
      // the example logs "listening on" only once ready; find the admin port through its log
      await until(
        () => launched.logs().some((l) => l.msg === 'registration failed, retrying'),
        'a failed registration attempt',
      );
      const adminPort = await adminPortOf(launched);
      const during = await readyz({ adminPort });
      expect(during.status).toBe(503);
      expect(during.state).toBe('registering');
      expect(during.reason).toMatch(/LOSSLESS_ERR_(NACOS_UNAVAILABLE|REGISTRY)/);
      notReady = `/readyz 503 in state ${during.state}: ${String(during.reason).slice(0, 80)}`;
    } finally {
      await local.restart();
    }
    const backAt = Date.now();
    const r = children.at(-1) as Running;
    const ready = await listening(r, 30_000);
    expect((await readyz(ready)).status).toBe(200);
    // this test's own reader lost its connection too (over gRPC): it reads once it has a new one
    const localReader =
      local === nacos ? reader : new NacosRegistry({ servers: local.addr, grpcPort: grpcPortOf(local), transport });
    try {
      await until(
        async () => (await ids(service, localReader).catch((): string[] => [])).includes(`127.0.0.1:${ready.port}`),
        'the reader to list the instance',
      );
      expect(await ids(service, localReader)).toEqual([`127.0.0.1:${ready.port}`]);
    } finally {
      if (localReader !== reader) await localReader.close();
    }
    await annotate(`${notReady}; ready ${Date.now() - backAt} ms after Nacos was back`, 'measured');
  });

  it('with Nacos down during the drain: the drain completes, nothing lost, the failure logged with a code', async ({
    annotate,
  }) => {
    const service = fresh();
    const r = await example(service, [], local);
    const agent = new Agent({ keepAlive: true });
    const slow = call(r.port, '/work?ms=600', { agent });
    await new Promise((resolve) => setTimeout(resolve, 50));
    await local.pause();
    try {
      const sentAt = Date.now();
      r.child.kill('SIGTERM');
      await until(async () => (await readyz(r)).state === 'draining', 'the drain to start');
      const during = await call(r.port, '/hello', { agent });
      expect(during.status).toBe(200);
      expect(during.headers['x-lossless-offline']).toBe('draining');
      expect((await slow).status).toBe(200);
      const { code, at } = await r.exited;
      expect(code).toBe(0);
      // bounded by the registry timeouts (5 s), not hung
      expect(at - sentAt).toBeLessThan(15_000);
      const failure = r.logs().find((l) => String(l.msg).startsWith('leaving the registry failed'));
      expect(failure?.code).toMatch(/^LOSSLESS_ERR_/);
      expect(r.logs().find((l) => String(l.msg).startsWith('drain complete'))).toMatchObject({
        registry: 'failed',
        cut: 0,
      });
      await annotate(
        `every request answered (the one during the drain marked); exit 0 after ${at - sentAt} ms; logged ${String(failure?.code)}`,
        'measured',
      );
    } finally {
      await local.restart();
      agent.destroy();
    }
  });
});

describe.each(['grpc', 'http'] as const)('Nacos with auth on, over %s', (transport: NacosTransport) => {
  let secured: RunningNacos;
  beforeAll(async () => {
    secured = await startNacos({ auth: { username: 'lossless', password: 'right-password' } });
  }, 120_000);
  afterAll(async () => {
    await secured?.stop();
  });

  it('logs in with the right credentials; the wrong ones fail with LOSSLESS_ERR_NACOS_AUTH', async () => {
    const svc = fresh();
    const instance = {
      service: svc,
      id: '127.0.0.1:42001',
      ip: '127.0.0.1',
      port: 42001,
      weight: 1,
      enabled: true,
      healthy: true,
      metadata: {},
    };
    const on = { servers: secured.addr, grpcPort: grpcPortOf(secured), transport };
    const good = new NacosRegistry({ ...on, username: 'lossless', password: 'right-password' });
    const bad = new NacosRegistry({ ...on, username: 'lossless', password: 'wrong' });
    try {
      await good.register(instance);
      expect((await good.list(svc)).map((i) => i.id)).toEqual(['127.0.0.1:42001']);
      await expect(bad.list(svc)).rejects.toMatchObject({ code: 'LOSSLESS_ERR_NACOS_AUTH' });
      await expect(bad.register({ ...instance, port: 42002, id: 'x' })).rejects.toMatchObject({
        code: 'LOSSLESS_ERR_NACOS_AUTH',
      });
      // without credentials at all, the server refuses too
      const anonymous = new NacosRegistry(on);
      await expect(anonymous.list(svc)).rejects.toMatchObject({ code: 'LOSSLESS_ERR_NACOS_REQUEST' });
      await anonymous.close();
    } finally {
      await good.deregister(instance).catch(() => {});
      await good.close();
      await bad.close();
    }
  });

  it('a provider with wrong credentials is not ready and /readyz names the auth error', async () => {
    const service = fresh();
    const launched = launchExample([
      '--registry',
      `nacos://lossless:wrong@${secured.addr}/?transport=${transport}&grpcPort=${grpcPortOf(secured)}`,
      '--service',
      service,
    ]);
    children.push(launched);
    await until(
      () => launched.logs().some((l) => l.msg === 'registration failed, retrying'),
      'a failed registration attempt',
    );
    const during = await readyz({ adminPort: await adminPortOf(launched) });
    expect(during.status).toBe(503);
    expect(during.reason).toContain('LOSSLESS_ERR_NACOS_AUTH');
  });
});

/** The admin port of an example that is not ready yet, from its "admin listening" log line. */
async function adminPortOf(r: { logs: () => { msg?: string; [k: string]: unknown }[] }): Promise<number> {
  let port: number | undefined;
  await until(() => {
    port = r.logs().find((l) => l.msg === 'admin server listening')?.port as number | undefined;
    return port !== undefined;
  }, 'the admin server to listen');
  return port as number;
}
