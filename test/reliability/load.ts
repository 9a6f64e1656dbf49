// Steady, bounded load for the reliability tests: a fixed rate with a cap on requests in flight and
// on the total, so that a busy machine slows the load down instead of piling requests up. Every
// request's outcome is kept for the assertions.

export interface Outcome<T> {
  readonly index: number;
  readonly startedAt: number;
  readonly endedAt: number;
  /** What `send` resolved with, when it did. */
  readonly value?: T;
  /** What `send` threw, as `code: message`. */
  readonly error?: string;
}

export interface LoadOptions {
  /** Requests started per second. */
  readonly ratePerSec: number;
  /** Requests in flight at most; the rate waits for them. */
  readonly maxInFlight: number;
  /** Requests started at most. */
  readonly maxRequests: number;
}

export interface Load<T> {
  /** Requests started so far. */
  readonly sent: () => number;
  readonly outcomes: Outcome<T>[];
  /** Starts no more requests and resolves once those in flight are answered. */
  readonly stop: () => Promise<Outcome<T>[]>;
}

/** Calls `send(index)` `ratePerSec` times a second, within the bounds, until stop() or maxRequests. */
export function steadyLoad<T>(options: LoadOptions, send: (index: number) => Promise<T>): Load<T> {
  const outcomes: Outcome<T>[] = [];
  const inFlight = new Set<Promise<void>>();
  const startedAt = performance.now();
  let sent = 0;
  let stopped = false;

  const launch = (): void => {
    const index = sent++;
    const t0 = performance.now();
    const p = send(index).then(
      (value) => {
        outcomes.push({ index, startedAt: t0, endedAt: performance.now(), value });
      },
      (error: Error & { code?: string }) => {
        outcomes.push({ index, startedAt: t0, endedAt: performance.now(), error: `${error.code}: ${error.message}` });
      },
    );
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  };

  const tick = setInterval(() => {
    if (stopped) return;
    const due = Math.min(
      options.maxRequests,
      Math.floor(((performance.now() - startedAt) * options.ratePerSec) / 1000),
    );
    while (sent < due && inFlight.size < options.maxInFlight) launch();
  }, 5);

  return {
    sent: () => sent,
    outcomes,
    stop: async () => {
      stopped = true;
      clearInterval(tick);
      while (inFlight.size > 0) await Promise.all([...inFlight]);
      return outcomes;
    },
  };
}

/** The outcomes that failed, as `code: message` strings. */
export function failures<T>(outcomes: readonly Outcome<T>[]): string[] {
  return outcomes.flatMap((o) => (o.error === undefined ? [] : [o.error]));
}
