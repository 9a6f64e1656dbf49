// The provider's named lifecycle hooks (onReady, preDrain, onClose): validated when added, run one
// after another under the hook timeout; a failing hook is logged with its code and never stops the
// phase it belongs to.

import { HookFailedError, ProviderStateError } from '../errors.js';
import { DeadlineError, withDeadline } from './timeout.js';

export type HookFn = () => unknown | Promise<unknown>;

export type HookPhase = 'onReady' | 'preDrain' | 'onClose';

export class Hooks {
  readonly phase: HookPhase;
  readonly #hooks: { readonly name: string; readonly fn: HookFn }[] = [];

  constructor(phase: HookPhase) {
    this.phase = phase;
  }

  add(fn: HookFn, name: string): void {
    if (typeof fn !== 'function') throw new InvalidHookError(this.phase, fn);
    this.#hooks.push({ name, fn });
  }

  /** Runs every hook in order; each failure is handed to `onError` and the next hook runs. */
  async run(timeoutMs: number, onError: (error: HookFailedError) => void): Promise<void> {
    for (const hook of this.#hooks) {
      try {
        await withDeadline(hook.fn, timeoutMs);
      } catch (error) {
        onError(new HookFailedError(this.phase, hook.name, error instanceof DeadlineError ? error.message : error));
      }
    }
  }
}

class InvalidHookError extends ProviderStateError {
  constructor(phase: string, value: unknown) {
    super(`${phase}() expects a function, got ${typeof value}`);
  }
}
