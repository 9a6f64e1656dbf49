// Property-based tests of the provider options and the registry URL parsers: whatever is passed,
// each call either gives back a complete, valid result or throws a LosslessError with a
// LOSSLESS_ERR_ code; valid values come back exactly as given.

import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { InvalidRegistryUrlError, LosslessError } from '../src/errors.js';
import { type ProviderOptions, providerOptionsSchema, resolveProviderOptions } from '../src/options.js';
import { FileRegistry } from '../src/registry/file.js';
import { StaticRegistry } from '../src/registry/static.js';
import type { Registry } from '../src/registry/types.js';
import { parseStaticAddresses, registryFromUrl } from '../src/registry/url.js';
import { isHost } from '../src/registry/validate.js';
import { editDistance } from '../src/schema/closest.js';
import { inspect } from '../src/schema/parse.js';
import { editedOptions, type Input, misspelledKey, oddValues, schemaGroups, withKeyAt } from './property.js';

const RUNS = 200;

/** Calls `fn`; a throw must be a coded LosslessError (anything else fails the property). */
function attempt<T>(fn: () => T): { ok: true; value: T } | { ok: false; error: LosslessError } {
  try {
    return { ok: true, value: fn() };
  } catch (error) {
    if (!(error instanceof LosslessError)) throw error;
    expect(error.code).toMatch(/^LOSSLESS_ERR_[A-Z_]+$/);
    return { ok: false, error };
  }
}

const noop = (): void => {};

/** Values of every type, with the odd ones (NaN, -0, huge, empty, control characters, ...) well represented. */
const odd = oddValues(
  [
    undefined,
    null,
    true,
    false,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    -1,
    0,
    -0,
    0.5,
    1.5,
    65_535,
    65_536,
    86_400_000,
    86_400_001,
    2 ** 31,
    Number.MAX_SAFE_INTEGER,
    Number.MAX_VALUE,
    10n,
    '',
    ' ',
    '\n',
    '\u0000',
    '0',
    '-1',
    'NaN',
    '1e3',
    'é',
    '🙂',
    'SIGTERM',
    'deregister',
    { name: 'warm', run: noop },
    [],
    [undefined],
    {},
    Object.create(null),
    noop,
    Symbol('odd'),
    new Date(Number.NaN),
  ],
  // arrays with holes, of values that are valid where an array is expected (signals, warm-up hooks)
  fc.sparseArray(fc.constantFrom<unknown>('SIGTERM', { name: 'warm', run: noop }), { minNumElements: 1, maxLength: 3 }),
);

const validPort = fc.integer({ min: 1, max: 65_535 });
const validMs = fc.integer({ min: 0, max: 86_400_000 });
const positiveMs = fc.integer({ min: 1, max: 86_400_000 });
const validHost = fc.oneof(fc.ipV4(), fc.ipV6(), fc.domain(), fc.constant('localhost'));
const logger = { debug: noop, info: noop, warn: noop, error: noop };
const server = Object.assign(createServer(), { [fc.toStringMethod]: () => 'createServer()' });
const registryObject = Object.assign(new StaticRegistry([{ host: '127.0.0.1', port: 1 }]), {
  [fc.toStringMethod]: () => 'new StaticRegistry(...)',
});

