import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { InvalidRegistryUrlError } from '../../src/errors.js';
import type { Logger } from '../../src/logger.js';
import { FileRegistry } from '../../src/registry/file.js';
import { StaticRegistry } from '../../src/registry/static.js';
import type { Registry } from '../../src/registry/types.js';
import { parseStaticAddresses, type RegistryFactory, registryFromUrl } from '../../src/registry/url.js';

let dir: string;
const registries: Registry[] = [];

function open(url: string, options?: Parameters<typeof registryFromUrl>[1]): Registry {
  const registry = registryFromUrl(url, options);
  registries.push(registry);
  return registry;
}

function errorOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

function expectUrlError(url: string, options?: Parameters<typeof registryFromUrl>[1]): InvalidRegistryUrlError {
  const error = errorOf(() => open(url, options));
  expect(error).toBeInstanceOf(InvalidRegistryUrlError);
  expect(error).toMatchObject({ code: 'LOSSLESS_ERR_INVALID_REGISTRY_URL' });
  return error as InvalidRegistryUrlError;
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lossless-url-'));
});

afterEach(async () => {
  vi.restoreAllMocks();
  for (const registry of registries.splice(0)) await registry.close();
  await rm(dir, { recursive: true, force: true });
});

describe('registryFromUrl: file://', () => {
  it('gives a FileRegistry on the absolute path of the URL', () => {
    const registry = open('file:///abs/path');
    expect(registry).toBeInstanceOf(FileRegistry);
    expect((registry as FileRegistry).dir).toBe('/abs/path');
    expect(registry.kind).toBe('file');
  });

  it('decodes percent-encoded paths', () => {
    const registry = open(pathToFileURL(join(dir, 'with space')).href);
    expect((registry as FileRegistry).dir).toBe(join(dir, 'with space'));
  });

  it('is case-insensitive in the scheme', () => {
    expect(open('FILE:///abs/path')).toBeInstanceOf(FileRegistry);
  });

  it('accepts heartbeatMs, staleMs and pollMs and passes them to the registry', () => {
    const setInterval = vi.spyOn(globalThis, 'setInterval');
    const url = `${pathToFileURL(dir).href}?heartbeatMs=200&staleMs=900&pollMs=321`;
    const registry = open(url);
    expect(registry).toBeInstanceOf(FileRegistry);
    registry.subscribe('orders', () => {})();
    expect(setInterval.mock.calls.some(([, ms]) => ms === 321)).toBe(true);
  });

  it('passes heartbeatMs and staleMs on: staleMs <= heartbeatMs is refused as a bad URL naming staleMs', () => {
    const error = errorOf(() => open('file:///abs/path?heartbeatMs=1000&staleMs=1000'));
    expect(error).toMatchObject({ code: 'LOSSLESS_ERR_INVALID_REGISTRY_URL' });
    expect((error as Error).message).toContain('"staleMs"');
    expect(() => open('file:///abs/path?heartbeatMs=1000&staleMs=1001')).not.toThrow();
  });

  it('uses the given logger', async () => {
    const warn = vi.fn();
    const logger: Logger = { debug() {}, info() {}, warn, error() {} };
    const registry = open(pathToFileURL(dir).href, { logger });
    await mkdir(join(dir, 'orders'));
    await writeFile(join(dir, 'orders', 'x.json'), 'not json');
    expect(await registry.list('orders')).toEqual([]);
    expect(warn).toHaveBeenCalledWith(
      expect.objectContaining({ code: 'LOSSLESS_ERR_BAD_INSTANCE' }),
      expect.any(String),
    );
  });

  it.each([
    ['an unknown parameter', 'file:///abs/path?bogus=1'],
    ['an unknown parameter beside known ones', 'file:///abs/path?pollMs=10&heartbeat=5'],
    ['heartbeatMs=0', 'file:///abs/path?heartbeatMs=0'],
    ['a negative staleMs', 'file:///abs/path?staleMs=-1'],
    ['pollMs that is not a number', 'file:///abs/path?pollMs=fast'],
    ['an empty pollMs', 'file:///abs/path?pollMs='],
    ['an infinite pollMs', 'file:///abs/path?pollMs=Infinity'],
    ['a host other than localhost', 'file://otherhost/abs/path'],
  ])('rejects %s', (_what, url) => {
    expectUrlError(url);
  });

  it('names the offending parameter', () => {
    expect(expectUrlError('file:///abs/path?bogus=1').message).toContain('bogus');
    expect(expectUrlError('file:///abs/path?heartbeatMs=0').message).toContain('heartbeatMs');
  });
});

