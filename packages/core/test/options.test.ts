import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { InvalidOptionError } from '../src/errors.js';
import type { Logger } from '../src/logger.js';
import {
  DEFAULT_ADMIN_PORT,
  DEFAULT_MARKER_HEADER,
  type ProviderOptions,
  resolveProviderOptions,
} from '../src/options.js';
import { StaticRegistry } from '../src/registry/static.js';

/** Options with an empty environment, so that the machine running the tests cannot change the result. */
function resolve(options: Partial<ProviderOptions> = {}) {
  return resolveProviderOptions({ service: 'orders', env: {}, ...options });
}

afterEach(() => {
  vi.unstubAllEnvs();
});

describe('resolveProviderOptions: defaults', () => {
  it('fills in every default', () => {
    const o = resolve();
    expect(o.service).toBe('orders');
    expect(o.drain).toEqual({
      quietWindowMs: 1500,
      minDrainMs: 0,
      maxDrainMs: 25_000,
      closeTimeoutMs: 1000,
      offline: 'deregister',
    });
    expect(o.marker).toEqual({ header: 'x-lossless-offline', value: 'draining' });
    expect(DEFAULT_MARKER_HEADER).toBe('x-lossless-offline');
    expect(o.admin).toEqual({ port: 9797, host: undefined, token: undefined });
    expect(DEFAULT_ADMIN_PORT).toBe(9797);
    expect(o.signals).toEqual(['SIGTERM', 'SIGINT']);
    expect(o.instance).toEqual({ ip: undefined, port: undefined, id: undefined, weight: 100, metadata: {} });
    expect(o.registration).toEqual({
      timeoutMs: 5000,
      retryMinDelayMs: 500,
      retryMaxDelayMs: 10_000,
      confirmTimeoutMs: 3000,
      checkIntervalMs: 1000,
    });
    expect(o.warmupWindowMs).toBe(60_000);
    expect(o.weightRamp).toBeUndefined();
    expect(o.hookTimeoutMs).toBe(30_000);
    expect(o.warmups).toEqual([]);
    expect(o.registrySchemes).toEqual({});
    expect(o.server).toBeUndefined();
    expect(typeof o.logger.warn).toBe('function');
  });

  it('defaults the registry to a file registry under the temporary directory', () => {
    expect(resolve().registry).toBe(pathToFileURL(join(tmpdir(), 'lossless-registry')).href);
  });

  it('exits by default when signals are handled, and not when they are not', () => {
    expect(typeof resolve().exit).toBe('function');
    expect(resolve({ signals: false }).exit).toBeUndefined();
    expect(resolve({ signals: false }).signals).toEqual([]);
  });

  it('uses a given exit function and honours exit: false', () => {
    const exit = vi.fn();
    expect(resolve({ exit }).exit).toBe(exit);
    expect(resolve({ exit: false }).exit).toBeUndefined();
  });

  it('admin: false disables the admin server', () => {
    expect(resolve({ admin: false }).admin).toBe(false);
  });

  it('keeps given values', () => {
    const registry = new StaticRegistry([{ host: '127.0.0.1', port: 1 }]);
    const warmup = { name: 'cache', run: () => {} };
    const o = resolve({
      registry,
      instance: { ip: '10.0.0.7', port: 8080, id: 'x', weight: 0, metadata: { zone: 'a' } },
      admin: { port: 0, host: '127.0.0.1', token: '0123456789' },
      drain: { quietWindowMs: 100, minDrainMs: 50, maxDrainMs: 200, closeTimeoutMs: 10, offline: 'disable' },
      marker: { header: 'x-going-away', value: 'yes' },
      warmups: [warmup],
      hookTimeoutMs: 1234,
      signals: ['SIGUSR2'],
    });
    expect(o.registry).toBe(registry);
    expect(o.instance).toEqual({ ip: '10.0.0.7', port: 8080, id: 'x', weight: 0, metadata: { zone: 'a' } });
    expect(o.admin).toEqual({ port: 0, host: '127.0.0.1', token: '0123456789' });
    expect(o.drain).toEqual({
      quietWindowMs: 100,
      minDrainMs: 50,
      maxDrainMs: 200,
      closeTimeoutMs: 10,
      offline: 'disable',
    });
    expect(o.marker).toEqual({ header: 'x-going-away', value: 'yes' });
    expect(o.warmups).toEqual([{ name: 'cache', run: warmup.run, timeoutMs: 1234 }]);
    expect(o.signals).toEqual(['SIGUSR2']);
  });

  it('copies the metadata so later changes to the input do not leak in', () => {
    const metadata: Record<string, string> = { zone: 'a' };
    const o = resolve({ instance: { metadata } });
    metadata.zone = 'b';
    expect(o.instance.metadata).toEqual({ zone: 'a' });
  });

  it('accepts a node:http server', () => {
    const server = createServer();
    expect(resolve({ server }).server).toBe(server);
  });
});