/** Provider options where every value is valid (the cross-option rules included). */
const validOptions = fc.record({
  service: fc.string({ minLength: 1, maxLength: 255 }).filter((s) => s.trim().length > 0),
  registry: fc.constantFrom<string | Registry>('static://127.0.0.1:1', 'file:///tmp/x', registryObject),
  registrySchemes: fc.constant({ nacos: () => registryObject }),
  server: fc.constant(server),
  instance: fc.record({
    ip: validHost,
    port: validPort,
    id: fc.string({ minLength: 1 }),
    weight: fc.double({ min: 0, max: 1e9, noNaN: true }),
    metadata: fc.dictionary(fc.string(), fc.string()),
  }),
  admin: fc.record({ port: fc.integer({ min: 0, max: 65_535 }), host: validHost, token: fc.string({ minLength: 8 }) }),
  drain: fc
    .tuple(validMs, validMs, validMs, validMs, fc.constantFrom('deregister' as const, 'disable' as const))
    .map(([a, min, c, closeTimeoutMs, offline]) => {
      const quietWindowMs = Math.min(a, 86_399_999);
      return {
        quietWindowMs,
        minDrainMs: min,
        maxDrainMs: Math.max(quietWindowMs + 1, min, c),
        closeTimeoutMs,
        offline,
      };
    }),
  marker: fc.record({
    header: fc
      .stringMatching(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,20}$/)
      .filter((h) => !/^(connection|content-length|transfer-encoding)$/i.test(h)),
    value: fc.stringMatching(/^[\t\x20-\x7e]{1,20}$/),
  }),
  registration: fc
    .tuple(positiveMs, positiveMs, positiveMs, validMs, validMs)
    .map(([a, b, timeoutMs, confirmTimeoutMs, checkIntervalMs]) => ({
      timeoutMs,
      retryMinDelayMs: Math.min(a, b),
      retryMaxDelayMs: Math.max(a, b),
      confirmTimeoutMs,
      checkIntervalMs,
    })),
  warmupWindowMs: validMs,
  weightRamp: fc.boolean(),
  warmups: fc.array(fc.record({ name: fc.string({ minLength: 1 }), run: fc.constant(noop), timeoutMs: positiveMs }), {
    maxLength: 2,
  }),
  hookTimeoutMs: positiveMs,
  signals: fc.subarray(['SIGTERM', 'SIGINT', 'SIGUSR2', 'SIGHUP'] as NodeJS.Signals[]),
  exit: fc.constantFrom<false | ((code: number) => void)>(false, noop),
  logger: fc.constant(logger),
  env: fc.record(
    {
      LOSSLESS_REGISTRY: fc.constantFrom('static://127.0.0.1:1', '', ' '),
      LOSSLESS_INSTANCE_IP: validHost,
      LOSSLESS_ADMIN_PORT: fc.integer({ min: 0, max: 65_535 }).map(String),
      LOSSLESS_ADMIN_HOST: validHost,
      LOSSLESS_ADMIN_TOKEN: fc.string({ minLength: 8 }),
    },
    { requiredKeys: [] },
  ),
});

/** Every place a value can go: each option, each option of a group, and elements of the arrays. */
const SLOTS = [
  'service',
  'registry',
  'registrySchemes',
  'registrySchemes.nacos',
  'registrySchemes.file',
  'server',
  'instance',
  'instance.ip',
  'instance.port',
  'instance.id',
  'instance.weight',
  'instance.metadata',
  'instance.metadata.zone',
  'admin',
  'admin.port',
  'admin.host',
  'admin.token',
  'drain',
  'drain.quietWindowMs',
  'drain.minDrainMs',
  'drain.maxDrainMs',
  'drain.closeTimeoutMs',
  'drain.offline',
  'marker',
  'marker.header',
  'marker.value',
  'registration',
  'registration.timeoutMs',
  'registration.retryMinDelayMs',
  'registration.retryMaxDelayMs',
  'registration.confirmTimeoutMs',
  'registration.checkIntervalMs',
  'warmupWindowMs',
  'weightRamp',
  'warmups',
  'warmups.0',
  'warmups.3',
  'warmups.0.name',
  'warmups.0.run',
  'warmups.0.timeoutMs',
  'hookTimeoutMs',
  'signals',
  'signals.0',
  'signals.5',
  'exit',
  'logger',
  'logger.warn',
  'env',
  'env.LOSSLESS_REGISTRY',
  'env.LOSSLESS_INSTANCE_IP',
  'env.LOSSLESS_ADMIN_PORT',
  'env.LOSSLESS_ADMIN_HOST',
  'env.LOSSLESS_ADMIN_TOKEN',
] as const;

/** Valid options with one to three values anywhere replaced by anything at all. */
const anyProviderOptions = editedOptions(validOptions, SLOTS, odd);

