// The overall timeouts of a client's requests on one timer, instead of a setTimeout per request (a
// Timeout object, a closure and a clock read each: at tens of thousands of requests a second, more
// than the rest of the retry layer costs). Every request of a client has the same timeout, so
// deadlines fall in the order requests started: a list in that order, linked through the requests
// themselves (adding and removing allocate nothing), and one timer, armed for the list's head.
// The timer keeps the process alive only while a request is in the list, as a per-request timer did.

export interface Timed {
  /** When the request times out, on `now`'s clock. Set by Deadlines.add. */
  deadline: number;
  prev: Timed | undefined;
  next: Timed | undefined;
  /** The deadline passed: the request was already taken out of the list. */
  expire(): void;
}

export class Deadlines {
  readonly #timeoutMs: number;
  readonly #now: () => number;
  #head: Timed | undefined;
  #tail: Timed | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(timeoutMs: number, now: () => number) {
    this.#timeoutMs = timeoutMs;
    this.#now = now;
  }

  /** Starts the clock of `t`: it expires timeoutMs from now unless removed before. */
  add(t: Timed): void {
    // a whole number of ms (a timeout ends a ms or two late: the timer may fire just before the
    // rounded deadline and be armed again): a fraction would be a number object of its own, one
    // more allocation per request
    t.deadline = Math.ceil(this.#now() + this.#timeoutMs);
    t.next = undefined;
    t.prev = this.#tail;
    if (this.#tail === undefined) this.#head = t;
    else this.#tail.next = t;
    this.#tail = t;
    if (this.#timer === undefined) this.#arm(this.#timeoutMs);
  }

  /** Stops the clock of `t`; harmless when it is not in the list. */
  remove(t: Timed): void {
    if (t.prev === undefined && this.#head !== t) return;
    if (t.prev === undefined) this.#head = t.next;
    else t.prev.next = t.next;
    if (t.next === undefined) this.#tail = t.prev;
    else t.next.prev = t.prev;
    t.prev = undefined;
    t.next = undefined;
    // the timer stays armed for a removed head: it fires early and is armed again for the new one
    if (this.#head === undefined && this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }

  /** How many requests are timed now (for tests). */
  get size(): number {
    let n = 0;
    for (let t = this.#head; t !== undefined; t = t.next) n++;
    return n;
  }

  #arm(ms: number): void {
    this.#timer = setTimeout(this.#fire, Math.max(1, Math.ceil(ms)));
  }

  readonly #fire = (): void => {
    this.#timer = undefined;
    const now = this.#now();
    for (let t = this.#head; t !== undefined && t.deadline <= now; t = this.#head) {
      this.remove(t);
      t.expire();
    }
    // a request started by an expired one's caller may have armed the timer for its own, later, deadline
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#head !== undefined) this.#arm(this.#head.deadline - now);
  };
}
