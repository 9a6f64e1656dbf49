// The adaptive wait at the heart of a drain. It ends as soon as all of these hold:
//   - the registry step has settled (the instance was taken out, or that failed and was logged),
//   - nothing is in flight,
//   - no request arrived for `quietWindowMs`, counted from the later of the last arrival and the
//     moment the registry step settled (callers with stale instance lists may still send until then),
//   - at least `minDrainMs` passed since the drain began;
// or when `maxDrainMs` passed since the drain began, whatever is in flight. It never polls: it
// re-evaluates when the count drops to zero and when a timer set for the earliest possible end fires.

export interface DrainTiming {
  readonly quietWindowMs: number;
  readonly minDrainMs: number;
  readonly maxDrainMs: number;
}

export interface DrainLoad {
  readonly size: number;
  readonly lastArrival: number;
  onIdle: (() => void) | undefined;
}

/**
 * `idle`: every condition held. `timeout`: the maximum was reached (requests still in flight, if any,
 * are cut by the caller). `forced`: ended on demand.
 */
export type DrainOutcome = 'idle' | 'timeout' | 'forced';

export class DrainWaiter {
  readonly startedAt: number;
  readonly done: Promise<DrainOutcome>;

  readonly #timing: DrainTiming;
  readonly #load: DrainLoad;
  readonly #now: () => number;
  #quietFrom: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  #maxTimer: NodeJS.Timeout | undefined;
  #resolve!: (outcome: DrainOutcome) => void;
  #settled = false;

  constructor(timing: DrainTiming, load: DrainLoad, now: () => number) {
    this.#timing = timing;
    this.#load = load;
    this.#now = now;
    this.startedAt = now();
    this.done = new Promise((resolve) => {
      this.#resolve = resolve;
    });
    load.onIdle = () => this.#evaluate();
    this.#maxTimer = setTimeout(() => this.#finish('timeout'), timing.maxDrainMs);
  }

  get settled(): boolean {
    return this.#settled;
  }

  /** The registry step settled at `at` (monotonic ms): the quiet window may start counting. */
  registrySettled(at: number = this.#now()): void {
    if (this.#quietFrom !== undefined) return;
    this.#quietFrom = at;
    this.#evaluate();
  }

  /** End the wait now (a second signal, or destroy()). */
  force(): void {
    this.#finish('forced');
  }

  #evaluate(): void {
    if (this.#settled || this.#quietFrom === undefined || this.#load.size > 0) return;
    const { quietWindowMs, minDrainMs } = this.#timing;
    const due = Math.max(
      Math.max(this.#load.lastArrival, this.#quietFrom) + quietWindowMs,
      this.startedAt + minDrainMs,
    );
    const wait = due - this.#now();
    if (wait <= 0) {
      this.#finish('idle');
      return;
    }
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#evaluate(), Math.ceil(wait));
  }

  #finish(outcome: DrainOutcome): void {
    if (this.#settled) return;
    this.#settled = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#maxTimer);
    this.#load.onIdle = undefined;
    this.#resolve(outcome);
  }
}