const given = (v: unknown): boolean => v !== undefined && v !== null;
const isPlainObject = (v: unknown): v is Input => typeof v === 'object' && v !== null && !Array.isArray(v);
const isPortNumber = (v: unknown): boolean => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 65_535;
const isDuration = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v) && v >= 0 && v <= 86_400_000;

/** What accepted options must satisfy: every value that was given is valid and came back unchanged. */
function expectSound(input: Input, o: ReturnType<typeof resolveProviderOptions>): void {
  expect(o.service).toBe(input.service);
  expect(typeof o.service === 'string' && o.service.trim().length > 0 && o.service.length <= 255).toBe(true);
  if (given(input.registry)) expect(o.registry).toBe(input.registry);
  expect(typeof o.registry === 'string' || typeof (o.registry as Registry).subscribe === 'function').toBe(true);
  if (given(input.registrySchemes)) {
    expect(isPlainObject(input.registrySchemes)).toBe(true);
    for (const factory of Object.values(o.registrySchemes)) expect(typeof factory).toBe('function');
  }
  for (const key of ['instance', 'drain', 'marker', 'registration'] as const) {
    if (given(input[key])) expect(isPlainObject(input[key]), `${key} is an object`).toBe(true);
  }
  const instance = (input.instance ?? {}) as Input;
  if (given(instance.ip)) expect(o.instance.ip).toBe(instance.ip);
  if (o.instance.ip !== undefined) expect(isHost(o.instance.ip)).toBe(true);
  if (given(instance.port)) expect(o.instance.port).toBe(instance.port);
  if (o.instance.port !== undefined) expect(isPortNumber(o.instance.port)).toBe(true);
  if (given(instance.id)) expect(o.instance.id).toBe(instance.id);
  if (given(instance.weight)) expect(o.instance.weight).toBe(instance.weight);
  expect(Number.isFinite(o.instance.weight) && o.instance.weight >= 0).toBe(true);
  for (const value of Object.values(o.instance.metadata)) expect(typeof value).toBe('string');
  if (o.admin !== false) {
    expect(!given(input.admin) || isPlainObject(input.admin), 'admin is an object').toBe(true);
    const admin = (input.admin ?? {}) as Input;
    if (given(admin.port)) expect(o.admin.port).toBe(admin.port);
    expect(o.admin.port === 0 || isPortNumber(o.admin.port)).toBe(true);
    if (given(admin.host)) expect(o.admin.host).toBe(admin.host);
    if (o.admin.host !== undefined) expect(isHost(o.admin.host)).toBe(true);
    if (o.admin.token !== undefined) expect(o.admin.token.length).toBeGreaterThanOrEqual(8);
  }
  const durations: [Input, Record<string, number>][] = [
    [(input.drain ?? {}) as Input, o.drain as unknown as Record<string, number>],
    [(input.registration ?? {}) as Input, o.registration as unknown as Record<string, number>],
    [input, { warmupWindowMs: o.warmupWindowMs, hookTimeoutMs: o.hookTimeoutMs }],
  ];
  for (const [from, to] of durations) {
    for (const [key, value] of Object.entries(to)) {
      if (!key.endsWith('Ms')) continue;
      if (from[key] !== undefined) expect(value, key).toBe(from[key]);
      expect(isDuration(value), key).toBe(true);
    }
  }
  expect(o.drain.maxDrainMs).toBeGreaterThan(o.drain.quietWindowMs);
  expect(o.drain.maxDrainMs).toBeGreaterThanOrEqual(o.drain.minDrainMs);
  expect(['deregister', 'disable']).toContain(o.drain.offline);
  expect(o.registration.retryMaxDelayMs).toBeGreaterThanOrEqual(o.registration.retryMinDelayMs);
  expect(o.marker.header).toMatch(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/);
  expect(o.marker.value).toMatch(/^[\t\x20-\x7e]+$/);
  expect(Array.isArray(input.warmups) || input.warmups === undefined || input.warmups === null).toBe(true);
  expect(o.warmups.length).toBe(Object.keys(o.warmups).length); // no holes
  for (const hook of o.warmups) {
    expect(typeof hook.name === 'string' && hook.name.length > 0).toBe(true);
    expect(typeof hook.run).toBe('function');
    expect(isDuration(hook.timeoutMs) && hook.timeoutMs > 0).toBe(true);
  }
  for (const signal of o.signals) expect(signal).toMatch(/^SIG[A-Z0-9]+$/);
  expect(o.signals.length).toBe(Object.keys(o.signals).length); // no holes
  expect(o.exit === undefined || typeof o.exit === 'function').toBe(true);
  for (const level of ['debug', 'info', 'warn', 'error'] as const) expect(typeof o.logger[level]).toBe('function');
}

