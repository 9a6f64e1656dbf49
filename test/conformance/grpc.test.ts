// The conformance suite's promises, for a grpc-js server under @lossless/grpc, insecure and over TLS:
// what a gRPC caller and an operator notice while an instance comes online and goes offline. The
// HTTP suite (conformance.test.ts) cannot express it: gRPC callers send calls, not paths, and learn
// of a drain from metadata and GOAWAY, not from Connection: close; nor can a gRPC server mount the
// admin endpoints. Its slow call is demo.Work/Do from the rolling-restart demo.

import { connect } from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { FileRegistry } from '@lossless/core';
import { type GrpcProvider, lossless } from '@lossless/grpc';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WorkClient, workService } from '../../examples/rolling-restart/grpc-service.mjs';
import { call, refused, tempRegistry, until } from '../support.js';
import { TLS } from '../tls.js';

type Work = grpc.Client & {
  do(
    request: object,
    metadata: grpc.Metadata,
    options: grpc.CallOptions,
    callback: (error: grpc.ServiceError | null, reply?: unknown) => void,
  ): grpc.ClientUnaryCall;
};

interface Outcome {
  code: number;
  trailers: Record<string, unknown>;
}

const KINDS: [string, () => grpc.ServerCredentials, () => grpc.ChannelCredentials][] = [
  ['grpc-js, insecure', () => grpc.ServerCredentials.createInsecure(), () => grpc.credentials.createInsecure()],
  [
    'grpc-js over TLS',
    () =>
      grpc.ServerCredentials.createSsl(null, [
        { private_key: Buffer.from(TLS.key), cert_chain: Buffer.from(TLS.cert) },
      ]),
    () => grpc.credentials.createSsl(Buffer.from(TLS.cert)),
  ],
];

describe.each(KINDS)('%s', (name, serverCredentials, channelCredentials) => {
  let registry: Awaited<ReturnType<typeof tempRegistry>>;
  let reader: FileRegistry;
  const providers: GrpcProvider[] = [];
  const clients: grpc.Client[] = [];

  const boot = async (drain = { quietWindowMs: 150, maxDrainMs: 5000 }) => {
    const server = new grpc.Server();
    server.addService(workService, {
      do: (c: grpc.ServerUnaryCall<{ ms?: number }, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        setTimeout(() => callback(null, { ok: true }), c.request.ms ?? 0);
      },
    });
    const provider = lossless(server, {
      service: 'conformance',
      registry: registry.url,
      admin: { port: 0 },
      signals: false,
      exit: false,
      drain,
    });
    providers.push(provider);
    const port = await provider.listen('127.0.0.1:0', serverCredentials());
    const client = new WorkClient(`127.0.0.1:${port}`, channelCredentials()) as unknown as Work;
    clients.push(client);
    return { provider, port, client };
  };
  const work = (client: Work, ms = 0): Promise<Outcome> =>
    new Promise((resolve) => {
      const c = client.do({ ms }, new grpc.Metadata(), { deadline: Date.now() + 5000 }, () => {});
      c.on('status', (s: grpc.StatusObject) => resolve({ code: s.code, trailers: s.metadata.getMap() }));
    });
  const listed = async (id: string | undefined) => (await reader.list('conformance')).some((i) => i.id === id);

  beforeEach(async () => {
    registry = await tempRegistry();
    reader = new FileRegistry({ dir: registry.dir });
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    for (const provider of providers.splice(0)) if (provider.state !== 'stopped') await provider.destroy();
    await reader.close();
    await registry.remove();
  });

  it('is registered and ready once start() resolves, and serves', async () => {
    const { provider, port, client } = await boot();
    expect(provider.state).toBe('ready');
    expect(await listed(provider.instance?.id)).toBe(true);
    expect(provider.instance?.port).toBe(port);
    // a TLS server is registered as secure (what Spring Cloud and the lossless clients read)
    expect(provider.instance?.metadata.secure).toBe(name.includes('TLS') ? 'true' : undefined);
    expect((await call(provider.adminAddress!.port, '/readyz')).status).toBe(200);
    expect((await work(client)).code).toBe(grpc.status.OK);
  });

  it('counts calls in flight', async () => {
    const { provider, client } = await boot();
    const slow = work(client, 200);
    await until(() => provider.inFlight === 1, 'one call in flight');
    await slow;
    await until(() => provider.inFlight === 0, 'no call in flight');
  });

  it('drains: out of the registry first, every answer marked, GOAWAY on the connection, none lost', async () => {
    const { provider, port, client } = await boot();
    const session = connect(`${name.includes('TLS') ? 'https' : 'http'}://127.0.0.1:${port}`, { ca: TLS.cert });
    const goaways: number[] = [];
    session.on('goaway', (code) => goaways.push(code));
    session.on('error', () => {});
    await new Promise((resolve) => session.once('connect', resolve));
    const slow = [work(client, 400), work(client, 250)];
    await until(() => provider.inFlight === 2, 'two calls in flight');
    const id = provider.instance?.id;
    const drained = provider.drain();
    await until(async () => !(await listed(id)), 'the instance to leave the registry');
    expect(provider.state).toBe('draining');
    const during = await work(client);
    const outcomes = [...(await Promise.all(slow)), during];
    expect(outcomes.map((o) => o.code)).toEqual([0, 0, 0]);
    for (const o of outcomes) expect(o.trailers['x-lossless-offline']).toBe('draining');
    await until(() => goaways.length > 0, 'GOAWAY on the idle connection');
    expect(goaways[0]).toBe(0);
    const summary = await drained;
    expect(summary).toMatchObject({ outcome: 'idle', registry: 'removed', cut: [], inFlightAtStart: 2 });
    expect(await refused(port)).toBe(true);
    await until(() => session.closed || session.destroyed, 'the connection closed');
    session.destroy();
  });

  it('POST /prestop on the admin port answers when the drain is over', async () => {
    const { provider, client } = await boot();
    const slow = work(client, 300);
    await until(() => provider.inFlight === 1, 'a call in flight');
    const started = Date.now();
    const reply = await call(provider.adminAddress!.port, '/prestop', { method: 'POST' });
    expect(reply.status).toBe(200);
    expect(JSON.parse(reply.body)).toMatchObject({ trigger: 'prestop', outcome: 'idle' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect((await slow).code).toBe(grpc.status.OK);
    await until(() => provider.state === 'stopped', 'the provider to stop');
  });
});
