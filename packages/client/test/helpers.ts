// Test helpers shared by the client unit tests: a seeded PRNG, an in-memory registry that counts its
// reads and can push lists to subscribers, instance builders, real HTTP servers and polling.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Instance, type InstanceListener, type Logger, METADATA_KEYS, type Registry } from '@lossless/core';

/** mulberry32: a small seeded PRNG, so that statistical tests are reproducible. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A seed from a label (FNV-1a), so that each statistical test has its own reproducible stream. */
export function seedOf(label: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** Polls `check` until it holds; throws after `timeoutMs` with `what` in the message. */
export async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Rejects with a clear message when `promise` does not settle within `ms` (instead of hanging the test). */
export function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** Lets pending microtasks and one turn of I/O callbacks run. */
export function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export interface InstanceSpec {
  readonly ip?: string;
  readonly port?: number;
  readonly weight?: number;
  readonly enabled?: boolean;
  readonly healthy?: boolean;
  /** `lossless.registered-at`, wall-clock ms. */
  readonly registeredAt?: number;
  /** `lossless.warmup-ms`. */
  readonly warmupMs?: number;
}

export function instance(service: string, id: string, spec: InstanceSpec = {}): Instance {
  const metadata: Record<string, string> = {};
  if (spec.registeredAt !== undefined) metadata[METADATA_KEYS.registeredAt] = String(spec.registeredAt);
  if (spec.warmupMs !== undefined) metadata[METADATA_KEYS.warmupMs] = String(spec.warmupMs);
  return {
    service,
    id,
    ip: spec.ip ?? '127.0.0.1',
    port: spec.port ?? 8080,
    weight: spec.weight ?? 100,
    enabled: spec.enabled ?? true,
    healthy: spec.healthy ?? true,
    metadata,
  };
}

interface Subscription {
  readonly service: string;
  readonly listener: InstanceListener;
  readonly onError: ((error: Error) => void) | undefined;
}

/**
 * An in-memory registry. `listed` is what `list()` answers (and what a subscription gets at first);
 * `push()` sends a list to the subscribers as a change notification. Reads are counted.
 */
export class TestRegistry implements Registry {
  readonly kind = 'memory';
  readonly readsBack = true;
  readonly supportsEnable = true;
  listed: Instance[] = [];
  listCalls = 0;
  /** Settled list() reads, to know that a refresh finished. */
  listsDone = 0;
  /** When false, subscribing delivers nothing (a registry that never answers). */
  deliverOnSubscribe = true;
  /** When set, list() waits for it. */
  listGate: Promise<void> | undefined;
  readonly subscriptions = new Set<Subscription>();

  constructor(listed: Instance[] = []) {
    this.listed = listed;
  }

  async register(instance: Instance): Promise<void> {
    this.listed = [...this.listed.filter((i) => i.id !== instance.id), instance];
  }
  async deregister(instance: Instance): Promise<void> {
    this.listed = this.listed.filter((i) => i.id !== instance.id);
  }
  async setEnabled(instance: Instance, enabled: boolean): Promise<void> {
    this.listed = this.listed.map((i) => (i.id === instance.id ? { ...i, enabled } : i));
  }
  async setWeight(instance: Instance, weight: number): Promise<void> {
    this.listed = this.listed.map((i) => (i.id === instance.id ? { ...i, weight } : i));
  }
  async lookup(instance: Instance): Promise<Instance | undefined> {
    return this.listed.find((i) => i.id === instance.id);
  }
  async list(service: string): Promise<Instance[]> {
    this.listCalls++;
    try {
      if (this.listGate !== undefined) await this.listGate;
      return this.listed.filter((i) => i === null || typeof i !== 'object' || i.service === service);
    } finally {
      this.listsDone++;
    }
  }
  subscribe(service: string, listener: InstanceListener, onError?: (error: Error) => void): () => void {
    const subscription: Subscription = { service, listener, onError };
    this.subscriptions.add(subscription);
    if (this.deliverOnSubscribe) {
      const snapshot = [...this.listed];
      queueMicrotask(() => {
        if (this.subscriptions.has(subscription)) listener(snapshot);
      });
    }
    return () => {
      this.subscriptions.delete(subscription);
    };
  }
  /** Notifies the subscribers of `service` of a list (by default what list() answers). */
  push(instances: Instance[] = this.listed, service?: string): void {
    for (const s of this.subscriptions) if (service === undefined || s.service === service) s.listener([...instances]);
  }
  async close(): Promise<void> {
    this.subscriptions.clear();
  }
}

export interface LogLine {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly obj: Record<string, unknown>;
  readonly msg: string | undefined;
}

export function recordingLogger(): Logger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at =
    (level: LogLine['level']) =>
    (obj: object, msg?: string): void => {
      lines.push({ level, obj: obj as Record<string, unknown>, msg });
    };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

export interface TestServer {
  readonly server: Server;
  readonly port: number;
  hits: number;
  handler: (req: IncomingMessage, res: ServerResponse) => void;
}

/** A server on 127.0.0.1, port 0, whose handler can be swapped, counting the requests it receives. */
export async function startServer(handler: TestServer['handler']): Promise<TestServer> {
  const server = createServer((req, res) => {
    s.hits++;
    s.handler(req, res);
  });
  const s: TestServer = { server, port: 0, hits: 0, handler };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  (s as { port: number }).port = (server.address() as AddressInfo).port;
  return s;
}

export async function stopServer(s: TestServer): Promise<void> {
  s.server.closeAllConnections();
  await new Promise<void>((resolve) => s.server.close(() => resolve()));
}
