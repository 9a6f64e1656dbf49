// The provider of a grpc-js Server: @lossless/core's lifecycle (warm-up, delayed registration read
// back, readiness, the adaptive drain) run through the gRPC transport (server/transport.ts), with the
// standard health service (grpc.health.v1.Health, from grpc-health-check) answering SERVING only while
// the provider is ready: NOT_SERVING before, from the drain's start, and while it registers again
// after its registration was lost.

import { type Metadata, type Server, ServerCredentials } from '@grpc/grpc-js';
import {
  type AnyResponse,
  InvalidOptionError,
  ListenFailedError,
  Provider,
  type ProviderOptions,
  type StateChange,
} from '@lossless/core';
import { HealthImplementation, type ServingStatus } from 'grpc-health-check';
import { CallTracker } from './server/calls.js';
import { GrpcTransport } from './server/transport.js';

/** A handler's call that can be declared long-lived: a server-streaming or bidirectional call. */
export interface StreamingCall {
  readonly metadata: Metadata;
  end(): unknown;
}

export interface LosslessGrpcOptions extends Omit<ProviderOptions, 'server'> {
  /**
   * The standard health service (`grpc.health.v1.Health`) that lossless adds to the server: its status
   * is SERVING only while the provider is ready. `services`: the names it answers for (default `['']`,
   * the whole server, what Kubernetes' gRPC probe asks by default). `false`: no health service.
   */
  readonly health?: false | { readonly services?: readonly string[] };
}

export class GrpcProvider extends Provider {
  readonly server: Server;
  /** The health service (grpc-health-check's), unless `health: false`. */
  readonly health: HealthImplementation | undefined;
  readonly #calls: CallTracker;
  readonly #transport: GrpcTransport;

  constructor(server: Server, options: LosslessGrpcOptions) {
    if (typeof server?.bindAsync !== 'function' || typeof server.tryShutdown !== 'function')
      throw new InvalidOptionError('server', server, 'expected a @grpc/grpc-js Server');
    const { health, server: _server, ...rest } = (options ?? {}) as LosslessGrpcOptions & { server?: unknown };
    const services = healthServices(health);
    super(rest);
    this.server = server;
    this.#calls = new CallTracker();
    const { maxDrainMs, closeTimeoutMs } = this.options.drain;
    this.#transport = new GrpcTransport(server, this.#calls, maxDrainMs + closeTimeoutMs);
    this.attachTransport(this.#transport);
    if (services !== undefined) {
      const health = new HealthImplementation(Object.fromEntries(services.map((s) => [s, 'NOT_SERVING'])));
      health.addToServer(server);
      this.health = health;
      this.on('state', (change: StateChange) => {
        const status: ServingStatus = change.to === 'ready' ? 'SERVING' : 'NOT_SERVING';
        for (const service of services) health.setStatus(service, status);
      });
    }
  }

  /**
   * Binds `port` (`host:port`, as grpc-js' bindAsync takes it; default insecure credentials), then
   * resolves with the bound port number once the instance is warmed up, registered and ready. Rejects
   * when the port cannot be bound (`LOSSLESS_ERR_LISTEN`, grpc-js' error as its cause) or a warm-up
   * hook fails.
   */
  async listen(port: string, credentials: ServerCredentials = ServerCredentials.createInsecure()): Promise<number> {
    const bound = await new Promise<number>((resolve, reject) => {
      this.server.bindAsync(port, credentials, (error, actual) =>
        // grpc-js says why in its message only ("No address added out of total 1 resolved errors:
        // [listen EADDRINUSE: ...]"): the coded error of the HTTP providers, with grpc-js' as its cause
        error === null ? resolve(actual) : reject(new ListenFailedError(`gRPC server on ${port}`, error)),
      );
    });
    await this.start();
    return bound;
  }

  /**
   * Declares a long-lived call (a server-streaming or bidirectional call that does not end by itself:
   * a watch, a subscription): a drain does not wait for it; once its wait is over (nothing else in
   * flight and the quiet window passed, or drain.maxDrainMs), `end(call)` says goodbye: a last message,
   * a status. Default: `call.end()` (status OK, the marker in its trailers). Without this a stream
   * counts as in flight: the drain waits for it until drain.maxDrainMs, then cuts it (UNAVAILABLE,
   * exit code 1).
   */
  override stream<R extends AnyResponse | StreamingCall>(call: R, end: (call: R) => unknown = (c) => c.end()): void {
    if (typeof end !== 'function') throw new InvalidOptionError('end', end, 'expected a function');
    const target = call as StreamingCall;
    if (typeof call !== 'object' || call === null || !('metadata' in call) || !this.#calls.stream(target, end as never))
      throw new InvalidOptionError(
        'call',
        call,
        'expected the call object a handler of this server was given (server-streaming or bidirectional)',
      );
  }
}

function healthServices(health: LosslessGrpcOptions['health']): readonly string[] | undefined {
  if (health === false) return undefined;
  if (health === undefined) return [''];
  if (typeof health !== 'object' || health === null)
    throw new InvalidOptionError('health', health, 'expected false or { services }');
  for (const key of Object.keys(health))
    if (key !== 'services') throw new InvalidOptionError(`health.${key}`, health[key as never], 'unknown option');
  const services = health.services ?? [''];
  if (!Array.isArray(services) || services.some((s) => typeof s !== 'string'))
    throw new InvalidOptionError('health.services', services, 'expected an array of service names');
  return services;
}

/** Wires lossless into a grpc-js `server`: call it before `server.bindAsync()` (or use `provider.listen()`). */
export function lossless(server: Server, options: LosslessGrpcOptions): GrpcProvider {
  return new GrpcProvider(server, options);
}
