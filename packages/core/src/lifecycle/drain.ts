// One drain, from its first step to the closed server: out of the registry first (bounded, never
// fatal), every response marked, the wait (drain-waiter.ts: nothing in flight and a quiet window, or
// the maximum), declared streams ended, what is left cut and reported, the server closed, onClose
// hooks, the registry closed. The provider starts it and turns its summary into the `stopped` state.
// The server is driven through its transport (server/transport.ts): on an http2 server every session
// gets GOAWAY when the marking begins (server/http2.ts); a gRPC server's sessions get it once the
// registry step settled (@lossless/grpc).

import { DrainTimeoutError, ForcedShutdownError, type LosslessError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ResolvedProviderOptions } from '../options.js';
import { boundedClose } from '../server/close.js';
import type { InFlightLoad, Transport } from '../server/transport.js';
import type { InFlightRequest } from '../tracking/in-flight.js';
import { type DrainOutcome, DrainWaiter } from './drain-waiter.js';
import type { Hooks } from './hooks.js';
import type { Registration } from './registration.js';
import { withDeadline } from './timeout.js';

/** What started a drain. */
export type DrainTrigger = 'signal' | 'prestop' | 'api';

/** What a finished drain reports (also logged as one line, and returned by POST /prestop). */
export interface DrainSummary {
  readonly service: string;
  readonly trigger: DrainTrigger;
  readonly reason: string;
  readonly outcome: DrainOutcome;
  /** From the start of the drain to the server being closed, in ms. */
  readonly drainMs: number;
  readonly inFlightAtStart: number;
  /** Age of the oldest request in flight when the drain began, in ms. */
  readonly longestInFlightAtStartMs: number;
  /** Requests that arrived after the drain began (all answered with the marker). */
  readonly arrivedDuringDrain: number;
  /** Long-lived responses registered with `provider.stream()` that were told to end when the wait was over. */
  readonly streamsEnded: number;
  /** Requests still in flight when the server was closed; their connections were cut. */
  readonly cut: readonly InFlightRequest[];
  readonly registry: 'removed' | 'disabled' | 'not-registered' | 'failed';
  readonly exitCode: number;
}

export interface DrainContext {
  readonly options: ResolvedProviderOptions;
  /** What is in flight: the transport's, or an idle tracker when no server was attached. */
  readonly tracker: InFlightLoad;
  readonly registration: Registration;
  readonly preDrain: Hooks;
  readonly onClose: Hooks;
  /** The server, closed at the end; none when the drain began before one was attached. */
  readonly transport: Transport | undefined;
  readonly log: Logger;
  readonly now: () => number;
  /** Logs a coded failure and emits it as the provider's `error` (hooks). */
  readonly report: (error: LosslessError) => void;
  /** Emits the provider's `error` (for failures the drain logs its own way). */
  readonly emitError: (error: LosslessError) => void;
}

export class Drain {
  readonly trigger: DrainTrigger;
  readonly reason: string;
  /** Resolves with the summary once the wait is over, before the server closes (POST /prestop answers then). */
  readonly waitOver: Promise<DrainSummary>;
  readonly #ctx: DrainContext;
  /** The state the provider was in when the drain began: a failed start ends with exit code 1. */
  readonly #from: string;
  #waiter: DrainWaiter | undefined;
  #announce!: (summary: DrainSummary) => void;
  /** What forced the end of the drain, if anything did: a signal name or `destroy()`. */
  #forcedBy: string | undefined;

  constructor(ctx: DrainContext, trigger: DrainTrigger, reason: string, from: string) {
    this.#ctx = ctx;
    this.trigger = trigger;
    this.reason = reason;
    this.#from = from;
    this.waitOver = new Promise((resolve) => {
      this.#announce = resolve;
    });
  }

  /** Ends the wait at once: what is still in flight is cut. */
  force(by: string): void {
    this.#forcedBy = by;
    this.#waiter?.force();
  }

