// The provider lifecycle as a closed state machine. Every transition goes through `assertTransition`,
// so an illegal one throws instead of leaving the provider in a state nobody planned for.

import { IllegalTransitionError } from '../errors.js';

export type LifecycleState = 'starting' | 'warming' | 'registering' | 'ready' | 'failed' | 'draining' | 'stopped';

export const LIFECYCLE_STATES: readonly LifecycleState[] = [
  'starting',
  'warming',
  'registering',
  'ready',
  'failed',
  'draining',
  'stopped',
];

const ALLOWED: Readonly<Record<LifecycleState, readonly LifecycleState[]>> = {
  // waiting for the server to listen
  starting: ['warming', 'failed', 'draining'],
  // warm-up hooks running
  warming: ['registering', 'failed', 'draining'],
  // registering and reading the registration back
  registering: ['ready', 'draining'],
  // back to registering when the registry lost the registration (not ready until it holds again)
  ready: ['registering', 'draining'],
  // a warm-up hook failed: unregistered, not ready; only a drain ends it
  failed: ['draining'],
  draining: ['stopped'],
  stopped: [],
};

export function canTransition(from: LifecycleState, to: LifecycleState): boolean {
  return ALLOWED[from].includes(to);
}

export function assertTransition(from: LifecycleState, to: LifecycleState): void {
  if (!canTransition(from, to)) throw new IllegalTransitionError(from, to);
}
