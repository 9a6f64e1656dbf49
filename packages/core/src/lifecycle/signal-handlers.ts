// The process signal handlers a provider installs (SIGTERM and SIGINT by default) and what a signal
// does: the first starts a drain (or joins the one POST /prestop or drain() started), the next one
// during that drain forces its end, one after the drain is only logged. Each handler can be removed
// again (uninstall), and none stays behind once the drain is over.

import type { Logger } from '../logger.js';

/** The provider, as its signals see it. */
export interface SignalTarget {
  readonly log: Logger;
  /** What started the drain under way, if one is. */
  drainTrigger(): string | undefined;
  stopped(): boolean;
  /** Starts a drain for `signal`. */
  drain(signal: NodeJS.Signals): void;
  /** Ends the drain under way at once; `inFlight` is logged first. */
  force(signal: NodeJS.Signals): void;
  inFlight(): unknown;
}

export class SignalHandlers {
  readonly #handlers = new Map<NodeJS.Signals, () => void>();
  /** Signals received since the drain began (a drain begun otherwise counts as none). */
  #received = 0;

  install(signals: readonly NodeJS.Signals[], target: SignalTarget): void {
    for (const signal of signals) {
      if (this.#handlers.has(signal)) continue;
      const handler = (): void => this.#on(signal, target);
      this.#handlers.set(signal, handler);
      process.on(signal, handler);
    }
  }

  uninstall(): void {
    for (const [signal, handler] of this.#handlers) process.removeListener(signal, handler);
    this.#handlers.clear();
  }

  #on(signal: NodeJS.Signals, target: SignalTarget): void {
    const trigger = target.drainTrigger();
    if (trigger === undefined) {
      this.#received = 1;
      target.drain(signal);
      return;
    }
    if (target.stopped()) {
      target.log.info({ signal }, `${signal} after the drain ended`);
      return;
    }
    this.#received++;
    if (this.#received < 2) {
      target.log.info({ signal }, `${signal} during a drain started by ${trigger}: joining it`);
      return;
    }
    target.log.warn({ signal, inFlight: target.inFlight() }, `another ${signal} during the drain: closing now`);
    target.force(signal);
  }
}
