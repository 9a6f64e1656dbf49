// The service table at its edges: ejections of instances that carry no registration time (a static
// list, a registry lossless did not register in), an empty list the registry cannot confirm, a read
// a newer push overtook, a list() that throws, a provider asking for no warm-up, a first list after a failed read, a GOAWAY reported for an origin on its default port, and a table
// asked for a new service after it closed.

import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ServiceTable } from '../../src/discovery/table.js';
import { instance, recordingLogger, TestRegistry, until } from '../helpers.js';

const silent = { debug() {}, info() {}, warn() {}, error() {} };
const tables: ServiceTable[] = [];
afterEach(() => {
  for (const table of tables.splice(0)) table.close();
  vi.useRealTimers();
});

function tableOf(registry: TestRegistry, now: () => number = () => performance.now(), refreshIntervalMs = 0) {
  const table = new ServiceTable({ registry, logger: silent, now, refreshIntervalMs });
  tables.push(table);
  return table;
}

const ids = (table: ServiceTable, service = 'svc') => table.get(service).endpoints.map((e) => e.instance.id);

describe('the service table', () => {
  it('brings back an ejected instance with no registration time after 30 s, one with a registration time not', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    let clock = 1000;
    const registry = new TestRegistry([
      instance('svc', 'untimed', { port: 1001 }),
      instance('svc', 'timed', { port: 1002, registeredAt: Date.now() - 60_000 }),
    ]);
    const table = tableOf(registry, () => clock);
    await table.get('svc').ready;
    for (const e of [...table.get('svc').endpoints]) table.eject('svc', e.key, e.origin, 'marker');
    expect(ids(table)).toEqual([]);
    await until(() => registry.listsDone > 0, 'the refresh after the ejections');
    expect(ids(table), 'the same list read again keeps both out').toEqual([]);
    clock += 29_000;
    vi.advanceTimersByTime(29_000);
    expect(ids(table)).toEqual([]);
    clock += 1_100;
    vi.advanceTimersByTime(1_100);
    expect(ids(table), 'a static list never changes: the table lists it again by itself').toEqual(['untimed']);
  });

  it('takes the instances of its first list as serving already, even when a failed read came first', async () => {
    const registry = new TestRegistry([]);
    registry.deliverOnSubscribe = false;
    const table = tableOf(registry);
    const state = table.get('svc');
    for (const s of registry.subscriptions) s.onError?.(new Error('registry down'));
    await state.ready;
    expect(state.endpoints).toEqual([]);
    // the registry is back: what it lists first was serving before this client looked (no
    // registration time to say otherwise, as with a Java provider), and gets its full share at once
    registry.push([instance('svc', 'java', { port: 1001 })], 'svc');
    expect(state.endpoints.map((e) => [e.instance.id, e.initial])).toEqual([['java', true]]);
    // one that comes after it is new, and warms up
    registry.push([instance('svc', 'java', { port: 1001 }), instance('svc', 'new', { port: 1002 })], 'svc');
    expect(state.endpoints.map((e) => [e.instance.id, e.initial])).toEqual([
      ['java', true],
      ['new', false],
    ]);
  });

  it('asks again for an empty list the registry could not confirm, until it can', async () => {
    const registry = new TestRegistry([instance('svc', 'a', { port: 1001 })]);
    const table = tableOf(registry, () => performance.now(), 10);
    await table.get('svc').ready;
    expect(ids(table)).toEqual(['a']);
    const list = registry.list.bind(registry);
    let failures = 3;
    registry.list = async (service: string) => {
      if (failures-- > 0) {
        registry.listsDone++;
        throw new Error('registry down');
      }
      return list(service);
    };
    registry.listed = [];
    registry.push([]);
    await until(() => ids(table).length === 0, 'the empty list, once confirmed');
    expect(failures).toBeLessThan(0);
  });

  it('drops a registry read that a newer push overtook', async () => {
    const registry = new TestRegistry([instance('svc', 'a', { port: 1001 })]);
    const table = tableOf(registry);
    await table.get('svc').ready;
    let open!: () => void;
    registry.listGate = new Promise<void>((resolve) => {
      open = resolve;
    });
    table.refresh('svc');
    registry.push([instance('svc', 'b', { port: 1002 })]);
    expect(ids(table)).toEqual(['b']);
    // the read answers what the registry held before the push
    registry.listed = [instance('svc', 'c', { port: 1003 })];
    open();
    await until(() => registry.listsDone > 0, 'the read to finish');
    await new Promise((resolve) => setImmediate(resolve));
    expect(ids(table)).toEqual(['b']);
  });

  it('fails only that read when a registry list() throws instead of rejecting', async () => {
    const registry = new TestRegistry([instance('svc', 'a', { port: 1001 })]);
    const table = tableOf(registry);
    await table.get('svc').ready;
    const list = registry.list.bind(registry);
    let calls = 0;
    registry.list = (service: string) => {
      calls++;
      if (calls === 1) throw new Error('thrown, not rejected');
      return list(service);
    };
    table.refresh('svc');
    await until(() => table.get('svc').lastError !== undefined, 'the failed read');
    registry.listed = [instance('svc', 'b', { port: 1002 })];
    table.refresh('svc');
    await until(() => ids(table).join() === 'b', 'the next read');
    expect(calls).toBe(2);
  });

  it('warns once per registry outage, not at every failed read', async () => {
    const registry = new TestRegistry([instance('svc', 'a', { port: 1001 })]);
    const logger = recordingLogger();
    const table = new ServiceTable({ registry, logger, now: () => performance.now(), refreshIntervalMs: 0 });
    tables.push(table);
    await table.get('svc').ready;
    const fail = () => {
      for (const s of registry.subscriptions) s.onError?.(new Error('registry down'));
    };
    const warnings = () => logger.lines.filter((l) => l.level === 'warn').length;
    fail();
    fail();
    fail();
    expect(warnings()).toBe(1);
    registry.push();
    fail();
    expect(warnings(), 'a new outage after a good list').toBe(2);
  });

  it('takes warm-up 0 from a provider as no warm-up, not the default', async () => {
    const registry = new TestRegistry([
      instance('svc', 'none', { port: 1001, warmupMs: 0 }),
      instance('svc', 'unsaid', { port: 1002 }),
    ]);
    const table = tableOf(registry);
    await table.get('svc').ready;
    expect(table.get('svc').endpoints.map((e) => [e.instance.id, e.warmupMs])).toEqual([
      ['none', 0],
      ['unsaid', undefined],
    ]);
  });

  it('ejects on a GOAWAY reported for the origin without its default port', async () => {
    const registry = new TestRegistry([instance('svc', 'a', { port: 80 }), instance('svc', 'b', { port: 8080 })]);
    const table = tableOf(registry);
    await table.get('svc').ready;
    table.ejectOrigin('http://127.0.0.1', 'goaway');
    expect(ids(table)).toEqual(['b']);
  });

  it('subscribes to nothing for a service first asked for after it closed', async () => {
    const registry = new TestRegistry([instance('svc', 'a', { port: 1001 })]);
    const table = tableOf(registry);
    await table.get('svc').ready;
    table.close();
    const late = table.get('other');
    await late.ready;
    expect(late).toMatchObject({ loaded: true, endpoints: [] });
    expect(registry.subscriptions.size).toBe(0);
  });
});
