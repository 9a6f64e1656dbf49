// Test helpers shared by the core unit tests.

import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Instance, InstanceListener, Registry } from '../src/registry/types.js';

/** Polls `check` until it holds; throws after `timeoutMs` with `what` in the message. */
export async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** A server whose requests wait `?ms=N` before answering 200 "ok". */
export const slowHandler: Handler = (req, res) => {
  const ms = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('ms') ?? 0);
  setTimeout(() => res.end('ok'), ms);
};

export async function listen(handler: Handler = slowHandler): Promise<{ server: Server; port: number }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export function get(port: number, path: string, agent: import('node:http').Agent | false = false): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** An in-memory registry that records every call, in order, and can be told to fail. */
export class MemoryRegistry implements Registry {
  readonly kind = 'memory';
  readonly readsBack = true;
  readonly supportsEnable = true;
  readonly calls: string[] = [];
  readonly instances = new Map<string, Instance>();
  failRegister = 0;
  failDeregister = false;
  hangDeregister = false;
  /** lookup() rejects while true: the registry cannot be reached. */
  unreachable = false;

  async register(instance: Instance): Promise<void> {
    this.calls.push(`register ${instance.id}`);
    if (this.failRegister > 0) {
      this.failRegister--;
      throw new Error('registry unreachable');
    }
    this.instances.set(instance.id, instance);
  }
  async deregister(instance: Instance): Promise<void> {
    this.calls.push(`deregister ${instance.id}`);
    if (this.hangDeregister) await new Promise(() => {});
    if (this.failDeregister) throw new Error('registry unreachable');
    this.instances.delete(instance.id);
  }
  async setEnabled(instance: Instance, enabled: boolean): Promise<void> {
    this.calls.push(`setEnabled ${instance.id} ${enabled}`);
    const current = this.instances.get(instance.id);
    if (current !== undefined) this.instances.set(instance.id, { ...current, enabled });
  }
  async setWeight(instance: Instance, weight: number): Promise<void> {
    this.calls.push(`setWeight ${instance.id} ${weight}`);
    const current = this.instances.get(instance.id);
    if (current !== undefined) this.instances.set(instance.id, { ...current, weight });
  }
  async lookup(instance: Instance): Promise<Instance | undefined> {
    if (this.unreachable) throw new Error('registry unreachable');
    return this.instances.get(instance.id);
  }
  async list(service: string): Promise<Instance[]> {
    return [...this.instances.values()].filter((i) => i.service === service);
  }
  subscribe(_service: string, _listener: InstanceListener): () => void {
    return () => {};
  }
  async close(): Promise<void> {
    this.calls.push('close');
  }
}
