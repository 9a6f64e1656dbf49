// Property-based tests of createClient's options: whatever is passed, it either makes a client (and
// then every value given was valid) or throws a LosslessError with a LOSSLESS_ERR_ code; nothing is
// accepted silently and nothing crashes with a TypeError.

import { LosslessError, type Registry, StaticRegistry } from '@lossless/core';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { editDistance } from '../../core/src/schema/closest.js';
import { inspect } from '../../core/src/schema/parse.js';
import {
  editedOptions,
  type Input,
  misspelledKey,
  oddValues,
  schemaGroups,
  withKeyAt,
} from '../../core/test/property.js';
import { type ClientOptions, createClient, type LosslessClient } from '../src/client.js';
import { clientOptionsSchema } from '../src/options.js';

const RUNS = 200;

const clients: LosslessClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.destroy()));
});

/** Calls createClient; a throw must be a coded LosslessError (anything else fails the property). */
function attempt(options: unknown): LosslessClient | undefined {
  try {
    const client = createClient(options as ClientOptions);
    clients.push(client);
    return client;
  } catch (error) {
    if (!(error instanceof LosslessError)) throw error;
    expect(error.code).toMatch(/^LOSSLESS_ERR_[A-Z_]+$/);
    return undefined;
  }
}

const noop = (): void => {};
const registryObject = Object.assign(new StaticRegistry([{ host: '127.0.0.1', port: 1 }]), {
  [fc.toStringMethod]: () => 'new StaticRegistry(...)',
});

/** Values of every type, with the odd ones well represented. */
const odd = oddValues([
  undefined,
  null,
  true,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  -1,
  0,
  -0,
  0.5,
  1.5,
  11,
  101,
  2 ** 31,
  Number.MAX_VALUE,
  10n,
  '',
  ' ',
  'a b',
  '\u0000',
  '0',
  'static://127.0.0.1:0',
  'static://127.0.0.1:1',
  'file:///tmp/x?pollMs=0',
  [],
  [''],
  [5],
  {},
  Object.create(null),
  noop,
  Symbol('odd'),
  // a Registry missing functions the client calls
  { subscribe: noop },
  { subscribe: () => noop, list: async () => [] },
]);

