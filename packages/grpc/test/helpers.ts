// Test helpers of @lossless/grpc: a small service with JSON messages (no .proto to load), a client
// for it, an in-memory registry that records the order of its calls, and a poll with a deadline.

import { connect } from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import type { Instance, InstanceListener, Registry } from '@lossless/core';

const json = {
  serialize: (value: unknown) => Buffer.from(JSON.stringify(value)),
  deserialize: (buffer: Buffer) => JSON.parse(buffer.toString()) as unknown,
};
const method = (name: string, requestStream: boolean, responseStream: boolean) => ({
  path: `/test.Echo/${name}`,
  requestStream,
  responseStream,
  requestSerialize: json.serialize,
  requestDeserialize: json.deserialize,
  responseSerialize: json.serialize,
  responseDeserialize: json.deserialize,
  originalName: name,
});

/** Sleep: unary, answers `{ ok: true, ms }` after `ms`. Ticks: server streaming, `n` messages every `everyMs` (n 0: forever). */
export const echoService = {
  sleep: method('Sleep', false, false),
  ticks: method('Ticks', false, true),
  chat: method('Chat', true, true),
} as unknown as grpc.ServiceDefinition;

export type Ticks = grpc.ServerWritableStream<{ n?: number; everyMs?: number }, { i: number }>;

export interface Hooks {
  /** Called with every Ticks call (to declare it long-lived, for example). */
  onTicks?: (call: Ticks) => void;
}

export const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export function echoImplementation(hooks: Hooks = {}): grpc.UntypedServiceImplementation {
  return {
    sleep: (
      call: grpc.ServerUnaryCall<{ ms?: number; fail?: number }, unknown>,
      callback: grpc.sendUnaryData<unknown>,
    ) => {
      const { ms = 0, fail } = call.request;
      setTimeout(() => {
        if (fail !== undefined) callback({ code: fail, details: 'asked to fail' });
        else callback(null, { ok: true, ms });
      }, ms);
    },
    ticks: (call: Ticks) => {
      const { n = 0, everyMs = 20 } = call.request;
      let i = 0;
      const timer = setInterval(() => {
        if (call.writableEnded || call.cancelled) {
          clearInterval(timer);
          return;
        }
        call.write({ i: i++ });
        if (n > 0 && i >= n) {
          clearInterval(timer);
          call.end();
        }
      }, everyMs);
      call.on('cancelled', () => clearInterval(timer));
      call.on('finish', () => clearInterval(timer));
      hooks.onTicks?.(call);
    },
    chat: (call: grpc.ServerDuplexStream<unknown, unknown>) => {
      call.on('data', (message) => call.write(message));
      call.on('end', () => call.end());
    },
  };
}

export const EchoClient = grpc.makeGenericClientConstructor(echoService as never, 'Echo');
export type Echo = InstanceType<typeof EchoClient>;

export interface Outcome {
  code: number;
  details: string;
  /** Initial metadata (response headers). */
  headers: Record<string, unknown>;
  /** Trailing metadata (for an error: the status' metadata). */
  trailers: Record<string, unknown>;
}

/** One Sleep call; resolves with its status and both metadata, never rejects. */
export function sleepCall(
  client: grpc.Client,
  request: { ms?: number; fail?: number } = {},
  options: grpc.CallOptions = {},
): Promise<Outcome> {
  return new Promise((resolve) => {
    let headers: Record<string, unknown> = {};
    const call = client.makeUnaryRequest(
      '/test.Echo/Sleep',
      json.serialize,
      json.deserialize,
      request,
      new grpc.Metadata(),
      options,
      () => {},
    );
    call.on('metadata', (m: grpc.Metadata) => {
      headers = m.getMap();
    });
    call.on('status', (s: grpc.StatusObject) =>
      resolve({ code: s.code, details: s.details, headers, trailers: s.metadata.getMap() }),
    );
  });
}

/** The health service's Check, as a probe would ask it. */
export function healthCheck(port: number, service = ''): Promise<string> {
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  return new Promise<string>((resolve) => {
    client.makeUnaryRequest(
      '/grpc.health.v1.Health/Check',
      // HealthCheckRequest { string service = 1; }
      (r: { service: string }) => {
        const s = Buffer.from(r.service);
        return s.length === 0 ? Buffer.alloc(0) : Buffer.concat([Buffer.from([0x0a, s.length]), s]);
      },
      // HealthCheckResponse { ServingStatus status = 1; }: 0 UNKNOWN, 1 SERVING, 2 NOT_SERVING
      (b: Buffer) =>
        ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'][b.length >= 2 ? (b[1] as number) : 0] ?? '?',
      { service },
      (error: grpc.ServiceError | null, status?: string) => {
        client.close();
        resolve(error === null ? (status ?? 'UNKNOWN') : `error ${error.code}`);
      },
    );
  });
}

