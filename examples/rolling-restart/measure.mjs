// What every provider process of the rolling-restart demo (provider.mjs, provider-h2.mjs,
// provider-grpc.mjs) measures about its own drain, identically in every mode, and the JSON events it
// prints on stdout for the demo: ready, sigterm (what was in flight), exit (what arrived after
// SIGTERM, how long the drain took, and for lossless how long after its exit condition held it
// exited).

import diagnosticsChannel from 'node:diagnostics_channel';
import { CHANNELS } from '@lossless/core';

/**
 * @typedef {object} LoadView what the process counts of its own requests (or calls)
 * @property {() => number} total how many arrived so far
 * @property {() => number} size how many are in flight
 * @property {() => number} oldestAgeMs the age of the oldest in flight (0 when none)
 * @property {() => number} longestRemainingMs what is left of the longest in flight, from what the
 *   requests say they take (0 when unknown)
 */

/**
 * @param {object} o
 * @param {string} o.name the process' name in the demo (p0, p1, ...)
 * @param {string} o.mode its shutdown mode
 * @param {number} o.quietWindowMs lossless' quiet window, for the moment its exit condition held
 * @param {LoadView} o.load
 * @param {string} [o.protocol] added to every event
 */
export function drainMeasure({ name, mode, quietWindowMs, load, protocol }) {
  const emit = (event, fields = {}) =>
    console.log(
      JSON.stringify({ event, name, pid: process.pid, ...(protocol === undefined ? {} : { protocol }), ...fields }),
    );
  // when the last request arrived and the last one ended (ms, wall clock), for the drain's exit
  // condition: nothing in flight, and the quiet window passed since max(last arrival, registry left)
  let lastArrivalAt = 0;
  let lastDoneAt = 0;
  let sigtermAt;
  let arrivedBefore = 0;
  let registryLeftAt;
  let reported = false;
  diagnosticsChannel.subscribe(CHANNELS.registry, ({ operation, ok }) => {
    if (operation !== 'register' && ok) registryLeftAt = Date.now();
  });

  return {
    emit,
    /** A request arrived. */
    arrived() {
      lastArrivalAt = Date.now();
    },
    /** A request ended (answered, or its connection closed). */
    done() {
      lastDoneAt = Date.now();
    },
    /** SIGTERM arrived: what is in flight (once; put it in front of the other listeners). */
    onSigterm() {
      if (sigtermAt !== undefined) return;
      sigtermAt = Date.now();
      arrivedBefore = load.total();
      emit('sigterm', {
        inFlight: load.size(),
        longestInFlightMs: Math.round(load.oldestAgeMs()),
        longestRemainingMs: Math.round(Math.max(0, load.longestRemainingMs())),
      });
    },
    /** The process is about to exit (once, and only after SIGTERM). */
    reportExit(extra = {}) {
      if (reported || sigtermAt === undefined) return;
      reported = true;
      const now = Date.now();
      // lossless: the moment its exit condition held; the time from there to the exit call is its own delay
      const conditionAt = Math.max(lastDoneAt, Math.max(lastArrivalAt, registryLeftAt ?? sigtermAt) + quietWindowMs);
      emit('exit', {
        arrivedAfterSigterm: load.total() - arrivedBefore,
        drainMs: now - sigtermAt,
        lastArrivalAfterSigtermMs: Math.max(0, lastArrivalAt - sigtermAt),
        exitDelayMs: mode === 'lossless' ? now - conditionAt : null,
        ...extra,
      });
    },
  };
}

/** A LoadView of core's in-flight tracker; the demo's requests say how long they take (?ms=N). */
export function trackerLoad(tracker) {
  return {
    total: () => tracker.total,
    size: () => tracker.size,
    oldestAgeMs: () => tracker.oldestAgeMs(),
    longestRemainingMs: () =>
      Math.max(
        0,
        ...tracker.snapshot().map((r) => Number(new URL(r.url, 'http://x').searchParams.get('ms') ?? 0) - r.ageMs),
      ),
  };
}
