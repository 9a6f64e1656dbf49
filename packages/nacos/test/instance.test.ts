import { silentLogger } from '@lossless/core';
import { describe, expect, it } from 'vitest';
import {
  checkWeight,
  fromNacosWeight,
  INSTANCE_ID_KEY,
  toInstance,
  toNacosWeight,
  UPDATE_WEIGHT_ONE,
  updateWeight,
} from '../src/instance.js';

describe('weights on Nacos scale', () => {
  it('maps lossless 100 (the default) to Nacos 1.0, what Java services register, and back', () => {
    expect(toNacosWeight(100)).toBe(1);
    expect(fromNacosWeight(1)).toBe(100);
    expect(toNacosWeight(0)).toBe(0);
    expect(toNacosWeight(1_000_000)).toBe(10_000);
  });

  it('round-trips warm-up steps, through double and single precision (rnacos keeps f32)', () => {
    for (const weight of [0, 0.5, 1, 7, 10, 12.5, 33.333, 50, 99, 100, 150, 1000, 1_000_000]) {
      const nacos = toNacosWeight(weight);
      expect(fromNacosWeight(nacos)).toBe(weight);
      expect(fromNacosWeight(Math.fround(nacos))).toBe(weight);
    }
  });

  it('sends 1.0 in an update as the nearest float above it, which still reads back as 100', () => {
    expect(updateWeight(1)).toBe(UPDATE_WEIGHT_ONE);
    expect(Math.fround(UPDATE_WEIGHT_ONE)).not.toBe(1);
    expect(fromNacosWeight(UPDATE_WEIGHT_ONE)).toBe(100);
    expect(fromNacosWeight(Math.fround(UPDATE_WEIGHT_ONE))).toBe(100);
    expect(updateWeight(0.5)).toBe(0.5);
  });

  it('refuses weights outside Nacos range (0..10000, i.e. lossless 0..1000000)', () => {
    for (const bad of [-1, 1_000_001, Number.NaN, Number.POSITIVE_INFINITY, '1' as unknown as number])
      expect(() => checkWeight(bad)).toThrowError(
        expect.objectContaining({ code: 'LOSSLESS_ERR_INVALID_OPTION', option: 'weight' }),
      );
    expect(() => checkWeight(1_000_000)).not.toThrow();
  });
});

describe('toInstance', () => {
  it('reads a Java instance at weight 1.0 as weight 100, with its ip:port as id', () => {
    expect(
      toInstance(
        'orders',
        { ip: '10.0.0.7', port: 8080, weight: 1, healthy: true, enabled: true, metadata: {} },
        silentLogger,
      ),
    ).toEqual({
      service: 'orders',
      id: '10.0.0.7:8080',
      ip: '10.0.0.7',
      port: 8080,
      weight: 100,
      enabled: true,
      healthy: true,
      metadata: {},
    });
  });

  it('keeps the lossless id from the metadata', () => {
    const host = { ip: '127.0.0.1', port: 1, weight: 0.25, metadata: { [INSTANCE_ID_KEY]: 'orders-7f9c' } };
    expect(toInstance('orders', host, silentLogger)).toMatchObject({ id: 'orders-7f9c', weight: 25 });
  });

  it('skips, with a warning, what is not a usable instance', () => {
    const warnings: unknown[] = [];
    const log = { ...silentLogger, warn: (fields: unknown) => warnings.push(fields) };
    expect(toInstance('orders', { ip: '127.0.0.1', port: 0, weight: 1 }, log)).toBeUndefined();
    expect(toInstance('orders', { ip: '127.0.0.1', port: 1, weight: -1 }, log)).toBeUndefined();
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatchObject({ code: 'LOSSLESS_ERR_BAD_INSTANCE', service: 'orders' });
  });
});