describe('resolveProviderOptions (property)', () => {
  it('valid options with anything in one to three places: valid options, or a coded error', () => {
    fc.assert(
      fc.property(anyProviderOptions, (input) => {
        const result = attempt(() => resolveProviderOptions(input as unknown as ProviderOptions));
        if (result.ok) expectSound(input, result.value);
      }),
      { numRuns: RUNS * 3 },
    );
  });

  it('anything at all as the options: a coded error or valid options, never a crash', () => {
    fc.assert(
      fc.property(odd, (input) => {
        attempt(() => resolveProviderOptions(input as ProviderOptions));
      }),
      { numRuns: RUNS },
    );
  });

  it('valid options come back exactly as given (no clamping, no rounding)', () => {
    fc.assert(
      fc.property(validOptions, (input) => {
        const o = resolveProviderOptions(input);
        expect(o.service).toBe(input.service);
        expect(o.registry).toBe(input.registry);
        expect(o.registrySchemes).toEqual(input.registrySchemes);
        expect(o.instance).toEqual(input.instance);
        expect(o.admin).toEqual(input.admin);
        expect(o.drain).toEqual(input.drain);
        expect(o.marker).toEqual(input.marker);
        expect(o.registration).toEqual(input.registration);
        expect(o.warmupWindowMs).toBe(input.warmupWindowMs);
        expect(o.warmups).toEqual(input.warmups);
        expect(o.hookTimeoutMs).toBe(input.hookTimeoutMs);
        expect(o.signals).toEqual(input.signals);
        expect(o.exit).toBe(input.exit === false ? undefined : input.exit);
        expect(o.logger).toBe(input.logger);
      }),
      { numRuns: RUNS },
    );
  });
});

describe('resolveProviderOptions: misspelled keys (property)', () => {
  const groups = schemaGroups(providerOptionsSchema, inspect);

  it('refuses a misspelled key of any group with its path, suggesting a key at least as close as the one meant', () => {
    // the walk must reach the nested groups and the warm-up hooks, or this could pass on the top level alone
    expect(groups.map((g) => g.at.join('.'))).toEqual(expect.arrayContaining(['', 'drain', 'admin', 'warmups.0']));
    fc.assert(
      fc.property(misspelledKey(groups), fc.constantFrom<unknown>(1, 'x', true, {}), ({ group, key, typo }, value) => {
        const options = withKeyAt({ service: 'orders', env: {} }, group.at, typo, value, () => ({
          name: 'warm',
          run: noop,
        }));
        const result = attempt(() => resolveProviderOptions(options as unknown as ProviderOptions));
        expect(result.ok, `${typo} accepted`).toBe(false);
        if (result.ok) return;
        const where = group.at.map((k) => (typeof k === 'number' ? `[${k}]` : `.${k}`)).join('');
        const path = `${where}.${typo}`.replace(/^\./, '');
        expect(result.error).toMatchObject({ code: 'LOSSLESS_ERR_INVALID_OPTION', option: path });
        // one typing mistake away from a key: there is always a suggestion, and none further than that key
        const suggested = /did you mean "([^"]+)"\?/.exec(result.error.message)?.[1];
        expect(suggested, result.error.message).toBeDefined();
        const relative = (suggested as string).slice(where.replace(/^\./, '').length).replace(/^\./, '').split('.');
        const candidate = relative
          .map((part, i) => (i === 0 ? part : `${part[0]?.toUpperCase()}${part.slice(1)}`))
          .join('');
        expect(editDistance(candidate, typo)).toBeLessThanOrEqual(editDistance(key, typo));
      }),
      { numRuns: RUNS * 2 },
    );
  });
});