const token = fc.stringMatching(/^[!#$%&'*+.^_`|~0-9a-z-]{1,20}$/);

/** Client options where every value is valid. */
const validOptions = fc.record(
  {
    registry: fc.constantFrom<string | Registry>(registryObject, 'static://127.0.0.1:1,[::1]:2'),
    registrySchemes: fc.constant({ nacos: () => registryObject }),
    services: fc.array(fc.domain(), { maxLength: 3 }),
    markerHeader: token,
    warmup: fc.record(
      {
        windowMs: fc.integer({ min: 0, max: 3_600_000 }),
        floor: fc.double({ min: 0.001, max: 1, noNaN: true }),
        aggression: fc.double({ min: 0.01, max: 100, noNaN: true }),
      },
      { requiredKeys: [] },
    ),
    retry: fc
      .record({
        attempts: fc.integer({ min: 1, max: 10 }),
        budgetRatio: fc.double({ min: 0, max: 1, noNaN: true }),
        budgetBurst: fc.integer({ min: 0, max: 1_000_000 }),
        delays: fc.tuple(fc.integer({ min: 0, max: 60_000 }), fc.integer({ min: 0, max: 60_000 })),
        idempotencyHeader: token,
      })
      .map(({ delays: [a, b], ...rest }) => ({ ...rest, minDelayMs: Math.min(a, b), maxDelayMs: Math.max(a, b) })),
    breaker: fc.record(
      {
        errorThresholdPercentage: fc.integer({ min: 1, max: 100 }),
        volumeThreshold: fc.integer({ min: 0, max: 1000 }),
        resetTimeoutMs: fc.integer({ min: 1, max: 3_600_000 }),
        rollingWindowMs: fc.integer({ min: 10, max: 3_600_000 }),
      },
      { requiredKeys: [] },
    ),
    timeoutMs: fc.integer({ min: 0, max: 86_400_000 }),
    keepAliveTimeoutMs: fc.integer({ min: 1, max: 600_000 }),
    connections: fc.integer({ min: 1, max: 1000 }),
    connect: fc.constant({ rejectUnauthorized: true }),
    ejectOnGoaway: fc.boolean(),
    refreshIntervalMs: fc.integer({ min: 0, max: 60_000 }),
    logger: fc.constant({ debug: noop, info: noop, warn: noop, error: noop }),
    clock: fc.record({ now: fc.constant(() => 0), wallNow: fc.constant(Date.now), random: fc.constant(Math.random) }),
  },
  { requiredKeys: ['registry'] },
);

const SLOTS = [
  'registry',
  'registrySchemes',
  'registrySchemes.nacos',
  'services',
  'services.0',
  'services.4',
  'markerHeader',
  'warmup',
  'warmup.windowMs',
  'warmup.floor',
  'warmup.aggression',
  'retry',
  'retry.attempts',
  'retry.budgetRatio',
  'retry.budgetBurst',
  'retry.minDelayMs',
  'retry.maxDelayMs',
  'retry.idempotencyHeader',
  'breaker',
  'breaker.errorThresholdPercentage',
  'breaker.volumeThreshold',
  'breaker.resetTimeoutMs',
  'breaker.rollingWindowMs',
  'timeoutMs',
  'keepAliveTimeoutMs',
  'connections',
  'connect',
  'ejectOnGoaway',
  'refreshIntervalMs',
  'logger',
  'logger.warn',
  'clock',
  'clock.now',
  'clock.wallNow',
  'clock.random',
] as const;

/** Valid options with one to three values anywhere replaced by anything at all. */
const anyOptions = editedOptions(validOptions, SLOTS, odd);

// What the options accept (ClientOptions' documentation and createClient's ranges), written out
// independently: an accepted value outside of it was accepted silently.
const given = (v: unknown): boolean => v !== undefined && v !== null;
const isObject = (v: unknown): v is Input => typeof v === 'object' && v !== null && !Array.isArray(v);
const inRange = (v: unknown, min: number, max: number): boolean =>
  typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max;
const isToken = (v: unknown): boolean => typeof v === 'string' && /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(v);
const hasFunctions = (v: unknown, keys: readonly string[]): boolean =>
  isObject(v) && keys.every((k) => typeof v[k] === 'function');

/** Why `input` should have been refused, or undefined when every value given is valid. */
function problem(input: Input): string | undefined {
  const registry = input.registry;
  if (given(registry) && typeof registry !== 'string' && !hasFunctions(registry, ['subscribe', 'list']))
    return 'registry';
  const schemes = input.registrySchemes;
  if (given(schemes) && !(isObject(schemes) && Object.values(schemes).every((f) => typeof f === 'function')))
    return 'registrySchemes';
  const services = input.services;
  if (
    given(services) &&
    !(Array.isArray(services) && [...services].every((s) => typeof s === 'string' && s.trim().length > 0))
  )
    return 'services';
  if (given(input.markerHeader) && !isToken(input.markerHeader)) return 'markerHeader';
  const groups: [string, Record<string, (v: unknown, group: Input) => boolean>][] = [
    [
      'warmup',
      {
        windowMs: (v) => inRange(v, 0, Number.MAX_SAFE_INTEGER),
        floor: (v) => inRange(v, 0, 1) && v !== 0,
        aggression: (v) => inRange(v, 0.01, 100),
      },
    ],
    [
      'retry',
      {
        attempts: (v) => Number.isInteger(v) && inRange(v, 1, 10),
        budgetRatio: (v) => inRange(v, 0, 1),
        budgetBurst: (v) => inRange(v, 0, 1_000_000),
        minDelayMs: (v) => inRange(v, 0, 60_000),
        maxDelayMs: (v, g) => inRange(v, typeof g.minDelayMs === 'number' ? g.minDelayMs : 10, 60_000),
        idempotencyHeader: isToken,
      },
    ],
    [
      'breaker',
      {
        errorThresholdPercentage: (v) => inRange(v, 1, 100),
        volumeThreshold: (v) => inRange(v, 0, 1_000_000),
        resetTimeoutMs: (v) => inRange(v, 1, 3_600_000),
        rollingWindowMs: (v) => inRange(v, 10, 3_600_000),
      },
    ],
    [
      'clock',
      {
        now: (v) => typeof v === 'function',
        wallNow: (v) => typeof v === 'function',
        random: (v) => typeof v === 'function',
      },
    ],
  ];
  for (const [name, checks] of groups) {
    const group = input[name];
    if (!given(group)) continue;
    if (!isObject(group)) return name;
    for (const [key, valid] of Object.entries(checks))
      if (given(group[key]) && !valid(group[key], group)) return `${name}.${key}`;
  }
  const numbers: [string, (v: unknown) => boolean][] = [
    ['timeoutMs', (v) => inRange(v, 0, 86_400_000)],
    ['keepAliveTimeoutMs', (v) => inRange(v, 1, 600_000)],
    ['connections', (v) => Number.isInteger(v) && inRange(v, 1, Number.MAX_SAFE_INTEGER)],
    ['refreshIntervalMs', (v) => inRange(v, 0, 60_000)],
  ];
  for (const [key, valid] of numbers) if (given(input[key]) && !valid(input[key])) return key;
  if (given(input.connect) && !isObject(input.connect)) return 'connect';
  if (given(input.ejectOnGoaway) && typeof input.ejectOnGoaway !== 'boolean') return 'ejectOnGoaway';
  if (given(input.logger) && !hasFunctions(input.logger, ['debug', 'info', 'warn', 'error'])) return 'logger';
  return undefined;
}

describe('createClient options (property)', () => {
  it('valid options with anything in one to three places: a client only when every value is valid, else a coded error', () => {
    fc.assert(
      fc.property(anyOptions, (input) => {
        const client = attempt(input);
        if (client !== undefined) expect(problem(input), 'an invalid value that was accepted').toBeUndefined();
      }),
      { numRuns: RUNS * 2 },
    );
  });

  it('anything at all as the options, or as the registry: a coded error, never a crash', () => {
    fc.assert(
      fc.property(odd, fc.boolean(), (value, asRegistry) => {
        const client = attempt(asRegistry ? { registry: value } : value);
        if (client === undefined) return;
        // every option has a default: no options, or an object whose keys are all valid, make a client
        if (asRegistry) expect(problem({ registry: value })).toBeUndefined();
        else expect(value === undefined || (isObject(value) && problem(value) === undefined)).toBe(true);
      }),
      { numRuns: RUNS },
    );
  });

  it('registry URLs of any shape: a client, or a coded error', () => {
    const url = fc.oneof(
      fc.webUrl({ validSchemes: ['static', 'file', 'nacos', 'http'], withQueryParameters: true }),
      fc.string(),
      fc
        .tuple(
          fc.constantFrom('static://', 'STATIC://', 'file://', 'nacos://', 'constructor://', ''),
          fc.array(
            fc.tuple(
              fc.oneof(
                fc.domain(),
                fc.ipV4(),
                fc.ipV6().map((ip) => `[${ip}]`),
                fc.constantFrom('', 'a_b', '[::1'),
              ),
              fc.oneof(fc.integer({ min: -1, max: 70_000 }).map(String), fc.constantFrom('', 'abc', '0', '65536')),
            ),
            { maxLength: 3 },
          ),
        )
        .map(([scheme, hosts]) => `${scheme}${hosts.map(([h, p]) => `${h}:${p}`).join(',')}`),
    );
    fc.assert(
      fc.property(url, (registry) => {
        attempt({ registry, registrySchemes: {} });
      }),
      { numRuns: RUNS },
    );
  });

  it('accepts every valid set of options', () => {
    fc.assert(
      fc.property(validOptions, (input) => {
        clients.push(createClient(input as ClientOptions));
      }),
      { numRuns: RUNS },
    );
  });
});

describe('createClient: misspelled keys (property)', () => {
  const groups = schemaGroups(clientOptionsSchema, inspect);

  it('refuses a misspelled key of any group with its path, suggesting a key at least as close as the one meant', () => {
    expect(groups.map((g) => g.at.join('.'))).toEqual(expect.arrayContaining(['', 'retry', 'breaker', 'clock']));
    fc.assert(
      fc.property(misspelledKey(groups), ({ group, key, typo }) => {
        const options = withKeyAt({ registry: registryObject }, group.at, typo, 1, () => ({}));
        let error: unknown;
        try {
          clients.push(createClient(options as ClientOptions));
        } catch (thrown) {
          error = thrown;
        }
        const path = [...group.at, typo].join('.');
        expect(error, `${path} accepted`).toMatchObject({ code: 'LOSSLESS_ERR_INVALID_OPTION', option: path });
        const suggested = /did you mean "([^"]+)"\?/.exec((error as Error).message)?.[1] ?? '';
        const relative = suggested.slice(group.at.join('.').length).replace(/^\./, '').split('.');
        const candidate = relative
          .map((part, i) => (i === 0 ? part : `${part[0]?.toUpperCase()}${part.slice(1)}`))
          .join('');
        expect(suggested, (error as Error).message).not.toBe('');
        expect(editDistance(candidate, typo)).toBeLessThanOrEqual(editDistance(key, typo));
      }),
      { numRuns: RUNS },
    );
  });
});

