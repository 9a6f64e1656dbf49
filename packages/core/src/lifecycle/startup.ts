// The steps of a provider's start before it registers: the server listening (and the admin server
// beside it), then the warm-up hooks one after another. Each step stops at once when a drain begins;
// a failure comes back as a coded error for the provider to turn into the `failed` state.

import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AdminHandler } from '../admin/handler.js';
import { listenAdmin } from '../admin/server.js';
import { ListenFailedError, StartAbortedError, WarmupFailedError, WarmupTimeoutError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ResolvedProviderOptions, WarmupHook } from '../options.js';
import type { Transport } from '../server/transport.js';
import { DeadlineError, withDeadline } from './timeout.js';

/** A start step failed: the coded error, and fields for its log line. */
export class StartFailure extends Error {
  constructor(
    readonly error: ListenFailedError | WarmupFailedError | WarmupTimeoutError,
    readonly fields: object = {},
  ) {
    super(error.message);
  }
}

/** Waits for the server to listen, then starts the admin server on the same address unless told otherwise. */
export async function listening(
  transport: Transport,
  admin: ResolvedProviderOptions['admin'],
  handler: AdminHandler,
  log: Logger,
  signal: AbortSignal,
): Promise<{ address: AddressInfo; adminServer: Server | undefined }> {
  try {
    const address = await abortable(transport.listening(), 'starting', signal);
    const adminServer =
      admin === false
        ? undefined
        : await abortable(listenAdmin(handler, admin.port, admin.host ?? address.address, log), 'starting', signal);
    return { address, adminServer };
  } catch (error) {
    if (error instanceof StartAbortedError) throw error;
    throw new StartFailure(error instanceof ListenFailedError ? error : new ListenFailedError('server', error));
  }
}

/** Runs the warm-up hooks in order, each under its timeout; `onHook` hears which one runs. */
export async function warmUp(
  hooks: readonly Required<WarmupHook>[],
  signal: AbortSignal,
  onHook: (name: string) => void,
): Promise<void> {
  for (const hook of hooks) {
    onHook(hook.name);
    try {
      await withDeadline(hook.run, hook.timeoutMs, signal);
    } catch (error) {
      if (signal.aborted) throw new StartAbortedError('warming');
      throw new StartFailure(
        error instanceof DeadlineError
          ? new WarmupTimeoutError(hook.name, hook.timeoutMs)
          : new WarmupFailedError(hook.name, error),
        { hook: hook.name },
      );
    }
  }
  if (signal.aborted) throw new StartAbortedError('warming');
}

async function abortable<T>(promise: Promise<T>, state: string, signal: AbortSignal): Promise<T> {
  if (signal.aborted) throw new StartAbortedError(state);
  return await new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new StartAbortedError(state));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
