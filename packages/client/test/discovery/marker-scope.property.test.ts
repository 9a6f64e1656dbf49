// Property: an offline marker takes out of rotation only the instance that sent it. Arbitrary
// instances (ids that may repeat, any ports) answer arbitrary requests through the balance
// interceptor; the draining ones answer with the marker, whose value may name other instances or
// origins, the others with look-alike headers. Afterwards exactly the instances that sent a marker
// are ejected, and every other one is still in rotation, also after the registry lists them again.

import { type Instance, METADATA_KEYS, silentLogger } from '@lossless/core';
import fc from 'fast-check';
import { type Dispatcher, util } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { ServiceTable } from '../../src/discovery/table.js';
import { balance, idleController } from '../../src/interceptor/balance.js';
import { seeded, TestRegistry, turn } from '../helpers.js';

const MARKER = 'x-lossless-offline';
const REGISTERED_AT = String(Date.now() - 3_600_000);

const tables: ServiceTable[] = [];
afterEach(() => {
  for (const t of tables.splice(0)) t.close();
});

interface Spec {
  readonly id: string;
  readonly ip: string;
  readonly port: number;
  readonly draining: boolean;
}

const originOf = (s: { ip: string; port: number }): string =>
  `http://${s.ip.includes(':') ? `[${s.ip}]` : s.ip}:${s.port}`;

function toInstance(s: Spec): Instance {
  return {
    service: 'svc',
    id: s.id,
    ip: s.ip,
    port: s.port,
    weight: 100,
    enabled: true,
    healthy: true,
    metadata: { [METADATA_KEYS.registeredAt]: REGISTERED_AT },
  };
}

/** Instances at distinct addresses; ids drawn from a small pool too, so that some repeat. */
const instances = fc.uniqueArray(
  fc.record({
    id: fc.oneof(fc.constantFrom('a', 'b', 'svc', 'svc/a', '127.0.0.1:1'), fc.string({ minLength: 1, maxLength: 6 })),
    ip: fc.constantFrom('127.0.0.1', '127.0.0.2', '::1'),
    port: fc.integer({ min: 1, max: 65_535 }),
    draining: fc.boolean(),
  }),
  { minLength: 1, maxLength: 8, selector: (s) => originOf(s) },
);

/** What a draining instance puts in its marker: the usual value, or another instance's id or origin, or junk. */
const markerValue = (specs: readonly Spec[]): fc.Arbitrary<string> =>
  fc.oneof(
    fc.constant('draining'),
    fc.constantFrom(...specs.map((s) => s.id)),
    fc.constantFrom(...specs.map(originOf)),
    fc.constantFrom('*', 'all', 'svc', '', 'http://svc'),
    fc.string({ maxLength: 10 }).map((s) => s.replace(/[^\x20-\x7e]/g, '')),
  );

/** Headers that are not the marker, though they look like it or name other instances. */
const lookAlike = (specs: readonly Spec[]): fc.Arbitrary<[string, string]> =>
  fc.tuple(
    fc.constantFrom(`${MARKER}-instance`, `${MARKER}x`, 'x-lossless-offlin', 'x-lossless-eject', 'x-instance'),
    fc.constantFrom(...specs.map((s) => s.id), ...specs.map(originOf), 'draining'),
  );

interface Answer {
  readonly marked: boolean;
  readonly headers: Buffer[];
}

