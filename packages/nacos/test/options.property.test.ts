// Property-based tests of the Nacos options and nacos:// URLs: whatever is passed, the parser either
// gives options in which every value is valid and as given, or throws a LosslessError with a
// LOSSLESS_ERR_ code. No Nacos server is contacted: a registry is only built and closed.

import { isIP } from 'node:net';
import { LosslessError, registryFromUrl } from '@lossless/core';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { editDistance } from '../../core/src/schema/closest.js';
import { inspect } from '../../core/src/schema/parse.js';
import { editedOptions, misspelledKey, oddValues, schemaGroups } from '../../core/test/property.js';
import {
  grpcAddress,
  type NacosRegistryOptions,
  nacosOptionsSchema,
  parseNacosUrl,
  type ResolvedNacosOptions,
  resolveNacosOptions,
} from '../src/options.js';
import { createNacosRegistry, NacosRegistry } from '../src/registry.js';

const RUNS = 300;

const registries: NacosRegistry[] = [];
afterEach(async () => {
  await Promise.all(registries.splice(0).map((r) => r.close()));
});

/** Calls `fn`; a throw must be a coded LosslessError (anything else fails the property). */
function attempt<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch (error) {
    if (!(error instanceof LosslessError)) throw error;
    expect(error.code).toMatch(/^LOSSLESS_ERR_[A-Z_]+$/);
    return undefined;
  }
}

const noop = (): void => {};

/** Values of every type, with the odd ones well represented. */
const odd = oddValues([
  undefined,
  null,
  true,
  'true',
  Number.NaN,
  Number.POSITIVE_INFINITY,
  -1,
  0,
  0.5,
  3_600_001,
  2 ** 31,
  10n,
  '',
  ' ',
  '.',
  '-',
  'a..b',
  '[:]',
  '[::1]',
  'h:0',
  'h:65536',
  'h:8848',
  '127.0.0.1',
  'my-host',
  'a/b',
  '\u0000',
  [],
  [''],
  ['h'],
  {},
  Object.create(null),
  noop,
  Symbol('odd'),
]);

const name = fc.stringMatching(/^[A-Za-z0-9_.:-]{1,30}$/);
const hostName = fc.oneof(fc.domain(), fc.ipV4(), fc.constant('localhost'));
const server = fc.oneof(
  hostName,
  fc.tuple(hostName, fc.integer({ min: 1, max: 65_535 })).map(([h, p]) => `${h}:${p}`),
  fc.tuple(fc.ipV6(), fc.integer({ min: 1, max: 65_535 })).map(([h, p]) => `[${h}]:${p}`),
);

/** A server whose port leaves room for the gRPC port at + 1000. */
const grpcServer = server.filter((s) => Number(/:(\d+)$/.exec(s)?.[1] ?? 8848) <= 64_535);
const serverList = (s: fc.Arbitrary<string>) =>
  fc.oneof(
    fc.array(s, { minLength: 1, maxLength: 3 }),
    fc.array(s, { minLength: 1, maxLength: 3 }).map((list) => list.join(',')),
  );

/** Nacos options where every value is valid. */
const validOptions = fc
  .record(
    {
      servers: serverList(server),
      namespace: name,
      group: name,
      cluster: name,
      ephemeral: fc.boolean(),
      metadata: fc.dictionary(fc.string(), fc.string()),
      credentials: fc.option(fc.tuple(fc.string({ minLength: 1 }), fc.string({ minLength: 1 }))),
      tls: fc.boolean(),
      requestTimeoutMs: fc.integer({ min: 1, max: 3_600_000 }),
      pollMs: fc.integer({ min: 1, max: 3_600_000 }),
      clientIp: fc.oneof(fc.ipV4(), fc.ipV6()),
      logger: fc.constant({ debug: noop, info: noop, warn: noop, error: noop }),
      transport: fc.constantFrom('grpc' as const, 'http' as const),
      grpcPort: fc.integer({ min: 1, max: 65_535 }),
    },
    { requiredKeys: ['servers'] },
  )
  .chain((o) =>
    // gRPC takes ephemeral instances only, and needs a port for each server: HTTP + 1000, or grpcPort
    (o.transport ?? (o.ephemeral === false ? 'http' : 'grpc')) === 'grpc' && o.grpcPort === undefined
      ? serverList(grpcServer).map((servers) => ({ ...o, servers, ephemeral: true }))
      : fc.constant(o.transport === 'grpc' ? { ...o, ephemeral: true } : o),
  )
  .map(({ credentials, ...rest }) => ({
    ...rest,
    ...(credentials ? { username: credentials[0], password: credentials[1] } : {}),
  }));

