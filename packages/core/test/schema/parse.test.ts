// The options toolkit on a schema of its own, as another package (nacos) would use it.

import * as v from 'valibot';
import { describe, expect, it } from 'vitest';
import { InvalidOptionError } from '../../src/errors.js';
import { Provider } from '../../src/provider.js';
import { closest, editDistance } from '../../src/schema/closest.js';
import { doc, duration, group, list, nonEmpty, numberIn } from '../../src/schema/kinds.js';
import { inspect, parseOptions } from '../../src/schema/parse.js';

const server = group(
  {
    port: v.nullish(doc(numberIn(1, 65_535, { integer: true }), 'Port.', { env: 'X_PORT', envValue: 'number' }), 8848),
    password: v.optional(doc(nonEmpty(), 'Password.', { env: 'X_PASSWORD', secret: true })),
  },
  'expected an object',
);
const schema = group(
  {
    name: doc(nonEmpty(), 'A name.'),
    server: v.nullish(doc(v.union([v.literal(false), server], 'expected an object or false'), 'Server.'), {}),
    timeoutMs: v.optional(doc(duration(true), 'Timeout.'), 1000),
    hosts: v.nullish(
      doc(list(group({ host: doc(nonEmpty(), 'Host.') }, 'expected { host }'), 'expected an array'), 'Hosts.'),
      [],
    ),
  },
  'expected an object',
);

function errorOf(fn: () => unknown): InvalidOptionError {
  try {
    fn();
  } catch (error) {
    if (error instanceof InvalidOptionError) return error;
    throw error;
  }
  throw new Error('expected a throw');
}

describe('closest', () => {
  it('counts insertions, deletions, substitutions and swaps, ignoring case', () => {
    expect(editDistance('quietWindow', 'quietWindowMs')).toBe(2);
    expect(editDistance('tiemoutMs', 'timeoutMs')).toBe(1);
    expect(editDistance('PORT', 'port')).toBe(0);
    expect(editDistance('', 'abc')).toBe(3);
  });

  it('suggests only a plausible typo', () => {
    expect(closest('prot', ['port', 'host', 'token'])).toBe('port');
    expect(closest('zzzzzzzz', ['port', 'host'])).toBeUndefined();
    expect(closest('x', [])).toBeUndefined();
  });
});

describe('parseOptions', () => {
  it('fills in defaults, nested ones included', () => {
    expect(parseOptions(schema, { name: 'a' })).toEqual({
      name: 'a',
      server: { port: 8848 },
      timeoutMs: 1000,
      hosts: [],
    });
  });

  it('names the path of a bad value, inside arrays and unions', () => {
    expect(errorOf(() => parseOptions(schema, { name: 'a', hosts: [{ host: 'h' }, { host: '' }] })).option).toBe(
      'hosts[1].host',
    );
    expect(errorOf(() => parseOptions(schema, { name: 'a', server: { port: 0 } })).option).toBe('server.port');
    expect(errorOf(() => parseOptions(schema, { name: 'a', server: 5 })).option).toBe('server');
    expect(errorOf(() => parseOptions(schema, 'a')).option).toBe('options');
  });

  it('puts `at` before every path', () => {
    expect(errorOf(() => parseOptions(schema, { name: '' }, { at: 'registry "x"' })).option).toBe('registry "x".name');
    expect(errorOf(() => parseOptions(schema, 5, { at: 'registry "x"' })).option).toBe('registry "x"');
  });

  it('reads a missing option from its variable, converted, and names the variable when its value is bad', () => {
    expect(parseOptions(schema, { name: 'a' }, { env: { X_PORT: ' 9000 ' } }).server).toEqual({ port: 9000 });
    expect(parseOptions(schema, { name: 'a', server: { port: 1 } }, { env: { X_PORT: '9000' } }).server).toEqual({
      port: 1,
    });
    expect(parseOptions(schema, { name: 'a', server: false }, { env: { X_PORT: 'abc' } }).server).toBe(false);
    const error = errorOf(() => parseOptions(schema, { name: 'a' }, { env: { X_PORT: 'abc' } }));
    expect(error.option).toBe('X_PORT');
    expect(error.message).toContain('server.port');
  });

  it('never shows a secret, from the input or from a variable', () => {
    const fromEnv = errorOf(() => parseOptions(schema, { name: 'a' }, { env: { X_PASSWORD: 5 as never } }));
    expect(fromEnv.option).toBe('X_PASSWORD');
    expect(fromEnv.message).not.toContain('5');
    const typo = errorOf(() => parseOptions(schema, { name: 'a', server: { pasword: 's3cret-value' } }));
    expect(typo.message).toContain('did you mean "server.password"?');
    expect(typo.message).not.toContain('s3cret');
  });

  it('tells what a schema says of an option', () => {
    const info = inspect((inspect(schema).entries as Record<string, unknown>).timeoutMs);
    expect(info).toMatchObject({ optional: true, hasDefault: true, default: 1000, description: 'Timeout.' });
    expect(info.schema.type).toBe('number');
  });
});

describe('a registry URL read from LOSSLESS_REGISTRY', () => {
  it('is named in the error when it cannot be used', () => {
    expect(
      () => new Provider({ service: 'orders', env: { LOSSLESS_REGISTRY: 'consul://x:1' }, admin: false }),
    ).toThrowError(
      expect.objectContaining({
        code: 'LOSSLESS_ERR_INVALID_REGISTRY_URL',
        message: expect.stringContaining('LOSSLESS_REGISTRY'),
      }),
    );
    // given in code, the URL is the option's, not the variable's
    expect(
      () =>
        new Provider({
          service: 'orders',
          registry: 'consul://x:1',
          env: { LOSSLESS_REGISTRY: 'static://h:1' },
          admin: false,
        }),
    ).toThrowError(expect.objectContaining({ message: expect.not.stringContaining('LOSSLESS_REGISTRY') }));
  });
});
