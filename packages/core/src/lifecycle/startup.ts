// A provider's start: the server listening (and the admin server beside it), the warm-up hooks one
// after another, then registered and read back, watched from then on, onReady hooks. Each step stops
// at once when a drain begins (StartAbortedError); a listen or warm-up failure is logged, emitted and
// leaves the provider `failed`, unregistered and not ready.

import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AdminHandler } from '../admin/handler.js';
import { listenAdmin } from '../admin/server.js';
import {
  ListenFailedError,
  type LosslessError,
  RegistryError,
  StartAbortedError,
  WarmupFailedError,
  WarmupTimeoutError,
} from '../errors.js';
import type { Logger } from '../logger.js';
import type { ResolvedProviderOptions, WarmupHook } from '../options.js';
import type { Instance, ProviderRegistry } from '../registry/types.js';
import type { Transport } from '../server/transport.js';
import type { Hooks } from './hooks.js';
import { describeInstance, weightRamp } from './instance.js';
import type { Registration } from './registration.js';
import type { StateMachine } from './state-machine.js';
import { DeadlineError, withDeadline } from './timeout.js';

export interface StartupContext {
  readonly options: ResolvedProviderOptions;
  readonly registry: ProviderRegistry;
  readonly transport: Transport;
  readonly adminHandler: AdminHandler;
  readonly warmups: readonly Required<WarmupHook>[];
  readonly machine: StateMachine;
  readonly registration: Registration;
  readonly onReady: Hooks;
  readonly log: Logger;
  /** Aborted when a drain begins. */
  readonly signal: AbortSignal;
  /** The admin server, once it listens (the provider closes it after the drain). */
  readonly adminListening: (server: Server | undefined) => void;
  /** Emits the provider's `ready` with the instance registered. */
  readonly ready: (instance: Instance) => void;
  /** Logs a coded failure and emits it as the provider's `error`. */
  readonly report: (error: LosslessError) => void;
  /** Emits the provider's `error` (for failures logged here their own way). */
  readonly emitError: (error: LosslessError) => void;
}

/** Runs the start; resolves once ready and the onReady hooks ran. */
export async function startUp(ctx: StartupContext): Promise<void> {
  const { options, registry, transport, machine, registration, log, signal } = ctx;
  void checkRegistry(ctx);
  machine.explain('waiting for the server to listen');
  let address: AddressInfo;
  try {
    const up = await listening(transport, options.admin, ctx.adminHandler, log, signal);
    address = up.address;
    ctx.adminListening(up.adminServer);
    machine.transition('warming', 'running warm-up hooks');
    await warmUp(ctx.warmups, signal, (name) => machine.explain(`warm-up hook "${name}" running`));
  } catch (error) {
    if (!(error instanceof StartFailure)) throw error;
    machine.transition('failed', error.error.message);
    log.error({ err: error.error, code: error.error.code, ...error.fields }, error.error.message);
    ctx.emitError(error.error);
    throw error.error;
  }

  const ramp = weightRamp(options, registry);
  const instance = describeInstance(options, transport.secure, address, ramp);
  machine.transition('registering', `registering in the ${registry.kind} registry`);
  await registration.register(instance, signal, (reason) => machine.explain(reason));
  if (signal.aborted) throw new StartAbortedError('registering');
  machine.transition('ready', `registered in the ${registry.kind} registry`);
  log.info({ instance }, 'ready: registered and serving');
  registration.watch(machine.registrationWatch(registry.kind), ramp);
  ctx.ready(instance);
  await ctx.onReady.run(options.hookTimeoutMs, ctx.report);
}

/**
 * A registry this process cannot use (a file registry's directory it cannot create or write) is
 * reported at once, not only through the retries of the registration, which go on.
 */
async function checkRegistry(ctx: StartupContext): Promise<void> {
  const { registry } = ctx;
  if (typeof registry.check !== 'function') return;
  try {
    await registry.check();
  } catch (cause) {
    const error = new RegistryError('check', ctx.options.service, cause, `${registry.kind} registry`);
    ctx.machine.registryUnusable(`the ${registry.kind} registry cannot be used: ${error.message}`);
    ctx.log.error(
      { err: error, code: error.code },
      `${error.message}; the instance cannot register until this is fixed (registration keeps trying)`,
    );
    ctx.emitError(error);
  }
}

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
