import { describe, expect, it } from 'vitest';
import { grpcAddress, parseNacosUrl, resolveNacosOptions } from '../src/options.js';

describe('parseNacosUrl', () => {
  it('reads servers, credentials and parameters', () => {
    expect(
      parseNacosUrl(
        'nacos://user:p%40ss@127.0.0.1:8848,10.0.0.2/?namespace=dev&group=G&cluster=C&ephemeral=false&pollMs=500&requestTimeoutMs=2000&clientIp=127.0.0.1&transport=http&grpcPort=9000',
      ),
    ).toEqual({
      servers: ['127.0.0.1:8848', '10.0.0.2'],
      transport: 'http',
      grpcPort: 9000,
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
    ['unknown transport', 'nacos://h:8848/?transport=udp'],
    ['bad gRPC port', 'nacos://h:8848/?grpcPort=9x'],
    ['gRPC port out of range', 'nacos://h:8848/?grpcPort=70000'],
    ['persistent instances over gRPC', 'nacos://h:8848/?transport=grpc&ephemeral=false'],
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

describe('unknown options and URL parameters', () => {
  it.each([
    ['namspace', 'namespace'],
    ['pollMS', 'pollMs'],
    ['grpcport', 'grpcPort'],
    ['requestTimeout', 'requestTimeoutMs'],
    ['clientIP', 'clientIp'],
  ])('refuses the key %s and suggests %s', (typo, meant) => {
    expect(() => resolveNacosOptions({ servers: 'h', [typo]: 'x' } as never)).toThrowError(
      expect.objectContaining({
        code: 'LOSSLESS_ERR_INVALID_OPTION',
        option: typo,
        message: expect.stringContaining(`did you mean "${meant}"?`),
      }),
    );
  });

  it('lists the options when no key is near, and never shows a password given under a misspelled key', () => {
    expect(() => resolveNacosOptions({ servers: 'h', zone: 'a' } as never)).toThrowError(
      /not an option; expected one of servers, transport, grpcPort, namespace/,
    );
    let error: unknown;
    try {
      resolveNacosOptions({ servers: 'h', username: 'u', passwrd: 'hunter2' } as never);
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: 'LOSSLESS_ERR_INVALID_OPTION', option: 'passwrd' });
    expect((error as Error).message).toContain('did you mean "password"?');
    expect((error as Error).message).not.toContain('hunter2');
  });

  it.each([
    ['nacos://h:8848/?namespce=dev', 'unknown parameter "namespce" (did you mean "namespace"?)'],
    ['nacos://h:8848/?transprot=http', 'unknown parameter "transprot" (did you mean "transport"?)'],
    ['nacos://h:8848/?zone=a', 'unknown parameter "zone" (expected one of transport, grpcPort, namespace'],
    ['nacos://h:8848/?username=u', '"username" is not a URL parameter: the URL gives it as user:'],
    ['nacos://h:8848/?tls=true', '"tls" is not a URL parameter: the URL gives it as nacos+tls://'],
    ['nacos://h:8848/?metadata=a', '"metadata" is not a URL parameter: set it on the options object'],
    ['nacos://h:8848/?group=a&group=b', 'parameter "group" given twice'],
    ['nacos://h:8848/?pollMs=1e3', 'pollMs=1e3: expected a number of milliseconds > 0'],
    ['nacos://h:8848/?pollMs=', 'pollMs=: expected a number of milliseconds > 0'],
    ['nacos://h:8848/?ephemeral=yes', 'ephemeral=yes: expected true or false'],
    ['nacos://h:8848/?transport=udp', "transport=udp: expected 'grpc' or 'http'"],
    ['nacos://h:8848/?namespace=a%2Fb', 'namespace=a/b: expected 1-128 letters, digits or _.:-'],
  ])('refuses %s with LOSSLESS_ERR_INVALID_REGISTRY_URL: %s', (url, reason) => {
    expect(() => parseNacosUrl(url)).toThrowError(
      expect.objectContaining({ code: 'LOSSLESS_ERR_INVALID_REGISTRY_URL', reason: expect.stringContaining(reason) }),
    );
  });
});

describe('resolveNacosOptions', () => {
  it('fills the defaults and reports 127.0.0.1 as clientIP when every server is on loopback', () => {
    expect(resolveNacosOptions({ servers: '127.0.0.1:8848,localhost' })).toEqual({
      servers: ['127.0.0.1:8848', 'localhost:8848'],
      transport: 'grpc',
      grpcPort: undefined,
      namespace: 'public',
      group: 'DEFAULT_GROUP',
      cluster: 'DEFAULT',
      ephemeral: true,
      metadata: {},
      username: undefined,
      password: undefined,
      tls: false,
      requestTimeoutMs: 5000,
      // over gRPC changes are pushed; the poll is a safety net
      pollMs: 10_000,
      clientIp: '127.0.0.1',
    });
  });

  it('chooses the transport: gRPC by default, HTTP when asked or for persistent instances', () => {
    expect(resolveNacosOptions({ servers: 'h' })).toMatchObject({ transport: 'grpc', pollMs: 10_000 });
    expect(resolveNacosOptions({ servers: 'h', transport: 'http' })).toMatchObject({ transport: 'http', pollMs: 1000 });
    expect(resolveNacosOptions({ servers: 'h', ephemeral: false })).toMatchObject({
      transport: 'http',
      ephemeral: false,
    });
    expect(resolveNacosOptions({ servers: 'h', pollMs: 300 })).toMatchObject({ transport: 'grpc', pollMs: 300 });
  });

  it('finds the gRPC port at the HTTP port + 1000 unless grpcPort says otherwise', () => {
    const servers = ['127.0.0.1:8848', 'nacos-1:18848', '[::1]'];
    expect(resolveNacosOptions({ servers }).servers.map((s) => grpcAddress(s, { grpcPort: undefined }))).toEqual([
      '127.0.0.1:9848',
      'nacos-1:19848',
      '[::1]:9848',
    ]);
    expect(grpcAddress('nacos-1:18848', { grpcPort: 9000 })).toBe('nacos-1:9000');
    // an HTTP port above 64535 has no gRPC port at + 1000: say so up front, unless grpcPort is set
    expect(() => resolveNacosOptions({ servers: 'h:64536' })).toThrowError(
      expect.objectContaining({ code: 'LOSSLESS_ERR_INVALID_OPTION', option: 'servers[0]' }),
    );
    expect(resolveNacosOptions({ servers: 'h:64536', grpcPort: 9848 }).grpcPort).toBe(9848);
    expect(resolveNacosOptions({ servers: 'h:64536', transport: 'http' }).servers).toEqual(['h:64536']);
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
    ['transport', { servers: 'h', transport: 'udp' }],
    ['transport', { servers: 'h', transport: 'grpc', ephemeral: false }],
    ['grpcPort', { servers: 'h', grpcPort: 0 }],
    ['grpcPort', { servers: 'h', grpcPort: 9848.5 }],
    ['grpcPort', { servers: 'h', grpcPort: '9848' }],
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