describe('resolveProviderOptions: environment', () => {
  const env = {
    LOSSLESS_REGISTRY: 'static://127.0.0.1:80',
    LOSSLESS_ADMIN_PORT: '9911',
    LOSSLESS_ADMIN_TOKEN: 'env-token-123',
    LOSSLESS_INSTANCE_IP: '10.0.0.9',
  };

  it('reads LOSSLESS_REGISTRY, LOSSLESS_ADMIN_PORT, LOSSLESS_ADMIN_TOKEN and LOSSLESS_INSTANCE_IP from `env`', () => {
    const o = resolve({ env });
    expect(o.registry).toBe('static://127.0.0.1:80');
    expect(o.admin).toEqual({ port: 9911, host: undefined, token: 'env-token-123' });
    expect(o.instance.ip).toBe('10.0.0.9');
  });

  it('lets explicit options win over the environment', () => {
    const o = resolve({
      env,
      registry: 'file:///x',
      admin: { port: 1234, token: 'option-token' },
      instance: { ip: '10.0.0.1' },
    });
    expect(o.registry).toBe('file:///x');
    expect(o.admin).toEqual({ port: 1234, host: undefined, token: 'option-token' });
    expect(o.instance.ip).toBe('10.0.0.1');
  });

  it('ignores empty and blank variables and trims the others', () => {
    const o = resolve({
      env: {
        LOSSLESS_REGISTRY: '  ',
        LOSSLESS_ADMIN_PORT: '',
        LOSSLESS_ADMIN_TOKEN: '',
        LOSSLESS_INSTANCE_IP: ' 10.0.0.3 ',
      },
    });
    expect(o.registry).toBe(pathToFileURL(join(tmpdir(), 'lossless-registry')).href);
    expect(o.admin).toEqual({ port: 9797, host: undefined, token: undefined });
    expect(o.instance.ip).toBe('10.0.0.3');
  });

  it('reads the injected env, not process.env', () => {
    vi.stubEnv('LOSSLESS_ADMIN_PORT', '4321');
    vi.stubEnv('LOSSLESS_REGISTRY', 'static://10.0.0.1:1');
    const o = resolve({ env: {} });
    expect(o.admin).toMatchObject({ port: 9797 });
    expect(o.registry).not.toBe('static://10.0.0.1:1');
  });

  it('falls back to process.env when no env is given', () => {
    vi.stubEnv('LOSSLESS_ADMIN_PORT', '4321');
    const o = resolveProviderOptions({ service: 'orders' });
    expect(o.admin).toMatchObject({ port: 4321 });
  });

  it('rejects a LOSSLESS_ADMIN_PORT that is not an integer, or out of range', () => {
    expect(() => resolve({ env: { LOSSLESS_ADMIN_PORT: 'abc' } })).toThrow(InvalidOptionError);
    expect(() => resolve({ env: { LOSSLESS_ADMIN_PORT: '70000' } })).toThrow(InvalidOptionError);
  });

  it('rejects a short LOSSLESS_ADMIN_TOKEN without echoing it', () => {
    const error = errorOf(() => resolve({ env: { LOSSLESS_ADMIN_TOKEN: 'tiny' } }));
    expect(error).toMatchObject({ code: 'LOSSLESS_ERR_INVALID_OPTION', option: 'LOSSLESS_ADMIN_TOKEN' });
    expect((error as Error).message).toContain('admin.token');
    expect((error as Error).message).not.toContain('tiny');
  });
});

function errorOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

const noop = (): void => {};
const loggerWithoutWarn = { debug: noop, info: noop, error: noop } as unknown as Logger;

describe('resolveProviderOptions: invalid input', () => {
  it.each<[string, string, Record<string, unknown>]>([
    ['missing service', 'service', { service: undefined }],
    ['empty service', 'service', { service: '' }],
    ['blank service', 'service', { service: '   ' }],
    ['non-string service', 'service', { service: 42 }],
    ['negative quietWindowMs', 'drain.quietWindowMs', { drain: { quietWindowMs: -1 } }],
    ['NaN quietWindowMs', 'drain.quietWindowMs', { drain: { quietWindowMs: Number.NaN } }],
    ['Infinity maxDrainMs', 'drain.maxDrainMs', { drain: { maxDrainMs: Number.POSITIVE_INFINITY } }],
    ['negative minDrainMs', 'drain.minDrainMs', { drain: { minDrainMs: -5 } }],
    ['NaN closeTimeoutMs', 'drain.closeTimeoutMs', { drain: { closeTimeoutMs: Number.NaN } }],
    ['string duration', 'drain.quietWindowMs', { drain: { quietWindowMs: '100' } }],
    ['duration over 24 h', 'hookTimeoutMs', { hookTimeoutMs: 86_400_001 }],
    ['zero hookTimeoutMs', 'hookTimeoutMs', { hookTimeoutMs: 0 }],
    ['negative warmupWindowMs', 'warmupWindowMs', { warmupWindowMs: -1 }],
    ['zero registration.timeoutMs', 'registration.timeoutMs', { registration: { timeoutMs: 0 } }],
    ['maxDrainMs equal to quietWindowMs', 'drain.maxDrainMs', { drain: { quietWindowMs: 1000, maxDrainMs: 1000 } }],
    ['maxDrainMs below quietWindowMs', 'drain.maxDrainMs', { drain: { quietWindowMs: 1000, maxDrainMs: 500 } }],
    ['maxDrainMs below minDrainMs', 'drain.maxDrainMs', { drain: { minDrainMs: 5000, maxDrainMs: 3000 } }],
    ['bad drain.offline', 'drain.offline', { drain: { offline: 'vanish' } }],
    [
      'retryMaxDelayMs below retryMinDelayMs',
      'registration.retryMaxDelayMs',
      { registration: { retryMinDelayMs: 2000, retryMaxDelayMs: 1000 } },
    ],
    ['admin.port 70000', 'admin.port', { admin: { port: 70_000 } }],
    ['admin.port -1', 'admin.port', { admin: { port: -1 } }],
    ['admin.port 1.5', 'admin.port', { admin: { port: 1.5 } }],
    ['bad admin.host', 'admin.host', { admin: { host: 'not a host' } }],
    ['short admin token', 'admin.token', { admin: { token: 'short' } }],
    ['marker.header connection', 'marker.header', { marker: { header: 'connection' } }],
    ['marker.header Content-Length', 'marker.header', { marker: { header: 'Content-Length' } }],
    ['marker.header with a space', 'marker.header', { marker: { header: 'bad header' } }],
    ['empty marker.header', 'marker.header', { marker: { header: '' } }],
    ['marker.value with a newline', 'marker.value', { marker: { value: 'a\nb' } }],
    ['empty marker.value', 'marker.value', { marker: { value: '' } }],
    ['warmup without a name', 'warmups[0].name', { warmups: [{ run: noop }] }],
    ['warmup without run', 'warmups[1].run', { warmups: [{ name: 'a', run: noop }, { name: 'b' }] }],
    ['warmup that is not an object', 'warmups[0]', { warmups: [null] }],
    ['warmup with a zero timeout', 'warmups[0].timeoutMs', { warmups: [{ name: 'a', run: noop, timeoutMs: 0 }] }],
    ['warmups not an array', 'warmups', { warmups: { name: 'a', run: noop } }],
    ['instance.weight -1', 'instance.weight', { instance: { weight: -1 } }],
    ['instance.weight NaN', 'instance.weight', { instance: { weight: Number.NaN } }],
    ['instance.port 0', 'instance.port', { instance: { port: 0 } }],
    ['bad instance.ip', 'instance.ip', { instance: { ip: 'not an ip!' } }],
    ['empty instance.id', 'instance.id', { instance: { id: '' } }],
    ['instance.metadata with a number', 'instance.metadata.count', { instance: { metadata: { ok: 'x', count: 3 } } }],
    ['instance.metadata that is an array', 'instance.metadata', { instance: { metadata: ['a'] } }],
    ['logger without warn()', 'logger', { logger: loggerWithoutWarn }],
    ['signals with a bad name', 'signals[0]', { signals: ['NOTASIGNAL'] }],
    ['signals not an array', 'signals', { signals: 'SIGTERM' }],
    ['exit "yes"', 'exit', { exit: 'yes' }],
    ['registry that is not a Registry', 'registry', { registry: { list: noop } }],
    ['server that is not a Server', 'server', { server: {} }],
  ])('%s', (_what, option, overrides) => {
    const error = errorOf(() =>
      resolveProviderOptions({ service: 'orders', env: {}, ...overrides } as ProviderOptions),
    );
    expect(error).toBeInstanceOf(InvalidOptionError);
    expect(error).toMatchObject({ code: 'LOSSLESS_ERR_INVALID_OPTION', option });
    expect((error as Error).message).toContain(`"${option}"`);
  });

  it('rejects options that are not an object', () => {
    const error = errorOf(() => resolveProviderOptions(null as unknown as ProviderOptions));
    expect(error).toMatchObject({ code: 'LOSSLESS_ERR_INVALID_OPTION', option: 'options' });
  });

  it('never puts the admin token in the error', () => {
    const token = 'hunter2';
    const error = errorOf(() => resolve({ admin: { token } })) as InvalidOptionError;
    expect(error.option).toBe('admin.token');
    expect(error.message).not.toContain(token);
    expect(String(error.value)).not.toContain(token);
    expect(JSON.stringify(error)).not.toContain(token);
  });

  it('accepts the boundaries: zero durations where allowed, a token of 8 characters, weight 0, port 0', () => {
    const o = resolve({
      drain: { quietWindowMs: 0, minDrainMs: 0, maxDrainMs: 1, closeTimeoutMs: 0 },
      admin: { port: 0, token: '12345678' },
      instance: { weight: 0 },
    });
    expect(o.drain.maxDrainMs).toBe(1);
    expect(o.admin).toMatchObject({ port: 0, token: '12345678' });
    expect(o.instance.weight).toBe(0);
  });
});

