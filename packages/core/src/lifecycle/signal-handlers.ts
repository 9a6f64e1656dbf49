// The process signal handlers a provider installs (SIGTERM and SIGINT by default): each can be
// removed again (uninstall), and none stays behind once the drain is over.

export class SignalHandlers {
  readonly #handlers = new Map<NodeJS.Signals, () => void>();

  install(signals: readonly NodeJS.Signals[], onSignal: (signal: NodeJS.Signals) => void): void {
    for (const signal of signals) {
      if (this.#handlers.has(signal)) continue;
      const handler = (): void => onSignal(signal);
      this.#handlers.set(signal, handler);
      process.on(signal, handler);
    }
  }

  uninstall(): void {
    for (const [signal, handler] of this.#handlers) process.removeListener(signal, handler);
    this.#handlers.clear();
  }
}
