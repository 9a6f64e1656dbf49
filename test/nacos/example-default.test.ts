// The express example started with nothing but `--registry nacos://127.0.0.1:PORT`, as real processes
// against rnacos, asserting what a user would notice: it registers over gRPC (a SIGKILL removes it from
// Nacos within 3 s, which only a connection-bound instance does: over HTTP it lasts 15-30 s of missed
// heartbeats); when Nacos loses its data, /readyz is never 200 for more than 2 s while Nacos answers
// without the instance, and the instance is listed again within 10 s; its registered weight ramps
// to Nacos' 1.0 once warm. The same heal over the HTTP transport (`?transport=http`).
//
// /readyz and Nacos' own list (its HTTP API, read directly) are polled together throughout. The
// provider's gRPC connection drops when rnacos restarts: the provider stays ready while Nacos cannot
// be reached (by design: it cannot tell), then the redo registers it again.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { launchExampleWith, listening, type Running, type RunningExample } from '../process/example.js';
import { call, until } from '../support.js';
import { type RunningNacos, startNacos } from './server.js';

const SERVICE = 'hello-service'; // the example's default

let nacos: RunningNacos;
const children: Running[] = [];

// every test here restarts the server empty: a local rnacos, whatever serves the other Nacos tests
beforeAll(async () => {
  nacos = await startNacos({ controlled: true });
}, 120_000);
afterAll(async () => {
  await nacos?.stop();
});
afterEach(() => {
  for (const c of children.splice(0)) c.child.kill('SIGKILL');
});

interface Listed {
  readonly port: number;
  readonly weight: number;
}

/** The instances Nacos lists for the service, read from its HTTP API; undefined when it does not answer. */
async function nacosList(service = SERVICE): Promise<Listed[] | undefined> {
  try {
    const res = await fetch(
      `http://${nacos.addr}/nacos/v1/ns/instance/list?serviceName=${service}&groupName=DEFAULT_GROUP&namespaceId=public`,
      { signal: AbortSignal.timeout(1000) },
    );
    if (res.status !== 200) {
      await res.text();
      return undefined;
    }
    const body = (await res.json()) as { hosts?: Listed[] };
    return body.hosts ?? [];
  } catch {
    return undefined;
  }
}

interface Sample {
  readonly at: number;
  /** /readyz status; 0 when the admin server did not answer. */
  readonly ready: number;
  /** Whether Nacos listed the instance; undefined when Nacos did not answer. */
  readonly listed: boolean | undefined;
  /** When Nacos gave that answer. */
  readonly listedAt: number;
}

/**
 * Polls /readyz (every few ms: a not-ready spell while the provider registers again lasts tens of ms)
 * and Nacos' list, each in its own loop, until stopped; `samples()` merges them into one timeline,
 * each sample with the latest answer of both.
 */
