// The open-loop load of the rolling-restart demo's consumers (consumer.mjs over HTTP, consumer-grpc.mjs
// over gRPC): requests at a fixed arrival rate, latency measured from each request's intended send
// time (so a stall is not hidden), the same request mix for the same seed, every outcome counted.
// Started with fork() (serialization 'advanced'): progress and, when told to stop (or after
// maxSeconds), the results go to the demo over IPC.

/**
 * @typedef {{ ms: number, method: 'GET' | 'POST' }} WorkRequest
 * @typedef {'ok' | 'refused' | 'reset' | 'status5xx' | 'timeout' | 'other'} Outcome
 * @typedef {{ send(request: WorkRequest): Promise<number>, close(): Promise<void> }} LoadClient
 */

/** The outcomes in the order their indexes are reported. */
export const OUTCOMES = ['ok', 'refused', 'reset', 'status5xx', 'timeout', 'other'];
const UNFINISHED = 255;

/** mulberry32: the same request mix for the same seed. */
function seeded(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A typed array that grows: a soak sends millions of requests, kept compact and cheap to send over IPC. */
class Column {
  constructor(Type, empty = 0) {
    this.empty = empty;
    this.values = new Type(1 << 16).fill(empty);
  }
  set(index, value) {
    if (index >= this.values.length) {
      const grown = new this.values.constructor(Math.max(this.values.length * 2, index + 1)).fill(this.empty);
      grown.set(this.values);
      this.values = grown;
    }
    this.values[index] = value;
  }
  slice(length) {
    return this.values.slice(0, length);
  }
}

/**
 * Sends load through `client` until the demo says stop, SIGTERM, or maxSeconds; then waits up to
 * timeoutMs + 1 s for what is under way, closes the client, reports and exits.
 *
 * @param {object} o
 * @param {LoadClient} o.client
 * @param {(error: unknown) => Outcome} o.classify a failure's class
 * @param {(error: unknown) => string} o.describe a failure's code and message, for the examples
 * @param {number} o.rate requests per second
 * @param {number} o.seed
 * @param {number} o.timeoutMs
 * @param {number} o.maxSeconds
 */
export function runLoad({ client, classify, describe, rate, seed, timeoutMs, maxSeconds }) {
  const random = seeded(seed);
  /** About 95 % fast (~1 ms), 5 % ~200 ms, 0.1 % ~2 s; 20 % POST ("writes"). */
  const nextRequest = () => {
    const r = random();
    const ms = r < 0.001 ? 2000 : r < 0.051 ? 200 : 1;
    return { ms, method: random() < 0.2 ? 'POST' : 'GET' };
  };

  const started = Date.now();
  const t0 = performance.now();
  // per request: intended time (ms since start), latency (ms), outcome (an index into OUTCOMES;
  // UNFINISHED while the request is under way)
  const intended = new Column(Float64Array);
  const latency = new Column(Float64Array);
  const outcome = new Column(Uint8Array, UNFINISHED);
  const counts = Object.fromEntries(OUTCOMES.map((o) => [o, 0]));
  const examples = new Map(); // failure message -> count
  let sent = 0;
  let stopping = false;
  let pending = 0;

  const fire = (i, at) => {
    const request = nextRequest();
    sent++;
    pending++;
    intended.set(i, at);
    client
      .send(request)
      .then(
        (status) => (status >= 500 ? 'status5xx' : 'ok'),
        (error) => {
          const kind = classify(error);
          const text = `${kind}: ${describe(error)
            .replace(/\d+\.\d+\.\d+\.\d+:\d+/g, 'IP:PORT')
            .replace(/"demo-\d+"/, '"demo"')}`;
          if (examples.size < 20 || examples.has(text)) examples.set(text, (examples.get(text) ?? 0) + 1);
          return kind;
        },
      )
      .then((kind) => {
        latency.set(i, performance.now() - t0 - at);
        outcome.set(i, OUTCOMES.indexOf(kind));
        counts[kind]++;
        pending--;
      });
  };

  // open loop: every tick, send all requests whose intended time has come
  const interval = 1000 / rate;
  let i = 0;
  const tick = setInterval(() => {
    const now = performance.now() - t0;
    while (!stopping && i * interval <= now) {
      fire(i, i * interval);
      i++;
    }
  }, 1);
  const report = (message, done) => {
    if (process.connected) process.send?.(message, done);
    else done?.();
  };
  const progress = setInterval(() => report({ type: 'progress', sent, pending, counts }), 250);
  // the demo went away: stop at once (unless this process is the one finishing)
  process.on('disconnect', () => {
    if (!stopping) process.exit(0);
  });

  const finish = async () => {
    if (stopping) return;
    stopping = true;
    clearInterval(tick);
    const deadline = Date.now() + timeoutMs + 1000;
    while (pending > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    clearInterval(progress);
    await client.close().catch(() => {});
    // exit only once the (large) result has been written to the channel
    report(
      {
        type: 'result',
        startedAt: started,
        intended: intended.slice(sent),
        latency: latency.slice(sent),
        outcome: outcome.slice(sent),
        outcomes: OUTCOMES,
        unfinishedCode: UNFINISHED,
        counts,
        sent,
        unfinished: pending,
        examples: [...examples].sort((a, b) => b[1] - a[1]).map(([text, n]) => `${n} × ${text}`),
      },
      () => {
        process.disconnect?.();
        process.exit(0);
      },
    );
  };

  process.on('message', (message) => {
    if (message?.type === 'stop') void finish();
  });
  process.on('SIGTERM', () => void finish());
  setTimeout(() => void finish(), maxSeconds * 1000).unref();
}
