import { describe, expect, it } from 'vitest';
import { parseNacosUrl, resolveNacosOptions } from '../src/options.js';

describe('parseNacosUrl', () => {
  it('reads servers, credentials and parameters', () => {
    expect(
      parseNacosUrl(
        'nacos://user:p%40ss@127.0.0.1:8848,10.0.0.2/?namespace=dev&group=G&cluster=C&ephemeral=false&pollMs=500&requestTimeoutMs=2000&clientIp=127.0.0.1',
      ),
    ).toEqual({
      servers: ['127.0.0.1:8848', '10.0.0.2'],
      namespace: 'dev',
      group: 'G',
      cluster: 'C',
      ephemeral: false,
      pollMs: 500,
      requestTimeoutMs: 2000,
      clientIp: '127.0.0.1',
      username: 'user',
      password: 'p@ss',
    });
  });

  it('takes a bare host', () => {
    expect(parseNacosUrl('nacos://nacos.internal')).toEqual({ servers: ['nacos.internal'] });
  });

  it.each([
    ['no host', 'nacos://'],
    ['unknown parameter', 'nacos://h:8848/?nope=1'],
    ['bad number', 'nacos://h:8848/?pollMs=-1'],
    ['bad boolean', 'nacos://h:8848/?ephemeral=yes'],
    ['other scheme', 'http://h:8848'],
    ['bad percent-encoding', 'nacos://u:%zz@h:8848'],
  ])('rejects %s with a coded error and no password in it', (_name, url) => {
    let error: unknown;
    try {
      resolveNacosOptions(parseNacosUrl(url));
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: expect.stringMatching(/^LOSSLESS_ERR_INVALID_(REGISTRY_URL|OPTION)$/) });
    expect((error as Error).message).not.toContain('%zz');
  });
});

describe('resolveNacosOptions', () => {
  it('fills the defaults and reports 127.0.0.1 as clientIP when every server is on loopback', () => {
    expect(resolveNacosOptions({ servers: '127.0.0.1:8848,localhost' })).toEqual({
      servers: ['127.0.0.1:8848', 'localhost:8848'],
      namespace: 'public',
      group: 'DEFAULT_GROUP',
      cluster: 'DEFAULT',
      ephemeral: true,
      metadata: {},
      username: undefined,
      password: undefined,
      tls: false,
      requestTimeoutMs: 5000,
      pollMs: 1000,
      clientIp: '127.0.0.1',
    });
  });

  it('leaves clientIP to the client for remote servers unless set', () => {
    expect(resolveNacosOptions({ servers: ['nacos-0.nacos:8848'] }).clientIp).toBeUndefined();
    // a host name that starts like a loopback address is not one
    expect(resolveNacosOptions({ servers: ['127.example.com:8848'] }).clientIp).toBeUndefined();
    expect(resolveNacosOptions({ servers: ['nacos-0.nacos:8848'], clientIp: '10.1.2.3' }).clientIp).toBe('10.1.2.3');
  });

  it.each([
    ['servers', { servers: [] }],
    ['servers[0]', { servers: ['h:99999'] }],
    ['servers[0]', { servers: ['not a host'] }],
    ['namespace', { servers: 'h', namespace: 'a/b' }],
    ['password', { servers: 'h', username: 'u' }],
    ['username', { servers: 'h', password: 'p' }],
    ['pollMs', { servers: 'h', pollMs: 0 }],
    ['requestTimeoutMs', { servers: 'h', requestTimeoutMs: Number.NaN }],
    ['clientIp', { servers: 'h', clientIp: 'my-host' }],
    ['metadata.a', { servers: 'h', metadata: { a: 1 } }],
  ])('rejects a bad %s with LOSSLESS_ERR_INVALID_OPTION', (option, options) => {
    expect(() => resolveNacosOptions(options as never)).toThrowError(
      expect.objectContaining({ code: 'LOSSLESS_ERR_INVALID_OPTION', option }),
    );
  });
});

describe('counterexamples found by options.property.test.ts', () => {
  it.each([
    ['servers[0]', { servers: '-' }],
    ['servers[0]', { servers: ['.'] }],
    ['servers[0]', { servers: ['a..b:8848'] }],
    ['servers[0]', { servers: ['[:]:8848'] }],
    // biome-ignore lint/suspicious/noSparseArray: the hole is the point
    ['servers[1]', { servers: ['h:8848', , 'h2:8848'] }],
    ['logger', { servers: 'h', logger: 0 }],
    ['logger', { servers: 'h', logger: { warn: '' } }],
  ])('rejects a bad %s with LOSSLESS_ERR_INVALID_OPTION', (option, options) => {
    expect(() => resolveNacosOptions(options as never)).toThrowError(
      expect.objectContaining({ code: 'LOSSLESS_ERR_INVALID_OPTION', option }),
    );
  });

  it('refuses a password without a user name instead of dropping it, and does not echo it', () => {
    let error: unknown;
    try {
      parseNacosUrl('nacos://:secret@h:8848');
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: 'LOSSLESS_ERR_INVALID_REGISTRY_URL' });
    expect((error as Error).message).not.toContain('secret');
  });
});