describe('resolveProviderOptions: unknown keys', () => {
  it.each<[string, Record<string, unknown>, string, string]>([
    ['a misspelled drain option', { drain: { quietWindow: 100 } }, 'drain.quietWindow', 'drain.quietWindowMs'],
    ['a group written as one word', { adminPort: 9000 }, 'adminPort', 'admin.port'],
    ['a misspelled top-level option', { servce: 'orders' }, 'servce', 'service'],
    [
      'a misspelled key of a warm-up hook',
      { warmups: [{ name: 'a', run: noop, timeout: 5 }] },
      'warmups[0].timeout',
      'warmups[0].timeoutMs',
    ],
    ['a misspelled admin option', { admin: { prot: 9000 } }, 'admin.prot', 'admin.port'],
  ])('refuses %s, naming the key and the closest valid one', (_what, overrides, option, suggestion) => {
    const error = errorOf(() =>
      resolveProviderOptions({ service: 'orders', env: {}, ...overrides } as ProviderOptions),
    );
    expect(error).toMatchObject({ code: 'LOSSLESS_ERR_INVALID_OPTION', option });
    expect((error as Error).message).toContain(`did you mean "${suggestion}"?`);
  });

  it('lists the valid keys when none is close', () => {
    const error = errorOf(() => resolve({ marker: { zzzzzzzz: 1 } } as never)) as Error;
    expect(error.message).toContain('expected one of header, value');
  });

  it('never shows the value of a misspelled token', () => {
    const error = errorOf(() => resolve({ admin: { tokn: 'hunter2-hunter2' } } as never)) as Error;
    expect(error.message).toContain('did you mean "admin.token"?');
    expect(error.message).not.toContain('hunter2');
  });

  it('refuses unknown keys of a hook given to addWarmup() too', async () => {
    const { Provider } = await import('../src/provider.js');
    const provider = new Provider({ service: 'orders', env: {}, admin: false, signals: false });
    expect(() => provider.addWarmup({ name: 'cache', run: noop, timeOutMs: 5 } as never)).toThrowError(
      expect.objectContaining({ option: 'warmup "cache".timeOutMs' }),
    );
  });

  it('names the variable of a bad environment value, and the option it sets', () => {
    const error = errorOf(() => resolve({ env: { LOSSLESS_ADMIN_PORT: 'abc' } })) as InvalidOptionError;
    expect(error.option).toBe('LOSSLESS_ADMIN_PORT');
    expect(error.message).toContain('admin.port');
    expect(error.message).toContain('"abc"');
  });
});

