// The provider's state as the world sees it: transitions emitted and published, the reason (with a
// registry found unusable at start, until registered), the three probes, following the registration
// once ready, and the status.

import diagnosticsChannel from 'node:diagnostics_channel';
import { afterEach, describe, expect, it } from 'vitest';
import { IllegalTransitionError } from '../../src/errors.js';
import { CHANNELS, type StateChange } from '../../src/lifecycle/events.js';
import { type RegistryView, StateMachine } from '../../src/lifecycle/state-machine.js';
import { silentLogger } from '../../src/logger.js';
import type { Provider } from '../../src/provider.js';

function machine(registry: RegistryView = { kind: 'file', registered: false, reachable: true }) {
  const emitted: StateChange[] = [];
  const provider = {
    options: { service: 'orders' },
    emit: (event: string, change: StateChange) => {
      if (event === 'state') emitted.push(change);
      return true;
    },
  } as unknown as Provider;
  return { m: new StateMachine(provider, silentLogger, () => registry), emitted };
}

const published: unknown[] = [];
const onState = (message: unknown) => published.push(message);
afterEach(() => {
  diagnosticsChannel.unsubscribe(CHANNELS.state, onState);
  published.length = 0;
});

describe('StateMachine', () => {
  it('emits and publishes every transition, and refuses an illegal one unchanged', () => {
    diagnosticsChannel.subscribe(CHANNELS.state, onState);
    const { m, emitted } = machine();
    m.transition('warming', 'running warm-up hooks');
    expect(emitted).toEqual([{ service: 'orders', from: 'starting', to: 'warming', reason: 'running warm-up hooks' }]);
    expect(published).toEqual([expect.objectContaining({ from: 'starting', to: 'warming' })]);
    expect(() => m.transition('stopped', 'no')).toThrow(IllegalTransitionError);
    expect(m.state).toBe('warming');
    expect(m.reason).toBe('running warm-up hooks');
    expect(emitted).toHaveLength(1);
  });

  it('says why the registry cannot be used with the reason until the instance is registered', () => {
    const { m } = machine();
    m.registryUnusable('the file registry cannot be used: EACCES');
    m.explain('waiting for the server to listen');
    expect(m.reason).toBe('waiting for the server to listen; the file registry cannot be used: EACCES');
    m.transition('warming', 'running warm-up hooks');
    expect(m.reason).toContain('EACCES');
    m.transition('registering', 'registering in the file registry');
    expect(m.reason).toBe('registering in the file registry'); // the registration's own failures say it now
    m.transition('ready', 'registered');
    m.transition('registering', 'lost');
    expect(m.reason).toBe('lost');
  });

  it('answers the probes: live until stopped, ready only when ready, started once ready the first time', () => {
    const { m } = machine();
    const probes = () => [m.livez().ok, m.readyz().ok, m.startupz().ok];
    expect(probes()).toEqual([true, false, false]);
    m.transition('warming', 'w');
    m.transition('registering', 'r');
    expect(probes()).toEqual([true, false, false]);
    m.transition('ready', 'ok');
    expect(probes()).toEqual([true, true, true]);
    m.transition('registering', 'the registry lost the instance');
    expect(probes()).toEqual([true, false, true]);
    m.transition('draining', 'd');
    expect(probes()).toEqual([true, false, true]);
    m.transition('stopped', 's');
    expect(probes()).toEqual([false, false, true]);
    expect(m.readyz().body).toMatchObject({
      service: 'orders',
      state: 'stopped',
      reason: 's',
      registry: { kind: 'file' },
    });
  });

  it('counts a drain as started, even one that ends a failed start (the startup probe holds nothing back then)', () => {
    const { m } = machine();
    m.transition('failed', 'warm-up hook failed');
    expect(m.startupz().ok).toBe(false);
    m.transition('draining', 'd');
    expect(m.startupz().ok).toBe(true);
  });

  it('follows the registration once ready: lost only when ready, retried only while registering, restored', () => {
    const { m, emitted } = machine();
    const watch = m.registrationWatch('nacos');
    watch.lost('too early'); // not ready yet: nothing happens
    watch.retrying('too early');
    expect(m.state).toBe('starting');
    expect(m.reason).toBe('not started');
    m.transition('warming', 'w');
    m.transition('registering', 'r');
    m.transition('ready', 'ok');
    watch.restored(); // ready already: nothing happens
    watch.lost('the registry lost the instance');
    expect(m.state).toBe('registering');
    watch.retrying('registering again: attempt 2 failed');
    expect(m.reason).toBe('registering again: attempt 2 failed');
    watch.restored();
    expect(m.state).toBe('ready');
    expect(m.reason).toBe('registered again in the nacos registry');
    expect(emitted.map((c) => c.to)).toEqual(['warming', 'registering', 'ready', 'registering', 'ready']);
  });

  it('reports the status: state, load, registration and the last drain', () => {
    const { m } = machine({ kind: 'nacos', registered: true, reachable: true });
    const load = { size: 2, total: 40, oldestAgeMs: () => 12.4 } as Parameters<StateMachine['status']>[0];
    const status = m.status(load, undefined, undefined);
    expect(status).toMatchObject({
      service: 'orders',
      state: 'starting',
      inFlight: 2,
      oldestInFlightMs: 12,
      requests: 40,
      registry: { kind: 'nacos', registered: true, instance: undefined, reachable: true },
      lastDrain: undefined,
    });
    expect(Date.parse(status.since)).not.toBeNaN();
  });
});
