// The public types of @lossless/grpc as a user meets them: what lossless() returns, what stream()
// accepts, what a discovery gives a grpc-js client.

import type { ClientOptions, Server, ServerDuplexStream, ServerWritableStream } from '@grpc/grpc-js';
import type { DrainSummary, InFlightLoad, Provider } from '@lossless/core';
import { describe, expectTypeOf, it } from 'vitest';
import { createDiscovery, type GrpcClientOptions, type LosslessDiscovery } from '../src/client/index.js';
import { type GrpcProvider, type LosslessGrpcOptions, lossless } from '../src/index.js';

describe('public types', () => {
  it('lossless() returns a GrpcProvider, a Provider with listen() and stream()', () => {
    expectTypeOf(lossless).parameters.toEqualTypeOf<[Server, LosslessGrpcOptions]>();
    expectTypeOf(lossless).returns.toEqualTypeOf<GrpcProvider>();
    expectTypeOf<GrpcProvider>().toMatchTypeOf<Provider>();
    expectTypeOf<GrpcProvider['listen']>().returns.toEqualTypeOf<Promise<number>>();
    expectTypeOf<GrpcProvider['drain']>().returns.toEqualTypeOf<Promise<DrainSummary>>();
    expectTypeOf<GrpcProvider['tracker']>().toEqualTypeOf<InFlightLoad>();
  });

  it('stream() takes the call objects of server-streaming and bidirectional handlers', () => {
    const provider = {} as GrpcProvider;
    const writable = {} as ServerWritableStream<{ q: string }, { a: string }>;
    const duplex = {} as ServerDuplexStream<{ q: string }, { a: string }>;
    expectTypeOf(() => provider.stream(writable, (call) => call.write({ a: 'bye' }))).toBeFunction();
    expectTypeOf(() => provider.stream(duplex)).toBeFunction();
  });

  it('options: health is false or a list of service names', () => {
    expectTypeOf<LosslessGrpcOptions['health']>().toEqualTypeOf<
      false | { readonly services?: readonly string[] } | undefined
    >();
    // @ts-expect-error: a grpc provider is given its server, not `server` in the options
    expectTypeOf<LosslessGrpcOptions['server']>().toBeNever();
  });

  it('a discovery gives grpc-js client options', () => {
    expectTypeOf(createDiscovery).parameters.toEqualTypeOf<[options?: GrpcClientOptions]>();
    expectTypeOf<LosslessDiscovery['clientOptions']>().toEqualTypeOf<ClientOptions>();
    expectTypeOf<LosslessDiscovery['close']>().returns.toEqualTypeOf<Promise<void>>();
  });
});