describe('resolveProviderOptions: counterexamples found by options.property.test.ts', () => {
  it.each<[string, string, Record<string, unknown>]>([
    ['an env variable that is not a string', 'LOSSLESS_INSTANCE_IP', { env: { LOSSLESS_INSTANCE_IP: 0 } }],
    ['env that is not an object', 'env', { env: 'LOSSLESS_REGISTRY=static://h:1' }],
    ['registration that is not an object', 'registration', { registration: 10n }],
    ['instance that is not an object', 'instance', { instance: 5 }],
    ['drain that is an array', 'drain', { drain: [] }],
    ['marker that is a string', 'marker', { marker: 'x-offline' }],
    ['admin that is an array', 'admin', { admin: [] }],
    ['registrySchemes that is not an object', 'registrySchemes', { registrySchemes: 5 }],
    ['a registry scheme that is not a function', 'registrySchemes.file', { registrySchemes: { file: 5 } }],
    // biome-ignore lint/suspicious/noSparseArray: the hole is the point
    ['signals with a hole', 'signals[0]', { signals: [, 'SIGTERM'] }],
    // biome-ignore lint/suspicious/noSparseArray: the hole is the point
    ['warmups with a hole', 'warmups[0]', { warmups: [, { name: 'cache', run: noop }] }],
  ])('rejects %s', (_what, option, overrides) => {
    const error = errorOf(() =>
      resolveProviderOptions({ service: 'orders', env: {}, ...overrides } as ProviderOptions),
    );
    expect(error).toBeInstanceOf(InvalidOptionError);
    expect(error).toMatchObject({ code: 'LOSSLESS_ERR_INVALID_OPTION', option });
  });

  it('reports a value that can be neither JSON nor a string (null prototype, BigInt inside) with a coded error', () => {
    const value = Object.assign(Object.create(null), { n: 0n });
    const error = errorOf(() => resolve({ registry: value }));
    expect(error).toMatchObject({ code: 'LOSSLESS_ERR_INVALID_OPTION', option: 'registry' });
    expect((error as Error).message).toContain('[object Object]');
  });
});
