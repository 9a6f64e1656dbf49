// Waiting for a server to listen and closing it at the end of a drain: idle keep-alive sockets are
// closed only then (closing them earlier resets callers about to reuse them), and connections still
// open after the close timeout are destroyed.

import type { Server } from 'node:http';

export function waitListening(server: Server): Promise<void> {
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

export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      resolve();
      return;
    }
    server.close(() => resolve());
    // server.close() closes idle keep-alive sockets too (Node >= 19); only now, at the very end
    server.closeIdleConnections();
  });
}

/** Waits for `closed`; after `timeoutMs`, calls `onTimeout`, destroys every connection and waits again. */
export async function boundedClose(
  server: Server,
  closed: Promise<void>,
  timeoutMs: number,
  onTimeout: () => void,
): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  const result = await Promise.race([closed.then(() => 'closed' as const), timedOut]);
  clearTimeout(timer);
  if (result === 'timeout') {
    onTimeout();
    server.closeAllConnections();
    await closed;
  }
}
