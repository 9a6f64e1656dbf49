// A Nacos gRPC server in the test process, on 127.0.0.1: it speaks the handshake (server check, the
// stream's setup, health checks answered "unregistered" until the stream is set up), records every
// payload, and lets a test answer requests its own way, push requests on the stream and stop.

import * as grpc from '@grpc/grpc-js';
import { decodePayload, encodePayload, type Payload } from '../../src/grpc/payload.js';

export interface Received extends Payload {
  readonly via: 'unary' | 'stream';
  readonly at: number;
}

export type Answer = { readonly type: string; readonly body: Record<string, unknown> } | 'hang';

export interface FakeNacos {
  readonly address: string;
  readonly received: Received[];
  /** Answers for unary requests; undefined for the default (success), a promise to answer later. */
  answer: (payload: Payload) => Answer | Promise<Answer> | undefined;
  /** Health checks answer 301 this many times after the stream's setup (the server registers it late). */
  unregisteredChecks: number;
  /** Open streams. */
  readonly streams: Set<grpc.ServerDuplexStream<Payload, Buffer>>;
  push(type: string, body: Record<string, unknown>): void;
  stop(): Promise<void>;
}

const ok = (type: string, extra: Record<string, unknown> = {}): Answer => ({
  type,
  body: { resultCode: 200, errorCode: 0, message: '', ...extra },
});

export async function startFakeNacos(port = 0): Promise<FakeNacos> {
  const server = new grpc.Server();
  const received: Received[] = [];
  const streams = new Set<grpc.ServerDuplexStream<Payload, Buffer>>();
  let setUp = false;
  let connection = 0;
  const fake: FakeNacos = {
    address: '',
    received,
    answer: () => undefined,
    unregisteredChecks: 0,
    streams,
    push(type, body) {
      for (const stream of streams) stream.write(encodePayload({ type, body }));
    },
    stop: () =>
      new Promise<void>((resolve) => {
        for (const stream of streams) stream.destroy();
        server.forceShutdown();
        resolve();
      }),
  };
  const respond = (payload: Payload): Answer | Promise<Answer> => {
    const custom = fake.answer(payload);
    if (custom !== undefined) return custom;
    switch (payload.type) {
      case 'ServerCheckRequest':
        return ok('ServerCheckResponse', { connectionId: `fake-${++connection}` });
      case 'HealthCheckRequest':
        if (!setUp || fake.unregisteredChecks-- > 0)
          return {
            type: 'ErrorResponse',
            body: { resultCode: 500, errorCode: 301, message: 'Connection is unregistered.' },
          };
        return ok('HealthCheckResponse');
      case 'ServiceQueryRequest':
      case 'SubscribeServiceRequest':
        return ok(payload.type.replace('Request', 'Response'), {
          serviceInfo: { name: payload.body.serviceName, groupName: payload.body.groupName, hosts: [], lastRefTime: 1 },
        });
      default:
        return ok(payload.type.replace('Request', 'Response'));
    }
  };
  server.addService(
    {
      request: {
        path: '/Request/request',
        requestStream: false,
        responseStream: false,
        requestDeserialize: decodePayload,
        requestSerialize: (b: Buffer) => b,
        responseSerialize: (b: Buffer) => b,
        responseDeserialize: (b: Buffer) => b,
      },
      requestBiStream: {
        path: '/BiRequestStream/requestBiStream',
        requestStream: true,
        responseStream: true,
        requestDeserialize: decodePayload,
        requestSerialize: (b: Buffer) => b,
        responseSerialize: (b: Buffer) => b,
        responseDeserialize: (b: Buffer) => b,
      },
    },
    {
      request: (call: grpc.ServerUnaryCall<Payload, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
        received.push({ ...call.request, via: 'unary', at: Date.now() });
        void Promise.resolve(respond(call.request)).then((answer) => {
          if (answer !== 'hang') callback(null, encodePayload(answer));
        });
      },
      requestBiStream: (stream: grpc.ServerDuplexStream<Payload, Buffer>) => {
        streams.add(stream);
        stream.on('data', (payload: Payload) => {
          received.push({ ...payload, via: 'stream', at: Date.now() });
          if (payload.type === 'ConnectionSetupRequest') setUp = true;
        });
        const gone = (): void => {
          streams.delete(stream);
        };
        stream.on('end', () => {
          gone();
          stream.end();
        });
        stream.on('error', gone);
        stream.on('cancelled', gone);
      },
    },
  );
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (error, p) =>
      error ? reject(error) : resolve(p),
    ),
  );
  return Object.assign(fake, { address: `127.0.0.1:${bound}` });
}
