// Shared by registries that deliver lists to subscribers: re-reads the list on demand, never two
// reads at once (a request during a read schedules exactly one more), and delivers only changes.

import type { Instance, InstanceListener } from './types.js';

export interface ListRefresher {
  /** Read the list now, or once more after the read under way. */
  refresh(): void;
  /** No delivery after this. */
  stop(): void;
}

export function listRefresher(
  read: () => Promise<readonly Instance[]>,
  listener: InstanceListener,
  onError?: (error: Error) => void,
): ListRefresher {
  let active = true;
  let running = false;
  let again = false;
  let last: string | undefined;
  const run = async (): Promise<void> => {
    running = true;
    try {
      do {
        again = false;
        const instances = await read();
        const signature = JSON.stringify(instances);
        if (active && signature !== last) {
          last = signature;
          listener(instances);
        }
      } while (again && active);
    } catch (error) {
      // the last delivered list stays the subscriber's view until a read succeeds
      if (active) onError?.(error as Error);
    } finally {
      running = false;
    }
  };
  return {
    refresh() {
      if (!active) return;
      if (running) again = true;
      else void run();
    },
    stop() {
      active = false;
    },
  };
}