/** A raw HTTP/2 session to the server, recording every GOAWAY it receives (code, last stream id, time). */
export function watchGoaways(port: number): {
  goaways: { code: number; last: number; at: number }[];
  close: () => void;
} {
  const session = connect(`http://127.0.0.1:${port}`);
  const goaways: { code: number; last: number; at: number }[] = [];
  session.on('goaway', (code, last) => goaways.push({ code, last, at: Date.now() }));
  session.on('error', () => {});
  return { goaways, close: () => session.destroy() };
}

/** Polls `check` until it holds; throws after `timeoutMs` with `what` in the message. */
export async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(5);
  }
}

/** An in-memory registry that records its calls, in order, with their time. */
export class MemoryRegistry implements Registry {
  readonly kind = 'memory';
  readonly readsBack = true;
  readonly supportsEnable = true;
  readonly calls: { call: string; at: number }[] = [];
  readonly instances = new Map<string, Instance>();
  /** While set, register() waits for it. */
  gate: Promise<void> | undefined;

  async register(instance: Instance): Promise<void> {
    this.calls.push({ call: 'register', at: Date.now() });
    await this.gate;
    this.instances.set(instance.id, instance);
  }
  async deregister(instance: Instance): Promise<void> {
    this.calls.push({ call: 'deregister', at: Date.now() });
    this.instances.delete(instance.id);
  }
  async setEnabled(instance: Instance, enabled: boolean): Promise<void> {
    const current = this.instances.get(instance.id);
    if (current !== undefined) this.instances.set(instance.id, { ...current, enabled });
  }
  async setWeight(instance: Instance, weight: number): Promise<void> {
    const current = this.instances.get(instance.id);
    if (current !== undefined) this.instances.set(instance.id, { ...current, weight });
  }
  async lookup(instance: Instance): Promise<Instance | undefined> {
    return this.instances.get(instance.id);
  }
  async list(service: string): Promise<Instance[]> {
    return [...this.instances.values()].filter((i) => i.service === service);
  }
  subscribe(_service: string, _listener: InstanceListener): () => void {
    return () => {};
  }
  async close(): Promise<void> {}
}

/** A discovery registry the test sets the list of: pushes each change to subscribers. */
export class PushRegistry implements Registry {
  readonly kind = 'push';
  readonly readsBack = false;
  readonly supportsEnable = false;
  instances: Instance[] = [];
  lists = 0;
  readonly #listeners = new Set<InstanceListener>();

  set(instances: Instance[]): void {
    this.instances = instances;
    for (const listener of this.#listeners) listener(instances);
  }
  async list(): Promise<Instance[]> {
    this.lists++;
    return this.instances;
  }
  subscribe(_service: string, listener: InstanceListener): () => void {
    this.#listeners.add(listener);
    setImmediate(() => listener(this.instances));
    return () => this.#listeners.delete(listener);
  }
  async register(): Promise<void> {}
  async deregister(): Promise<void> {}
  async setEnabled(): Promise<void> {}
  async setWeight(): Promise<void> {}
  async lookup(): Promise<Instance | undefined> {
    return undefined;
  }
  async close(): Promise<void> {}
}

/** An instance of `service` at 127.0.0.1:port, registered at `registeredAt` (ms since the epoch). */
/** A registration time an hour before the tests started: an instance warm long ago. */
const WARM_SINCE = Date.now() - 3_600_000;

export function instanceAt(port: number, registeredAt = WARM_SINCE, extra: Partial<Instance> = {}): Instance {
  return {
    service: 'echo',
    id: `127.0.0.1:${port}`,
    ip: '127.0.0.1',
    port,
    weight: 100,
    enabled: true,
    healthy: true,
    metadata: { 'lossless.registered-at': String(registeredAt), 'lossless.warmup-ms': '60000' },
    ...extra,
  };
}

/** A plain grpc-js server of the echo service that counts the calls it got. */
export async function plainServer(
  implementation: grpc.UntypedServiceImplementation = echoImplementation(),
): Promise<{ server: grpc.Server; port: number; calls: () => number }> {
  let calls = 0;
  const server = new grpc.Server({
    interceptors: [
      (_method, call) => {
        calls++;
        return call as grpc.ServerInterceptingCall;
      },
    ],
  });
  server.addService(echoService, implementation);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  return { server, port, calls: () => calls };
}
