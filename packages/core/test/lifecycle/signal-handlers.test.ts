// What a signal does to a provider: the first starts a drain (or joins one begun otherwise), the
// next one during that drain forces its end, one after the drain is only logged; uninstall leaves no
// handler behind. Played with SIGUSR2, emitted in this process.

import { afterEach, describe, expect, it } from 'vitest';
import { SignalHandlers, type SignalTarget } from '../../src/lifecycle/signal-handlers.js';
import type { Logger } from '../../src/logger.js';

const SIGNAL = 'SIGUSR2';

function target(initial: { trigger?: string } = {}) {
  const did: string[] = [];
  let trigger = initial.trigger;
  let stopped = false;
  const log = (level: string) => (_fields: object, message: string) => did.push(`${level}: ${message}`);
  const logger: Logger = { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
  const t: SignalTarget = {
    log: logger,
    drainTrigger: () => trigger,
    stopped: () => stopped,
    drain: (signal) => {
      did.push(`drain ${signal}`);
      trigger = 'signal';
    },
    force: (signal) => did.push(`force ${signal}`),
    inFlight: () => [],
  };
  return {
    t,
    did,
    stop: () => {
      stopped = true;
    },
  };
}

let handlers: SignalHandlers | undefined;
afterEach(() => handlers?.uninstall());

describe('SignalHandlers', () => {
  it('drains on the first signal and forces the end on the second', () => {
    const { t, did } = target();
    handlers = new SignalHandlers();
    handlers.install([SIGNAL], t);
    process.emit(SIGNAL);
    expect(did).toEqual([`drain ${SIGNAL}`]);
    process.emit(SIGNAL);
    expect(did).toEqual([
      `drain ${SIGNAL}`,
      `warn: another ${SIGNAL} during the drain: closing now`,
      `force ${SIGNAL}`,
    ]);
  });

  it('joins a drain begun by POST /prestop with the first signal, and forces it with the next', () => {
    const { t, did } = target({ trigger: 'prestop' });
    handlers = new SignalHandlers();
    handlers.install([SIGNAL], t);
    process.emit(SIGNAL);
    expect(did).toEqual([`info: ${SIGNAL} during a drain started by prestop: joining it`]);
    process.emit(SIGNAL);
    expect(did.slice(1)).toEqual([`warn: another ${SIGNAL} during the drain: closing now`, `force ${SIGNAL}`]);
  });

  it('only logs a signal after the drain ended', () => {
    const { t, did, stop } = target();
    handlers = new SignalHandlers();
    handlers.install([SIGNAL], t);
    process.emit(SIGNAL);
    stop();
    process.emit(SIGNAL);
    process.emit(SIGNAL);
    expect(did).toEqual([
      `drain ${SIGNAL}`,
      `info: ${SIGNAL} after the drain ended`,
      `info: ${SIGNAL} after the drain ended`,
    ]);
  });

  it('installs one handler per signal however often it is asked, and uninstall removes it', () => {
    const before = process.listenerCount(SIGNAL);
    const { t } = target();
    handlers = new SignalHandlers();
    handlers.install([SIGNAL], t);
    handlers.install([SIGNAL], t);
    expect(process.listenerCount(SIGNAL)).toBe(before + 1);
    handlers.uninstall();
    expect(process.listenerCount(SIGNAL)).toBe(before);
  });
});