const SLOTS = [
  'servers',
  'servers.0',
  'servers.3',
  'namespace',
  'group',
  'cluster',
  'ephemeral',
  'metadata',
  'metadata.zone',
  'username',
  'password',
  'tls',
  'requestTimeoutMs',
  'pollMs',
  'clientIp',
  'logger',
  'logger.warn',
  'transport',
  'grpcPort',
] as const;

/** Valid options with one to three values anywhere replaced by anything at all. */
const anyOptions = editedOptions(validOptions, SLOTS, odd);

// What a resolved option may be, written out independently of the parser.
const HOST_NAME =
  /^(?=.{1,253}$)[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;
function isServer(s: string): boolean {
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):(\d+)$/.exec(s);
  if (m === null) return false;
  const port = Number(m[3]);
  const host = m[1] !== undefined ? isIP(m[1]) === 6 : HOST_NAME.test(m[2] as string);
  return host && port >= 1 && port <= 65_535;
}

function expectSound(o: ResolvedNacosOptions): void {
  expect(o.servers.length).toBeGreaterThan(0);
  for (const s of o.servers) expect(isServer(s), `server ${JSON.stringify(s)}`).toBe(true);
  for (const key of ['namespace', 'group', 'cluster'] as const) expect(o[key]).toMatch(/^[A-Za-z0-9_.:-]{1,128}$/);
  expect(typeof o.ephemeral).toBe('boolean');
  expect(typeof o.tls).toBe('boolean');
  for (const v of Object.values(o.metadata)) expect(typeof v).toBe('string');
  expect(o.username === undefined).toBe(o.password === undefined);
  if (o.username !== undefined) expect(o.username.length > 0 && (o.password as string).length > 0).toBe(true);
  for (const ms of [o.requestTimeoutMs, o.pollMs]) expect(Number.isFinite(ms) && ms > 0 && ms <= 3_600_000).toBe(true);
  if (o.clientIp !== undefined) expect(isIP(o.clientIp)).not.toBe(0);
  expect(['grpc', 'http']).toContain(o.transport);
  if (o.grpcPort !== undefined)
    expect(Number.isInteger(o.grpcPort) && o.grpcPort >= 1 && o.grpcPort <= 65_535).toBe(true);
  if (o.transport === 'grpc') {
    expect(o.ephemeral).toBe(true);
    for (const s of o.servers) {
      const port = Number(/:(\d+)$/.exec(grpcAddress(s, o))?.[1]);
      expect(port >= 1 && port <= 65_535, `gRPC port of ${s}`).toBe(true);
    }
  }
}

/** `host:port` with 8848 when the port is left out, as the parser writes servers. */
const withPort = (s: string): string => (/:\d+$/.test(s) ? s : `${s}:8848`);