// ------------------------------------------------------------------------------------------------
// registry URLs

const base = join(tmpdir(), 'lossless-property-never-created');
const opened: Registry[] = [];
afterAll(async () => {
  for (const registry of opened.splice(0)) await registry.close();
});

/** Calls registryFromUrl and checks what it gives: a registry of a known kind whose settings are valid. */
function expectRegistryOrCodedError(url: string, options?: Parameters<typeof registryFromUrl>[1]): void {
  const result = attempt(() => registryFromUrl(url, options));
  if (!result.ok) return;
  const registry = result.value;
  opened.push(registry);
  for (const method of ['register', 'deregister', 'list', 'subscribe', 'close', 'setEnabled', 'setWeight'] as const)
    expect(typeof registry[method], method).toBe('function');
  if (registry instanceof FileRegistry) {
    expect(registry.dir.startsWith('/')).toBe(true);
    expect(registry.dir).not.toContain('\u0000');
    // timers clamp anything above 2^31 - 1 ms to 1 ms: a huge interval would poll or beat in a busy loop
    const params = new URL(url).searchParams;
    for (const key of ['heartbeatMs', 'pollMs']) {
      const raw = params.get(key);
      if (raw !== null) expect(Number(raw), key).toBeLessThanOrEqual(2 ** 31 - 1);
    }
  } else if (registry instanceof StaticRegistry) {
    expect(registry.addresses.length).toBeGreaterThan(0);
    for (const a of registry.addresses) {
      expect(isHost(a.host), a.host).toBe(true);
      expect(isPortNumber(a.port)).toBe(true);
    }
  } else {
    expect.fail(`an unexpected registry from ${JSON.stringify(url)}: ${String(registry)}`);
  }
}

const scheme = fc.constantFrom(
  'file',
  'FILE',
  'static',
  'Static',
  'nacos',
  'http',
  'https',
  'consul',
  'constructor',
  'tostring',
  'hasownproperty',
  '__proto__',
  'x',
  '1abc',
  '',
);
const badPort = fc.constantFrom('0', '65536', '70000', '-1', 'abc', '', '99999', '1.5', ' 80', '0x50', '1e3');
const anyPort = fc.oneof(validPort.map(String), badPort);
const anyHost = fc.oneof(
  fc.domain(),
  fc.ipV4(),
  fc.ipV6().map((ip) => `[${ip}]`),
  fc.ipV6(),
  fc.constantFrom('', ' ', '[]', '[:::]', '[::1', '::1]', 'a b', 'ä.example', 'host_name', '-lead', '..', 'h/x', 'h?x'),
  fc.string({ maxLength: 10 }),
);
const hostPort = fc.oneof(
  fc.tuple(anyHost, anyPort).map(([h, p]) => `${h}:${p}`),
  anyHost,
  fc.string({ maxLength: 12 }),
);
const query = fc.oneof(
  fc.constant(''),
  fc
    .array(
      fc.tuple(
        fc.constantFrom('heartbeatMs', 'staleMs', 'pollMs', 'bogus', 'namespace', ''),
        fc.oneof(
          fc.integer().map(String),
          fc.constantFrom('', 'NaN', 'Infinity', '1e400', '1e10', '2147483648', '0x10', '-0', ' 5', '%00'),
        ),
      ),
      { minLength: 1, maxLength: 3 },
    )
    .map((pairs) => `?${pairs.map(([k, v]) => `${k}=${v}`).join('&')}`),
);
const path = fc.oneof(
  fc.constant(''),
  fc.constant('/'),
  fc.string({ maxLength: 12 }).map((s) => `/${s}`),
  fc.constantFrom('/a%00b', '/a%2Fb', '/%zz', '/a/../b', '//x'),
);
/** file URLs on a directory that is never created, with any of the parameters. */
const fileUrl = fc
  .tuple(fc.constantFrom('file://', 'file:', 'FILE://localhost', 'file://otherhost'), path, query)
  .map(([prefix, p, q]) => `${prefix}${pathToFileURL(base).pathname}${p}${q}`);