describe('registryFromUrl: static://', () => {
  it('lists every address for any service name, IPv6 in brackets included', async () => {
    const registry = open('static://127.0.0.1:80,[::1]:8080');
    expect(registry).toBeInstanceOf(StaticRegistry);
    expect(registry.readsBack).toBe(false);
    for (const service of ['orders', 'anything-else']) {
      const list = await registry.list(service);
      expect(list).toEqual([
        {
          service,
          id: '127.0.0.1:80',
          ip: '127.0.0.1',
          port: 80,
          weight: 100,
          enabled: true,
          healthy: true,
          metadata: {},
        },
        { service, id: '::1:8080', ip: '::1', port: 8080, weight: 100, enabled: true, healthy: true, metadata: {} },
      ]);
    }
  });

  it('delivers the list to subscribers', async () => {
    const registry = open('static://10.0.0.1:1,host.example:65535/');
    const list = await new Promise<readonly { ip: string; port: number }[]>((resolve) => {
      registry.subscribe('orders', resolve);
    });
    expect(list.map((i) => [i.ip, i.port])).toEqual([
      ['10.0.0.1', 1],
      ['host.example', 65535],
    ]);
  });

  it.each([
    ['no port', 'static://127.0.0.1'],
    ['port 0', 'static://127.0.0.1:0'],
    ['port 70000', 'static://127.0.0.1:70000'],
    ['an empty list', 'static://'],
    ['an empty entry', 'static://127.0.0.1:80,,127.0.0.2:80'],
    ['a trailing comma', 'static://127.0.0.1:80,'],
    ['an unbracketed IPv6 address', 'static://::1:8080'],
    ['a port that is not a number', 'static://127.0.0.1:http'],
  ])('rejects %s with a code', (_what, url) => {
    const error = errorOf(() => open(url));
    expect(error).toBeInstanceOf(Error);
    expect((error as { code?: unknown }).code).toMatch(/^LOSSLESS_ERR_/);
  });

  it('rejects port 0 and port 70000 as registry URL errors naming the port', () => {
    expect(expectUrlError('static://127.0.0.1:0').message).toContain('0');
    expect(expectUrlError('static://127.0.0.1:70000').message).toContain('70000');
    expect(expectUrlError('static://127.0.0.1').message).toContain('127.0.0.1');
    expectUrlError('static://');
  });
});

describe('registryFromUrl: other schemes', () => {
  it('rejects an unknown scheme', () => {
    const error = expectUrlError('consul://127.0.0.1:8500');
    expect(error.message).toContain('consul');
  });

  it('rejects a string with no scheme, and an empty string', () => {
    expectUrlError('/just/a/path');
    expectUrlError('');
    expectUrlError(undefined as unknown as string);
  });

  it('rejects nacos:// without a factory, explaining what to install', () => {
    const error = expectUrlError('nacos://127.0.0.1:8848');
    expect(error.message).toContain('@lossless/nacos');
    // the option as providers and clients spell it, and what to put in it
    expect(error.message).toContain('registrySchemes: { nacos: createNacosRegistry }');
  });

  it('names registrySchemes for any other unknown scheme', () => {
    expect(expectUrlError('consul://127.0.0.1:8500').message).toContain('registrySchemes: { "consul": factory }');
  });

  it('uses a custom factory from `schemes`, with the URL and the logger', async () => {
    const logger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
    const made = new StaticRegistry([{ host: '10.1.1.1', port: 9 }]);
    const factory = vi.fn<RegistryFactory>(() => made);
    const url = 'nacos://127.0.0.1:8848/public?group=DEFAULT';
    const registry = open(url, { logger, schemes: { nacos: factory } });
    expect(registry).toBe(made);
    expect(factory).toHaveBeenCalledTimes(1);
    expect(factory).toHaveBeenCalledWith(url, { logger });
  });

  it('lets a custom factory replace a built-in scheme and add a new one', () => {
    const made = new StaticRegistry([{ host: '10.1.1.1', port: 9 }]);
    expect(open('file:///abs/path', { schemes: { file: () => made } })).toBe(made);
    expect(open('consul://x', { schemes: { consul: () => made } })).toBe(made);
  });
});

describe('registryFromUrl: credentials never reach error messages', () => {
  it.each([
    ['nacos:// without a factory', 'nacos://user:secret@host'],
    ['nacos:// with a port and path', 'nacos://user:secret@127.0.0.1:8848/ns'],
    ['an unknown scheme', 'consul://user:secret@127.0.0.1:8500'],
    ['a bad static entry', 'static://user:secret@127.0.0.1:80'],
    ['a password containing @', 'nacos://user:top@secret@host'],
  ])('%s', (_what, url) => {
    const error = expectUrlError(url);
    expect(error.message).not.toContain('secret');
    expect(error.url).not.toContain('secret');
    expect(String(error.stack)).not.toContain('secret');
    expect(error.message).toContain('user');
  });
});

describe('registryFromUrl: counterexamples found by options.property.test.ts', () => {
  it.each([
    ['a host name with an underscore', 'static://host_name:1'],
    ['a host name with a non-ASCII letter', 'static://ä.example:1'],
    ['brackets around something that is not IPv6', 'static://[:::]:80'],
  ])('rejects %s in static://, from parseStaticAddresses as well', (_what, url) => {
    expectUrlError(url);
    expect(() => parseStaticAddresses(url)).toThrow(InvalidRegistryUrlError);
  });

  it.each([
    ['a NUL byte in the path', 'file:///a%00b'],
    ['a heartbeatMs that no timer can hold (Node would beat every 1 ms)', 'file:///abs/path?heartbeatMs=1e10'],
    ['a pollMs above 24 h', 'file:///abs/path?pollMs=2147483648'],
  ])('rejects %s in file://', (_what, url) => {
    expectUrlError(url);
  });

  it('rejects a URL that is not a string, even one that cannot be turned into a string', () => {
    expectUrlError(Object.create(null) as string);
    expectUrlError(5 as unknown as string);
  });

  it('finds only factories of its own in `schemes`: constructor:// is an unknown scheme, not Object()', () => {
    expectUrlError('constructor://x', { schemes: {} });
  });

  it.each<[string, string, unknown, string]>([
    ['a factory that is not a function', 'static://127.0.0.1:80', { static: [undefined] }, 'schemes.static'],
    ['a factory that returns no Registry', 'http://a.aa', { http: () => undefined }, 'schemes.http'],
    ['schemes that is not an object', 'static://127.0.0.1:80', 5, 'schemes'],
  ])('rejects %s with LOSSLESS_ERR_INVALID_OPTION', (_what, url, schemes, option) => {
    const error = errorOf(() => open(url, { schemes } as never));
    expect(error).toMatchObject({ code: 'LOSSLESS_ERR_INVALID_OPTION', option });
  });
});