describe('resolveNacosOptions (property)', () => {
  it('valid options with anything in one to three places: valid options, or a coded error', () => {
    fc.assert(
      fc.property(anyOptions, (input) => {
        const o = attempt(() => resolveNacosOptions(input as unknown as NacosRegistryOptions));
        if (o === undefined) return;
        expectSound(o);
        if (input.logger !== undefined && input.logger !== null)
          for (const level of ['debug', 'info', 'warn', 'error'])
            expect(typeof (input.logger as Record<string, unknown>)[level], `logger.${level}`).toBe('function');
      }),
      { numRuns: RUNS * 2 },
    );
  });

  it('anything at all as the options: a coded error, never a crash', () => {
    fc.assert(
      fc.property(odd, (input) => {
        const o = attempt(() => resolveNacosOptions(input as NacosRegistryOptions));
        if (o !== undefined) expectSound(o);
      }),
      { numRuns: RUNS },
    );
  });

  it('valid options come back as given (servers with their default port)', () => {
    fc.assert(
      fc.property(validOptions, (input) => {
        const o = resolveNacosOptions(input);
        const servers = typeof input.servers === 'string' ? input.servers.split(',') : input.servers;
        expect(o.servers).toEqual(servers.map(withPort));
        for (const key of [
          'namespace',
          'group',
          'cluster',
          'ephemeral',
          'tls',
          'requestTimeoutMs',
          'pollMs',
          'transport',
          'grpcPort',
        ] as const)
          if (input[key] !== undefined) expect(o[key]).toBe(input[key]);
        expect(o.metadata).toEqual(input.metadata ?? {});
        expect([o.username, o.password]).toEqual([input.username, input.password]);
        if (input.clientIp !== undefined) expect(o.clientIp).toBe(input.clientIp);
      }),
      { numRuns: RUNS },
    );
  });
});

describe('resolveNacosOptions: misspelled keys (property)', () => {
  it('refuses a misspelled key with its name, suggesting a key at least as close as the one meant', () => {
    const groups = schemaGroups(nacosOptionsSchema, inspect);
    expect(groups.map((g) => g.keys.length)).toEqual([Object.keys(inspect(nacosOptionsSchema).entries ?? {}).length]);
    fc.assert(
      fc.property(misspelledKey(groups), fc.constantFrom<unknown>(1, 'x', true, {}), ({ key, typo }, value) => {
        let error: unknown;
        try {
          resolveNacosOptions({ servers: '127.0.0.1:8848', [typo]: value } as unknown as NacosRegistryOptions);
        } catch (e) {
          error = e;
        }
        expect(error, `${typo} accepted`).toBeInstanceOf(LosslessError);
        expect(error).toMatchObject({ code: 'LOSSLESS_ERR_INVALID_OPTION', option: typo });
        const suggested = /did you mean "([^"]+)"\?/.exec((error as Error).message)?.[1];
        expect(suggested, (error as Error).message).toBeDefined();
        expect(editDistance(suggested as string, typo)).toBeLessThanOrEqual(editDistance(key, typo));
      }),
      { numRuns: RUNS },
    );
  });

  it('refuses a misspelled URL parameter, suggesting one at least as close as the one meant', () => {
    const parameters = [
      'namespace',
      'group',
      'cluster',
      'ephemeral',
      'clientIp',
      'pollMs',
      'requestTimeoutMs',
      'transport',
      'grpcPort',
    ];
    const groups = [{ at: [], keys: parameters }];
    fc.assert(
      fc.property(misspelledKey(groups), ({ key, typo }) => {
        fc.pre(!Object.hasOwn(inspect(nacosOptionsSchema).entries ?? {}, typo));
        let error: unknown;
        try {
          parseNacosUrl(`nacos://127.0.0.1:8848/?${encodeURIComponent(typo)}=1`);
        } catch (e) {
          error = e;
        }
        expect(error).toMatchObject({ code: 'LOSSLESS_ERR_INVALID_REGISTRY_URL' });
        const suggested = /did you mean "([^"]+)"\?/.exec((error as Error).message)?.[1];
        expect(suggested, (error as Error).message).toBeDefined();
        expect(editDistance(suggested as string, typo)).toBeLessThanOrEqual(editDistance(key, typo));
      }),
      { numRuns: RUNS },
    );
  });
});

// ------------------------------------------------------------------------------------------------
// nacos:// URLs

