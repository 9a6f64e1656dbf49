// Waiting for a server to listen and closing it at the end of a drain: idle keep-alive sockets are
// closed only then (closing them earlier resets callers about to reuse them), and connections still
// open after the close timeout are destroyed. An http2 server's close() leaves its sessions open
// (nodejs/node#57611): its sessions are closed through the Http2Sessions that followed them.

import type { Server } from 'node:http';
import type { ProviderServer } from '../options.js';
import { type Http2Sessions, isHttp2Server } from './http2.js';

export function waitListening(server: ProviderServer): Promise<void> {
  if (server.listening) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onListening = (): void => {
      server.removeListener('error', onError);
      resolve();
    };
    const onError = (error: Error): void => {
      server.removeListener('listening', onListening);
      reject(error);
    };
    server.once('listening', onListening);
    server.once('error', onError);
  });
}

/**
 * Stops accepting, closes idle connections (HTTP/1.1 keep-alive sockets; every HTTP/2 session,
 * which ends once its streams have) and resolves once every connection is gone.
 */
export function closeServer(server: ProviderServer, sessions?: Http2Sessions): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      resolve();
      return;
    }
    server.close(() => resolve());
    // server.close() closes idle keep-alive sockets too (Node >= 19); only now, at the very end
    if (isHttp2Server(server)) sessions?.close();
    else (server as Server).closeIdleConnections();
  });
}

/** Destroys every connection of `server` at once. */
export function destroyConnections(server: ProviderServer, sessions?: Http2Sessions): void {
  if (isHttp2Server(server)) sessions?.destroy();
  else (server as Server).closeAllConnections();
}

/** Waits for `closed`; after `timeoutMs`, calls `onTimeout` (which destroys what is left) and waits again. */
export async function boundedClose(closed: Promise<void>, timeoutMs: number, onTimeout: () => void): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  const result = await Promise.race([closed.then(() => 'closed' as const), timedOut]);
  clearTimeout(timer);
  if (result === 'timeout') {
    onTimeout();
    await closed;
  }
}