/** URL-like strings: schemes known and not, authorities with good and bad hosts and ports, paths, queries. */
const urlLike = fc.oneof(
  fc
    .tuple(
      scheme,
      fc.constantFrom('://', ':', ':/', ':///'),
      fc.oneof(fc.constant(''), fc.constantFrom('user:pw@', '@', 'u@')),
      fc.array(hostPort, { maxLength: 3 }).map((a) => a.join(',')),
      path,
      query,
      fc.constantFrom('', '#frag'),
    )
    .map((parts) => parts.join('')),
  fileUrl,
  fc.webUrl({ validSchemes: ['file', 'static', 'nacos', 'http'], withQueryParameters: true, withFragments: true }),
  fc.string(),
  fc.string({ unit: 'binary' }),
);

describe('registryFromUrl (property)', () => {
  it('any string or URL-like string: a valid registry, or a coded error', () => {
    fc.assert(
      fc.property(urlLike, (url) => {
        expectRegistryOrCodedError(url);
      }),
      { numRuns: RUNS * 3 },
    );
  });

  it('anything as the URL or as the scheme factories: a coded error, never a crash', () => {
    const schemes = fc.oneof(odd, fc.dictionary(scheme, odd));
    fc.assert(
      fc.property(fc.oneof(odd, urlLike), schemes, (url, schemes) => {
        const result = attempt(() => registryFromUrl(url as string, { schemes } as never));
        if (result.ok) {
          opened.push(result.value);
          // only a factory given for the scheme may have made it, or a built-in one
          expect(typeof result.value.subscribe).toBe('function');
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('valid file:// URLs give a FileRegistry on that directory, with the parameters as given', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 20 }).filter((s) => !s.includes('\u0000') && !/[/\\]|^\.\.?$/.test(s)),
        fc.integer({ min: 1, max: 60_000 }),
        fc.integer({ min: 1, max: 60_000 }),
        (segment, heartbeatMs, pollMs) => {
          const dir = join(base, segment);
          const url = `${pathToFileURL(dir).href}?heartbeatMs=${heartbeatMs}&staleMs=${heartbeatMs * 3}&pollMs=${pollMs}`;
          const registry = registryFromUrl(url);
          opened.push(registry);
          expect(registry).toBeInstanceOf(FileRegistry);
          expect((registry as FileRegistry).dir).toBe(dir);
        },
      ),
      { numRuns: RUNS },
    );
  });
});

describe('parseStaticAddresses (property)', () => {
  it('any string: valid addresses, or InvalidRegistryUrlError', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          urlLike,
          hostPort.map((hp) => `static://${hp}`),
        ),
        (url) => {
          let addresses: ReturnType<typeof parseStaticAddresses>;
          try {
            addresses = parseStaticAddresses(url);
          } catch (error) {
            expect(error).toBeInstanceOf(InvalidRegistryUrlError);
            return;
          }
          expect(addresses.length).toBeGreaterThan(0);
          for (const a of addresses) {
            expect(isHost(a.host), `host ${JSON.stringify(a.host)} of ${JSON.stringify(url)}`).toBe(true);
            expect(isPortNumber(a.port)).toBe(true);
          }
        },
      ),
      { numRuns: RUNS * 3 },
    );
  });

  it('valid lists come back as given, IPv6 in brackets', () => {
    const address = fc.record({ host: fc.oneof(fc.domain(), fc.ipV4(), fc.ipV6()), port: validPort });
    fc.assert(
      fc.property(fc.array(address, { minLength: 1, maxLength: 5 }), fc.boolean(), (list, slash) => {
        const url = `static://${list.map((a) => `${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`).join(',')}${slash ? '/' : ''}`;
        expect(parseStaticAddresses(url)).toEqual(list);
        const registry = registryFromUrl(url);
        opened.push(registry);
        expect((registry as StaticRegistry).addresses).toEqual(list);
      }),
      { numRuns: RUNS },
    );
  });
});
