// Test doubles for the CLI: captured output streams, and a real node:http server on 127.0.0.1 that
// answers like a provider's admin endpoints (or however a test needs).

import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CliContext } from '../src/context.js';

export interface Captured {
  readonly stdout: { write(text: string): boolean; text: string };
  readonly stderr: { write(text: string): boolean; text: string };
}

/** A context with captured output, no environment and the real fetch; `overrides` replace parts of it. */
export function capture(overrides: Partial<CliContext> = {}): Captured & Partial<CliContext> {
  const sink = () => ({
    text: '',
    write(chunk: string) {
      this.text += chunk;
      return true;
    },
  });
  return { env: {}, ...overrides, stdout: sink(), stderr: sink() };
}

export interface Seen {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
}

export interface AdminServer {
  readonly url: string;
  readonly port: number;
  readonly seen: Seen[];
  close(): Promise<void>;
}

const servers = new Set<Server>();

/** Starts a server on 127.0.0.1, port 0, that records each request and passes it to `handle`. */
export async function adminServer(handle: (req: IncomingMessage, res: ServerResponse) => void): Promise<AdminServer> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    req.resume();
    handle(req, res);
  });
  servers.add(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}`, port, seen, close: () => closeServer(server) };
}

/** Closes every server the tests started (for afterEach). */
export async function closeServers(): Promise<void> {
  await Promise.all([...servers].map(closeServer));
}

function closeServer(server: Server): Promise<void> {
  servers.delete(server);
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** A port on 127.0.0.1 where nothing listens: bound once, then closed. */
export async function closedPort(): Promise<number> {
  const server = await adminServer(() => {});
  await server.close();
  return server.port;
}