const userPart = fc.oneof(fc.constant(''), fc.string({ minLength: 1, maxLength: 8 }), fc.constantFrom('%zz', '%40'));
const hostPart = fc.oneof(
  server,
  fc.constantFrom('', '.', '-', 'a..b', '[:]', '[::1', 'h:0', 'h:65536', 'h:abc', 'a_b', 'ä.example'),
  fc.string({ maxLength: 8 }),
);
const paramPart = fc.tuple(
  fc.constantFrom(
    'namespace',
    'group',
    'cluster',
    'ephemeral',
    'clientIp',
    'pollMs',
    'requestTimeoutMs',
    'transport',
    'grpcPort',
    'bogus',
  ),
  fc.oneof(
    name,
    fc.constantFrom(
      '',
      'true',
      'false',
      'yes',
      '0',
      '-1',
      '1e400',
      '3600001',
      '127.0.0.1',
      '::1',
      'a/b',
      '%zz',
      'grpc',
      'http',
      '09848',
      '65536',
    ),
    fc.integer({ min: 1, max: 3_600_000 }).map(String),
  ),
);

interface UrlParts {
  readonly tls: boolean;
  readonly credentials: readonly [string, string | undefined] | null;
  readonly hosts: readonly string[];
  readonly params: readonly (readonly [string, string])[];
  readonly encode: boolean;
}

const urlParts: fc.Arbitrary<UrlParts> = fc.record({
  tls: fc.boolean(),
  credentials: fc.option(fc.tuple(userPart, fc.option(userPart, { nil: undefined }))),
  hosts: fc.array(hostPart, { minLength: 1, maxLength: 3 }),
  params: fc.array(paramPart, { maxLength: 3 }),
  encode: fc.boolean(),
});

function urlOf(p: UrlParts): string {
  const enc = (s: string): string => (p.encode ? encodeURIComponent(s) : s);
  const userinfo =
    p.credentials === null
      ? ''
      : `${enc(p.credentials[0])}${p.credentials[1] === undefined ? '' : `:${enc(p.credentials[1])}`}@`;
  const query = p.params.length === 0 ? '' : `/?${p.params.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&')}`;
  return `nacos${p.tls ? '+tls' : ''}://${userinfo}${p.hosts.join(',')}${query}`;
}

describe('parseNacosUrl (property)', () => {
  it('URLs built from good and bad parts: options holding exactly those parts, or a coded error', () => {
    fc.assert(
      fc.property(urlParts, (parts) => {
        const url = urlOf(parts);
        const o = attempt(() => resolveNacosOptions(parseNacosUrl(url)));
        if (o === undefined) return;
        expectSound(o);
        expect(o.tls).toBe(parts.tls);
        // hosts with URL delimiters in them (or credentials left unencoded) shift the parts: check the rest only
        if (!parts.encode || !parts.hosts.every((h) => /^[^@/?#,]*$/.test(h))) return;
        expect(o.servers).toEqual(parts.hosts.map((h) => withPort(h.trim())));
        if (parts.credentials !== null) {
          const [user, password] = parts.credentials;
          // credentials that were given are used, or the URL is refused: never dropped
          if (user !== '' || (password !== undefined && password !== ''))
            expect([o.username, o.password], url).toEqual([user, password]);
        }
        const first = new Map<string, string>();
        for (const [k, v] of parts.params) if (!first.has(k)) first.set(k, v);
        for (const [k, v] of first) {
          const value = (o as unknown as Record<string, unknown>)[k];
          expect(String(value), k).toBe(String(k.endsWith('Ms') || k === 'grpcPort' ? Number(v) : v));
        }
      }),
      { numRuns: RUNS * 2 },
    );
  });

  it('any string: options, or a coded error; as a registry, built without contacting anything and closed', () => {
    const url = fc.oneof(
      fc.string(),
      fc.string({ unit: 'binary' }),
      fc.webUrl({ validSchemes: ['nacos', 'nacos+tls', 'http'], withQueryParameters: true, withFragments: true }),
      urlParts.map(urlOf),
    );
    fc.assert(
      fc.property(url, (text) => {
        const registry = attempt(() => createNacosRegistry(text));
        if (registry === undefined) return;
        registries.push(registry);
        expect(registry).toBeInstanceOf(NacosRegistry);
        expectSound(registry.options);
        const viaCore = attempt(() => registryFromUrl(text, { schemes: { nacos: createNacosRegistry } }));
        if (viaCore instanceof NacosRegistry) registries.push(viaCore);
      }),
      { numRuns: RUNS },
    );
  });
});
