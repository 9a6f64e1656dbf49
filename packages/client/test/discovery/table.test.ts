// The service table tells whoever pushes lists on (the grpc-js resolver of @lossless/grpc) when a
// service's usable instances may have changed: a list arrived, an instance was ejected.

import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { ServiceTable } from '../../src/discovery/table.js';
import { instance, TestRegistry, until } from '../helpers.js';

const silent = { debug() {}, info() {}, warn() {}, error() {} };

describe('ServiceTable onChange', () => {
  it('is called for the first list, every later list and every ejection, with the service name', async () => {
    const registry = new TestRegistry([instance('svc', 'a', { port: 1001 }), instance('svc', 'b', { port: 1002 })]);
    const changes: string[] = [];
    const table = new ServiceTable({
      registry,
      logger: silent,
      now: () => performance.now(),
      refreshIntervalMs: 0,
      onChange: (service) => changes.push(service),
    });
    const state = table.get('svc');
    await state.ready;
    expect(changes).toEqual(['svc']);
    expect(state.endpoints).toHaveLength(2);
    const a = state.endpoints[0];
    table.eject('svc', a?.key ?? '', a?.origin, 'marker');
    // at once, before the registry is read again
    expect(changes).toEqual(['svc', 'svc']);
    expect(state.endpoints).toHaveLength(1);
    await until(() => changes.length === 3, 'the refresh after the ejection');
    registry.listed = [instance('svc', 'b', { port: 1002 })];
    registry.push();
    expect(changes).toHaveLength(4);
    table.close();
  });
});
