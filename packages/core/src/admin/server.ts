// The admin server: the admin handler on a port of its own (default 9797), so that probes and the
// preStop call neither count as traffic nor depend on the application's routes.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ListenFailedError } from '../errors.js';
import type { Logger } from '../logger.js';
import { boundedClose, closeServer, destroyConnections } from '../server/close.js';
import { type AdminHandler, notFound } from './handler.js';

/**
 * How long closing the admin server may take at the very end (after the drain, the onClose hooks and
 * the registry's close), in ms: the last step before exit, part of the grace period a platform must allow.
 */
export const ADMIN_CLOSE_TIMEOUT_MS = 1000;

export async function listenAdmin(handler: AdminHandler, port: number, host: string, log: Logger): Promise<Server> {
  const server = createServer((req, res) => {
    if (!handler(req, res)) notFound(req, res);
  });
  // probes are short: do not hold keep-alive sockets open past the drain
  server.keepAliveTimeout = 1000;
  server.requestTimeout = 10_000;
  server.headersTimeout = 5000;
  server.maxRequestsPerSocket = 100;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(new ListenFailedError(`admin server on ${host}:${port}`, error, 'set admin.port or LOSSLESS_ADMIN_PORT')),
    );
    server.listen(port, host, () => resolve());
  });
  const bound = server.address() as AddressInfo;
  log.info({ host: bound.address, port: bound.port }, 'admin server listening');
  return server;
}

export async function closeAdmin(server: Server): Promise<void> {
  // let responses under way (POST /prestop) finish before closing
  await new Promise<void>((resolve) => setImmediate(resolve));
  await boundedClose(closeServer(server), ADMIN_CLOSE_TIMEOUT_MS, () => destroyConnections(server));
}