describe('offline marker scope (property)', () => {
  it('ejects exactly the instances that sent a marker, whatever the marker says; all others stay', async () => {
    await fc.assert(
      fc.asyncProperty(
        instances.chain((specs) =>
          fc.record({
            specs: fc.constant(specs),
            requests: fc.integer({ min: 1, max: 40 }),
            seed: fc.integer(),
            refreshIntervalMs: fc.constantFrom(0, 100),
            // per request: the marker's header-name casing and value, or a look-alike header
            answers: fc.array(
              fc.record({
                name: fc.constantFrom(MARKER, 'X-Lossless-Offline', 'X-LOSSLESS-OFFLINE'),
                value: markerValue(specs),
                other: fc.option(lookAlike(specs), { nil: undefined }),
              }),
              { minLength: 40, maxLength: 40 },
            ),
          }),
        ),
        async ({ specs, requests, seed, refreshIntervalMs, answers }) => {
          const registry = new TestRegistry(specs.map(toInstance));
          const table = new ServiceTable({ registry, logger: silentLogger, now: () => 0, refreshIntervalMs });
          tables.push(table);
          const draining = new Set(specs.filter((s) => s.draining).map(originOf));
          const sentMarker = new Set<string>();
          let n = 0;
          const fake = ((opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler) => {
            const origin = String(opts.origin);
            const a = answers[n++ % answers.length] as (typeof answers)[number];
            const answer: Answer = draining.has(origin)
              ? { marked: true, headers: [Buffer.from(a.name), Buffer.from(a.value)] }
              : { marked: false, headers: a.other === undefined ? [] : a.other.map((x) => Buffer.from(x)) };
            if (answer.marked) sentMarker.add(origin);
            // as undici hands them over: parsed, names lower-cased
            const controller = idleController();
            handler.onRequestStart?.(controller, {});
            handler.onResponseStart?.(controller, answer.marked ? 503 : 200, util.parseHeaders(answer.headers), 'OK');
            handler.onResponseEnd?.(controller, {});
            return true;
          }) as Dispatcher['dispatch'];
          const dispatch = balance({
            table,
            breakers: undefined,
            markerHeader: MARKER,
            curve: { floor: 1, aggression: 1 },
            defaultWarmupMs: 0,
            serviceOf: (origin) => (origin === 'http://svc' ? 'svc' : undefined),
            now: () => 0,
            wallNow: Date.now,
            random: seeded(seed),
          })(fake);
          const caller: Dispatcher.DispatchHandler = {};

          await table.get('svc').ready;
          const all = specs.map(originOf).sort();
          expect(
            table
              .get('svc')
              .endpoints.map((e) => e.origin)
              .sort(),
          ).toEqual(all);
          for (let i = 0; i < requests; i++) {
            dispatch({ origin: 'http://svc', path: '/', method: 'GET' }, caller);
            if (i % 7 === 0) await turn(); // let some marker-triggered registry reads land in between
          }
          // the registry still lists every instance (the draining ones have not left it yet)
          for (let i = 0; i < 5 || registry.listsDone < registry.listCalls; i++) await turn();
          const expected = all.filter((o) => !sentMarker.has(o));
          expect(
            table
              .get('svc')
              .endpoints.map((e) => e.origin)
              .sort(),
            'in rotation after the markers',
          ).toEqual(expected);
          // a subscription update with the same registrations changes nothing
          registry.push();
          expect(
            table
              .get('svc')
              .endpoints.map((e) => e.origin)
              .sort(),
            'in rotation after a push',
          ).toEqual(expected);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('ejecting a key that is not in rotation (bogus, another service, already ejected) changes nothing else', async () => {
    await fc.assert(
      fc.asyncProperty(
        instances,
        fc.array(fc.oneof(fc.string(), fc.constantFrom('svc/', 'svc/*', '*', 'svc', 'other/a', 'svc/a ', 'SVC/a')), {
          maxLength: 5,
        }),
        async (specs, bogus) => {
          const registry = new TestRegistry(specs.map(toInstance));
          const table = new ServiceTable({ registry, logger: silentLogger, now: () => 0, refreshIntervalMs: 0 });
          tables.push(table);
          await table.get('svc').ready;
          const keys = new Set(table.get('svc').endpoints.map((e) => e.key));
          const before = table.get('svc').endpoints.map((e) => e.origin);
          for (const key of bogus) {
            if (keys.has(key)) continue;
            table.eject('svc', key);
            table.eject('other', key);
          }
          for (let i = 0; i < 3; i++) await turn();
          expect(table.get('svc').endpoints.map((e) => e.origin)).toEqual(before);
          expect(registry.listCalls, 'no registry read for a bogus marker').toBe(0);
        },
      ),
      { numRuns: 150 },
    );
  });
});