describe('createClient: counterexamples found by the properties above', () => {
  it.each<[string, string, Record<string, unknown>]>([
    ['a clock that is a number', 'clock', { clock: 0 }],
    ['a clock.now that is not a function', 'clock.now', { clock: { now: 5 } }],
    ['services that is a symbol (was a TypeError)', 'services', { services: Symbol('odd') }],
    ['services with a number in it (was a TypeError)', 'services[0]', { services: [5] }],
    ['services with an empty name', 'services[0]', { services: [''] }],
    ['a registry without list()', 'registry', { registry: { subscribe: noop } }],
    ['a markerHeader that is not a string (was a TypeError)', 'markerHeader', { markerHeader: 5 }],
    [
      'a retry.idempotencyHeader that is no header name',
      'retry.idempotencyHeader',
      { retry: { idempotencyHeader: 'a b' } },
    ],
    ['connections -1 (was undici InvalidArgumentError)', 'connections', { connections: -1 }],
    ['connections 1.5', 'connections', { connections: 1.5 }],
    ['connections as a BigInt (was a TypeError)', 'connections', { connections: 10n }],
    ['a logger without functions', 'logger', { logger: 5 }],
    ['a registry scheme factory that is not a function', 'registrySchemes.nacos', { registrySchemes: { nacos: 5 } }],
    ['connect that is a string', 'connect', { connect: 'tls' }],
    ['connect that is an array', 'connect', { connect: [] }],
    ['ejectOnGoaway that is a string', 'ejectOnGoaway', { ejectOnGoaway: 'yes' }],
    ['warmup that is a number', 'warmup', { warmup: 5 }],
    ['retry that is an array', 'retry', { retry: [] }],
    ['breaker that is a string', 'breaker', { breaker: 'off' }],
  ])('rejects %s with LOSSLESS_ERR_INVALID_OPTION', (_what, option, overrides) => {
    expect(() => createClient({ registry: registryObject, ...overrides } as ClientOptions)).toThrowError(
      expect.objectContaining({ code: 'LOSSLESS_ERR_INVALID_OPTION', option }),
    );
  });

  it('builds no registry from a URL when another option is invalid (nothing left open)', () => {
    let built = 0;
    const factory = () => {
      built++;
      return registryObject;
    };
    for (const bad of [{ retry: { attempts: 0 } }, { breaker: { volumeThreshold: -1 } }, { clock: 0 }]) {
      expect(() =>
        createClient({ registry: 'test://x', registrySchemes: { test: factory }, ...bad } as ClientOptions),
      ).toThrowError(expect.objectContaining({ code: 'LOSSLESS_ERR_INVALID_OPTION' }));
    }
    expect(built).toBe(0);
  });

  it('names LOSSLESS_REGISTRY when the URL read from it cannot be used', () => {
    expect(() => createClient({ env: { LOSSLESS_REGISTRY: 'consul://127.0.0.1:1' } })).toThrowError(
      expect.objectContaining({
        code: 'LOSSLESS_ERR_INVALID_REGISTRY_URL',
        message: expect.stringContaining('LOSSLESS_REGISTRY'),
      }),
    );
  });

  it('takes null as "not set" for services and connections', () => {
    clients.push(createClient({ registry: registryObject, services: null, connections: null } as never));
  });
});