function sampler(r: RunningExample): {
  samples: () => Sample[];
  readies: () => { at: number; ready: number }[];
  stop: () => Promise<void>;
} {
  const events: { at: number; ready?: number; listed?: boolean | undefined; kind: 'ready' | 'list' }[] = [];
  let running = true;
  const readyLoop = (async () => {
    while (running) {
      const ready = await call(r.adminPort, '/readyz').then(
        (reply) => reply.status,
        () => 0,
      );
      events.push({ at: Date.now(), ready, kind: 'ready' });
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  })();
  const listLoop = (async () => {
    while (running) {
      const list = await nacosList();
      events.push({ at: Date.now(), listed: list?.some((i) => i.port === r.port), kind: 'list' });
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  })();
  return {
    samples: () => {
      const out: Sample[] = [];
      let ready: number | undefined;
      let listed: boolean | undefined;
      let listedAt: number | undefined;
      for (const e of [...events].sort((x, y) => x.at - y.at)) {
        if (e.kind === 'ready') ready = e.ready;
        else {
          listed = e.listed;
          listedAt = e.at;
        }
        if (ready !== undefined && listedAt !== undefined) out.push({ at: e.at, ready, listed, listedAt });
      }
      return out;
    },
    /** Every /readyz answer: its status, and when it came. */
    readies: () => events.flatMap((e) => (e.kind === 'ready' ? [{ at: e.at, ready: e.ready ?? 0 }] : [])),
    stop: async () => {
      running = false;
      await Promise.all([readyLoop, listLoop]);
    },
  };
}

/**
 * The longest time /readyz answered 200 while Nacos answered without the instance: a run starts at
 * such a sample and lasts until Nacos lists it again or /readyz is no longer 200 (samples where Nacos
 * did not answer do not end it).
 */
function longestReadyWhileAbsent(samples: readonly Sample[]): number {
  let longest = 0;
  let start: number | undefined;
  for (const s of samples) {
    if (start === undefined) {
      if (s.listed === false && s.ready === 200) start = s.at;
      continue;
    }
    if (s.listed === true || s.ready !== 200) {
      longest = Math.max(longest, s.at - start);
      start = undefined;
    }
  }
  const last = samples.at(-1);
  if (start !== undefined && last !== undefined) longest = Math.max(longest, last.at - start);
  return longest;
}

/** The first time Nacos answered without the instance after `t`, and the first sample after that with it listed again and /readyz 200. */
function healed(samples: readonly Sample[], t: number): { absentAt?: number; backAt?: number } {
  const absentAt = samples.find((s) => s.listedAt > t && s.listed === false)?.listedAt;
  if (absentAt === undefined) return {};
  const backAt = samples.find((s) => s.listedAt > absentAt && s.listed === true && s.ready === 200)?.at;
  return { absentAt, backAt };
}

async function example(registry: string): Promise<RunningExample> {
  // only --registry on the command line; free ports through the variables the example reads
  const launched = launchExampleWith(['--registry', registry], { PORT: '0', LOSSLESS_ADMIN_PORT: '0' });
  children.push(launched);
  return listening(launched, 20_000);
}

describe('the express example with nothing but --registry nacos://127.0.0.1:PORT', () => {
  it('registers over gRPC, heals after Nacos lost its data, ramps its weight to 1.0, and leaves within 3 s of a SIGKILL', async (ctx) => {
    const { annotate } = ctx;
    const r = await example(`nacos://${nacos.addr}`);
    const registeredAt = Date.now();
    const first = (await nacosList())?.find((i) => i.port === r.port);
    expect(first, 'listed once ready').toBeDefined();
    // the warm-up ramp starts low: Nacos' 1.0 is lossless' 100
    expect(first?.weight).toBeLessThan(1);

    // Nacos loses everything: killed, restarted on an empty data folder
    const watch = sampler(r);
    await until(() => watch.samples().length > 3, 'a few samples before the data loss');
    const lostAt = Date.now();
    await nacos.restart({ empty: true });
    const answeredAt = Date.now();
    await until(
      () => watch.samples().some((s) => s.listedAt > answeredAt && s.listed === true && s.ready === 200),
      'the instance listed again and ready',
      10_000,
    );
    const backAt = watch.samples().find((s) => s.listedAt > answeredAt && s.listed === true)?.listedAt as number;
    // keep sampling a moment: a readiness that lags behind would show here
    const until1s = Date.now() + 1000;
    await until(() => Date.now() >= until1s, 'one more second of samples', 2000);
    await watch.stop();
    const gap = longestReadyWhileAbsent(watch.samples());
    await annotate(
      `gRPC: Nacos down for ${answeredAt - lostAt} ms; listed again ${backAt - answeredAt} ms after it answered ` +
        `(${backAt - lostAt} ms after the loss); /readyz 200 while Nacos answered without it: at most ${gap} ms`,
      'measured',
    );
    expect(gap).toBeLessThanOrEqual(2000);
    expect(backAt - lostAt).toBeLessThanOrEqual(10_000);

    // once warm (the default window: 60 s from registration), Nacos holds weight 1.0
    await until(
      async () => Math.abs(((await nacosList())?.find((i) => i.port === r.port)?.weight ?? 0) - 1) < 0.001,
      'weight 1.0 once warm',
      75_000 - (Date.now() - registeredAt),
    );

    // SIGKILL: no deregistration is sent; Nacos drops the instance with its connection
    const killedAt = Date.now();
    r.child.kill('SIGKILL');
    await until(
      async () => (await nacosList())?.some((i) => i.port === r.port) === false,
      'Nacos to drop the SIGKILLed instance',
      3000,
    );
    await annotate(`gRPC: weight 1.0 once warm; gone from Nacos ${Date.now() - killedAt} ms after SIGKILL`, 'measured');
  }, 120_000);

  it('over ?transport=http: Nacos loses its data; /readyz is not 200 for more than 2 s while Nacos answers without it, and it is back within 10 s', async (ctx) => {
    const { annotate } = ctx;
    const r = await example(`nacos://${nacos.addr}/?transport=http`);
    expect((await nacosList())?.some((i) => i.port === r.port)).toBe(true);

    const watch = sampler(r);
    await until(() => watch.samples().length > 3, 'a few samples before the data loss');
    const lostAt = Date.now();
    await nacos.restart({ empty: true });
    await until(
      () => healed(watch.samples(), lostAt).backAt !== undefined,
      'the instance listed again and ready',
      10_000,
    );
    await watch.stop();
    const samples = watch.samples();
    const { absentAt, backAt } = healed(samples, lostAt);
    const notReadyAt = samples.find((s) => s.at > lostAt && s.ready === 503)?.at;
    // the provider's own account: its lookup found the registration gone (it is then not ready:
    // /readyz 503, state registering, for the tens of ms it takes to register again and read back)
    const noticed = r.logs().find((l) => l.code === 'LOSSLESS_ERR_REGISTRATION_LOST');
    const noticedAt = noticed === undefined ? undefined : Date.parse(String(noticed.time));
    const ms = (at: number | undefined) => (at === undefined ? 'never' : `${at - lostAt} ms after the loss`);
    await annotate(
      `HTTP: Nacos answered without the instance ${ms(absentAt)}; the provider found it gone ${ms(noticedAt)}` +
        `${noticedAt === undefined ? ' (a heartbeat registered it again first)' : ''}; /readyz 503 seen ${ms(notReadyAt)}; ` +
        `listed and ready again ${ms(backAt)}`,
      'measured',
    );
    expect(absentAt, 'Nacos answered without the instance').toBeDefined();
    expect(backAt, 'listed and ready again').toBeDefined();
    // Two ways back, whichever comes first: the provider's lookup (every second) finds it gone, turns
    // not ready and registers again; or the npm client's next heartbeat (every 5 s), which Nacos
    // answers "not found", registers it again before that lookup. Either way /readyz is not 200 for
    // more than 2 s while Nacos answers without the instance.
    if (noticedAt !== undefined) {
      // not ready from the moment it found the registration gone until registered again and read
      // back: no /readyz 200 in between (a window of a few ms may hold no answer at all; an answer
      // that arrives within 10 ms of the finding may have been made just before it)
      const again = r.logs().find((l) => l.msg === 'registered again and read back');
      const againAt = again === undefined ? undefined : Date.parse(String(again.time));
      expect(againAt, 'registered again and read back').toBeDefined();
      const between = watch.readies().filter((a) => a.at > noticedAt + 10 && a.at < (againAt as number));
      expect(
        between.filter((a) => a.ready === 200),
        '/readyz 200 while registering again',
      ).toEqual([]);
      expect(noticedAt - (absentAt as number)).toBeLessThanOrEqual(2000);
    } else expect((backAt as number) - (absentAt as number)).toBeLessThanOrEqual(2000);
    expect(longestReadyWhileAbsent(watch.samples())).toBeLessThanOrEqual(2000);
    expect((backAt as number) - lostAt).toBeLessThanOrEqual(10_000);
  }, 60_000);
});
