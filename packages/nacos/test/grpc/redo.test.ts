import { describe, expect, it } from 'vitest';
import { planService, type Told, toldOf, type Wanted } from '../../src/grpc/redo.js';
import { UPDATE_WEIGHT_ONE } from '../../src/instance.js';

function wanted(port: number, extra: Partial<Wanted> = {}): Wanted {
  return {
    key: `127.0.0.1:${port}`,
    ip: '127.0.0.1',
    port,
    nacosWeight: 1,
    enabled: true,
    metadata: { a: 'b' },
    ...extra,
  };
}

const told = (...list: Wanted[]): Map<string, Told> => new Map(list.map((w) => [w.key, toldOf(w)]));

/** Steps as `register 1,2 @w` / `deregister 1`, to read the plans at a glance. */
function show(steps: ReturnType<typeof planService>): string[] {
  return steps.map((s) =>
    s.kind === 'deregister'
      ? `deregister ${s.instance.port}`
      : `register ${s.instances.map((i) => `${i.port}@${i.sentWeight}${i.enabled ? '' : ' disabled'}`).join(',')}`,
  );
}

describe('planService', () => {
  it('registers a new instance with its weight as it is, 1.0 included', () => {
    expect(show(planService([wanted(1)], new Map()))).toEqual(['register 1@1']);
  });

  it('sends nothing when the connection already told Nacos the same', () => {
    expect(planService([wanted(1)], told(wanted(1)))).toEqual([]);
  });

  it('updates weight, enabled and metadata by registering again', () => {
    expect(show(planService([wanted(1, { nacosWeight: 0.3 })], told(wanted(1))))).toEqual(['register 1@0.3']);
    expect(show(planService([wanted(1, { enabled: false })], told(wanted(1))))).toEqual(['register 1@1 disabled']);
    expect(show(planService([wanted(1, { metadata: { a: 'c' } })], told(wanted(1))))).toEqual(['register 1@1']);
  });

  it('sends an update to 1.0 as the nearest float above it (rnacos keeps the old weight for 1.0)', () => {
    const plan = planService([wanted(1)], told(wanted(1, { nacosWeight: 0.9 })));
    expect(show(plan)).toEqual([`register 1@${UPDATE_WEIGHT_ONE}`]);
  });

  it('enables a disabled instance by deregistering it first (rnacos keeps it disabled otherwise)', () => {
    const plan = planService([wanted(1, { nacosWeight: 0.5 })], told(wanted(1, { nacosWeight: 0.5, enabled: false })));
    expect(show(plan)).toEqual(['deregister 1', 'register 1@0.5']);
  });

  it('deregisters what is no longer wanted, and nothing else when nothing else is held', () => {
    expect(show(planService([], told(wanted(1))))).toEqual(['deregister 1']);
    expect(planService([], new Map())).toEqual([]);
  });

  it('registers several instances of a service in one batch (Nacos keeps one registration per service and connection)', () => {
    expect(show(planService([wanted(2), wanted(1, { nacosWeight: 0.5 })], new Map()))).toEqual(['register 1@0.5,2@1']);
  });

  it('after deregistering one of several, registers the rest again (Nacos drops them all with it)', () => {
    const plan = planService([wanted(1, { nacosWeight: 0.2 })], told(wanted(1, { nacosWeight: 0.2 }), wanted(2)));
    // 1 is registered anew after the deregistration: its weight goes as it is
    expect(show(plan)).toEqual(['deregister 2', 'register 1@0.2']);
  });

  it('redo: on a new connection (nothing told), registers everything wanted with the latest state', () => {
    const latest = [wanted(1, { nacosWeight: 0.7 }), wanted(2, { enabled: false })];
    expect(show(planService(latest, new Map()))).toEqual(['register 1@0.7,2@1 disabled']);
  });

  it('sends again what may not have arrived (a request that failed without an answer)', () => {
    const uncertain = new Map([[wanted(1).key, { ...toldOf(wanted(1)), nacosWeight: Number.NaN }]]);
    expect(show(planService([wanted(1)], uncertain))).toEqual([`register 1@${UPDATE_WEIGHT_ONE}`]);
    expect(show(planService([], uncertain))).toEqual(['deregister 1']);
  });
});