  async run(): Promise<DrainSummary> {
    const { options, tracker, log } = this.#ctx;
    const inFlightAtStart = tracker.size;
    const longestInFlightAtStartMs = tracker.oldestAgeMs();
    const arrivedBefore = tracker.total;
    log.info({ trigger: this.trigger, reason: this.reason, inFlight: inFlightAtStart }, 'drain started');

    // from now on every response carries the marker and Connection: close (HTTP/1.x), and every
    // HTTP/2 session goes away the graceful way
    tracker.startMarking(options.marker);
    this.#ctx.transport?.drainStarted();
    const waiter = new DrainWaiter(options.drain, tracker, this.#ctx.now);
    this.#waiter = waiter;
    if (this.#forcedBy !== undefined) waiter.force();
    // the maximum (or a second signal) ends everything: neither the registry step nor the preDrain
    // hooks may hold the drain past it
    const cutShort = waiter.done.then((o) => (o === 'idle' ? new Promise<never>(() => {}) : o));
    const preDrain = this.#ctx.preDrain.run(options.hookTimeoutMs, this.#ctx.report);
    const registry = await Promise.race([this.#leaveRegistry(), cutShort.then(() => 'failed' as const)]);
    waiter.registrySettled();
    this.#ctx.transport?.registryLeft();
    const outcome = await waiter.done;
    await Promise.race([preDrain, cutShort]);

    // long-lived responses end now, cleanly, within drain.closeTimeoutMs (the server's close waits for them)
    const streamsEnded =
      outcome === 'forced'
        ? 0
        : tracker.endStreams((error) => log.warn({ err: error }, 'ending a stream failed; its connection is closed'));
    const cut = outcome === 'idle' ? [] : tracker.snapshot();
    if (cut.length > 0) this.#reportCut(outcome, cut);
    const summary: DrainSummary = {
      service: options.service,
      trigger: this.trigger,
      reason: this.reason,
      outcome,
      drainMs: Math.round(this.#ctx.now() - waiter.startedAt),
      inFlightAtStart,
      longestInFlightAtStartMs: Math.round(longestInFlightAtStartMs),
      arrivedDuringDrain: tracker.total - arrivedBefore,
      streamsEnded,
      cut,
      registry,
      // a process whose start failed, or that cut requests, did not end well
      exitCode: cut.length > 0 || this.#from === 'failed' ? 1 : 0,
    };
    this.#announce(summary);
    await this.#closeServer(cut.length > 0);
    await this.#ctx.onClose.run(options.hookTimeoutMs, this.#ctx.report);
    const registryInstance = this.#ctx.registration.registry;
    await withDeadline(() => registryInstance.close(), options.registration.timeoutMs).catch((error: unknown) => {
      log.warn({ err: error }, 'closing the registry failed');
    });
    const { drainMs, arrivedDuringDrain } = summary;
    log.info(
      {
        drainMs,
        arrivedDuringDrain,
        longestInFlightAtStartMs: summary.longestInFlightAtStartMs,
        outcome,
        cut: cut.length,
        streamsEnded,
        registry,
      },
      `drain ${outcome === 'idle' ? 'complete' : outcome}: ${drainMs} ms, ${arrivedDuringDrain} request(s) served during the drain, longest in flight at start ${summary.longestInFlightAtStartMs} ms`,
    );
    return summary;
  }

  /** Out of the registry first, bounded, never fatal. */
  async #leaveRegistry(): Promise<DrainSummary['registry']> {
    const { options, registration, log } = this.#ctx;
    const disable = options.drain.offline === 'disable' && registration.registry.supportsEnable;
    const outcome = await registration.leave(disable);
    if (typeof outcome === 'string') {
      if (outcome !== 'not-registered')
        log.info(
          { registry: registration.registry.kind },
          disable ? 'disabled in the registry' : 'removed from the registry',
        );
      return outcome;
    }
    log.error(
      { err: outcome, code: outcome.code },
      `leaving the registry failed; draining anyway (marker and quiet window still apply): ${outcome.message}`,
    );
    this.#ctx.emitError(outcome);
    return 'failed';
  }

  #reportCut(outcome: DrainOutcome, cut: readonly InFlightRequest[]): void {
    const { log, options } = this.#ctx;
    const error =
      outcome === 'forced'
        ? new ForcedShutdownError(this.#forcedBy ?? 'destroy()', cut.length)
        : new DrainTimeoutError(options.drain.maxDrainMs, cut.length);
    log.error({ err: error, code: error.code, requests: cut }, error.message);
    for (const request of cut) {
      log.warn(
        { code: error.code, method: request.method, url: request.url, ageMs: Math.round(request.ageMs) },
        'request cut at the end of the drain',
      );
    }
    this.#ctx.emitError(error);
  }

  async #closeServer(force: boolean): Promise<void> {
    const { transport, tracker, log } = this.#ctx;
    if (transport === undefined) return;
    if (force) {
      tracker.abortAll();
      transport.destroy();
    }
    await boundedClose(transport.close(), this.#ctx.options.drain.closeTimeoutMs, () => {
      log.warn({ inFlight: tracker.size }, 'connections still open after the close timeout; destroying them');
      transport.destroy();
    });
    transport.detach();
  }
}
