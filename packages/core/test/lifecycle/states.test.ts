import { describe, expect, it } from 'vitest';
import { IllegalTransitionError } from '../../src/errors.js';
import { assertTransition, canTransition, LIFECYCLE_STATES, type LifecycleState } from '../../src/lifecycle/states.js';

const legal: [LifecycleState, LifecycleState][] = [
  ['starting', 'warming'],
  ['warming', 'registering'],
  ['registering', 'ready'],
  ['ready', 'draining'],
  ['ready', 'registering'],
  ['draining', 'stopped'],
  ['starting', 'draining'],
  ['warming', 'draining'],
  ['registering', 'draining'],
  ['starting', 'failed'],
  ['warming', 'failed'],
  ['failed', 'draining'],
];

describe('lifecycle states', () => {
  it.each(legal)('allows %s -> %s', (from, to) => {
    expect(canTransition(from, to)).toBe(true);
    expect(() => assertTransition(from, to)).not.toThrow();
  });

  it('forbids every other transition with a coded error', () => {
    let forbidden = 0;
    for (const from of LIFECYCLE_STATES) {
      for (const to of LIFECYCLE_STATES) {
        if (legal.some(([f, t]) => f === from && t === to)) continue;
        forbidden++;
        expect(canTransition(from, to)).toBe(false);
        expect(() => assertTransition(from, to)).toThrowError(IllegalTransitionError);
        try {
          assertTransition(from, to);
        } catch (error) {
          expect((error as IllegalTransitionError).code).toBe('LOSSLESS_ERR_ILLEGAL_TRANSITION');
        }
      }
    }
    expect(forbidden).toBe(LIFECYCLE_STATES.length ** 2 - legal.length);
  });

  it('never leaves stopped, and never goes back to ready once draining', () => {
    for (const to of LIFECYCLE_STATES) expect(canTransition('stopped', to)).toBe(false);
    expect(canTransition('draining', 'ready')).toBe(false);
    expect(canTransition('failed', 'ready')).toBe(false);
  });
});
