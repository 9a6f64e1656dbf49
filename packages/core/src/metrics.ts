// @lossless/core/metrics: Prometheus metrics for providers and clients, with prom-client (an optional
// peer dependency: install it to use this entry point). Counters come from the diagnostics_channel
// events the provider and the client publish; gauges are read from the tracked objects when scraped,
// so nothing is added to the request path.

import diagnosticsChannel from 'node:diagnostics_channel';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { InvalidOptionError } from './errors.js';
import { LIFECYCLE_STATES } from './lifecycle/states.js';
import type { DrainSummary, Provider, RegistryOperation } from './provider.js';
import { CHANNELS } from './provider.js';

/** The client channels metrics listen to: @lossless/client's CLIENT_CHANNELS (core cannot import it; packages/client/test/channels.test.ts checks they match). */
const CLIENT_CHANNEL_NAMES = {
  retry: 'lossless:client:retry',
  marker: 'lossless:client:marker',
  eject: 'lossless:client:eject',
  refresh: 'lossless:client:refresh',
  registryError: 'lossless:client:registry-error',
  circuit: 'lossless:client:circuit',
} as const;

/** What metrics read from a client on scrape (a `LosslessClient` from @lossless/client has it). */
export interface MetricsClient {
  instances(): readonly {
    readonly service: string;
    readonly instance: string;
    readonly origin: string;
    readonly effectiveWeight: number;
    readonly inFlight: number;
    readonly circuit: 'closed' | 'open' | 'half-open';
  }[];
}

export interface PrometheusMetricsOptions {
  /** The prom-client Registry to register in. Default: a new one. */
  readonly register?: Registry;
  /** Prefix of every metric name. Default `lossless_`. */
  readonly prefix?: string;
  /** Drain duration histogram buckets, in seconds. */
  readonly drainBuckets?: readonly number[];
}

export interface LosslessMetrics {
  readonly register: Registry;
  /** For `GET /metrics` (also what the provider's `metrics` option takes). */
  readonly contentType: string;
  metrics(): Promise<string>;
  /**
   * Reads gauges from a provider or a client on every scrape. Providers are also picked up by
   * themselves once they publish their first event; clients must be tracked.
   */
  track(target: Provider | MetricsClient): this;
  /** Stops listening to events and removes the metrics from the registry. */
  close(): void;
}

const CIRCUIT_VALUE = { closed: 0, 'half-open': 1, open: 2 } as const;

export function prometheusMetrics(options: PrometheusMetricsOptions = {}): LosslessMetrics {
  if (typeof options !== 'object' || options === null)
    throw new InvalidOptionError('options', options, 'expected an object');
  const prefix = options.prefix ?? 'lossless_';
  if (typeof prefix !== 'string' || !/^[a-zA-Z_:][a-zA-Z0-9_:]*$|^$/.test(prefix))
    throw new InvalidOptionError(
      'prefix',
      prefix,
      'expected a Prometheus metric name prefix ([a-zA-Z_:][a-zA-Z0-9_:]*)',
    );
  const register = options.register ?? new Registry();
  if (!(register instanceof Registry))
    throw new InvalidOptionError('register', register, 'expected a prom-client Registry');
  const buckets = options.drainBuckets ?? [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
  if (!Array.isArray(buckets) || buckets.some((b) => typeof b !== 'number' || !(b > 0) || !Number.isFinite(b)))
    throw new InvalidOptionError('drainBuckets', buckets, 'expected positive finite numbers (seconds)');

  const providers = new Set<Provider>();
  const clients = new Set<MetricsClient>();
  const registers = [register];
  const created: string[] = [];
  const name = (n: string): string => {
    created.push(`${prefix}${n}`);
    return `${prefix}${n}`;
  };

  /** A counter fed by events. */
  const counter = <L extends string>(metric: string, help: string, labelNames: readonly L[]): Counter<L> =>
    new Counter({ name: name(metric), help, labelNames, registers });

  // --- provider ------------------------------------------------------------------------------
  new Gauge({
    name: name('provider_state'),
    help: 'Lifecycle state of the provider: 1 for the current state, 0 for the others.',
    labelNames: ['service', 'state'],
    registers,
    collect() {
      this.reset();
      for (const p of providers)
        for (const state of LIFECYCLE_STATES)
          this.set({ service: p.options.service, state }, p.state === state ? 1 : 0);
    },
  });
  new Gauge({
    name: name('provider_in_flight'),
    help: 'Requests the provider is working on.',
    labelNames: ['service'],
    registers,
    collect() {
      this.reset();
      for (const p of providers) this.inc({ service: p.options.service }, p.inFlight);
    },
  });
  const fromTracker = (metric: string, help: string, read: (p: Provider) => number): void => {
    new Counter({
      name: name(metric),
      help,
      labelNames: ['service'],
      registers,
      collect() {
        this.reset();
        for (const p of providers) this.inc({ service: p.options.service }, read(p));
      },
    });
  };
  fromTracker('provider_requests_total', 'Requests the provider received.', (p) => p.tracker.total);
  fromTracker(
    'provider_requests_during_drain_total',
    'Requests that arrived while the provider was draining (each answered with the offline marker).',
    (p) => p.tracker.arrivedWhileMarking,
  );
  fromTracker('provider_marked_responses_total', 'Responses sent with the offline marker.', (p) => p.tracker.marked);
  const drainSeconds = new Histogram({
    name: name('provider_drain_duration_seconds'),
    help: 'Time from the start of a drain to the server being closed.',
    labelNames: ['service', 'outcome'],
    buckets: [...buckets],
    registers,
  });
  const drainCut = counter(
    'provider_drain_cut_requests_total',
    'Requests still in flight when a drain reached its maximum (their connections were cut).',
    ['service'],
  );
  const registryOps = counter(
    'registry_operations_total',
    'Registry calls made by providers (register, deregister, disable), by result.',
    ['service', 'registry', 'operation', 'result'],
  );

  // --- client --------------------------------------------------------------------------------
  const retries = counter('client_retries_total', 'Attempts retried by the client, by reason of the failed attempt.', [
    'service',
    'reason',
  ]);
  const markers = counter('client_marked_responses_total', 'Responses received with the offline marker.', [
    'service',
    'instance',
  ]);
  const ejections = counter(
    'client_ejections_total',
    'Instances taken out of rotation after an offline marker or an HTTP/2 GOAWAY.',
    ['service'],
  );
  const refreshes = counter(
    'client_registry_refreshes_total',
    'Registry reads triggered by markers or suspicious empty lists.',
    ['service', 'reason'],
  );
  const registryErrors = counter(
    'client_registry_errors_total',
    'Registry reads that failed (the last good list stayed in use).',
    ['service'],
  );
  const circuitChanges = counter(
    'client_circuit_transitions_total',
    'Circuit breaker transitions per instance origin.',
    ['origin', 'state'],
  );
  const instanceGauge = (
    metric: string,
    help: string,
    read: (i: ReturnType<MetricsClient['instances']>[number]) => number,
  ): void => {
    new Gauge({
      name: name(metric),
      help,
      labelNames: ['service', 'instance', 'origin'],
      registers,
      collect() {
        this.reset();
        for (const c of clients)
          for (const i of c.instances())
            this.set({ service: i.service, instance: i.instance, origin: i.origin }, read(i));
      },
    });
  };
  instanceGauge(
    'client_instance_weight',
    'Weight the balancer gives an instance now: its registry weight times its warm-up factor.',
    (i) => i.effectiveWeight,
  );
  instanceGauge('client_instance_in_flight', 'Requests the client has in flight on an instance.', (i) => i.inFlight);
  instanceGauge(
    'client_circuit_state',
    'Circuit state of an instance: 0 closed, 1 half-open, 2 open.',
    (i) => CIRCUIT_VALUE[i.circuit],
  );

  // --- events --------------------------------------------------------------------------------
  const subscriptions: [string, (message: unknown) => void][] = [
    [CHANNELS.state, (m) => providers.add((m as { provider: Provider }).provider)],
    [
      CHANNELS.drain,
      (m) => {
        const { provider, summary } = m as { provider: Provider; summary: DrainSummary };
        providers.add(provider);
        drainSeconds.observe({ service: summary.service, outcome: summary.outcome }, summary.drainMs / 1000);
        if (summary.cut.length > 0) drainCut.inc({ service: summary.service }, summary.cut.length);
      },
    ],
    [
      CHANNELS.registry,
      (m) => {
        const e = m as RegistryOperation;
        providers.add(e.provider);
        registryOps.inc({
          service: e.service,
          registry: e.registry,
          operation: e.operation,
          result: e.ok ? 'ok' : 'error',
        });
      },
    ],
    [
      CLIENT_CHANNEL_NAMES.retry,
      (m) => {
        const e = m as { service: string; reason: string };
        retries.inc({ service: e.service, reason: e.reason });
      },
    ],
    [
      CLIENT_CHANNEL_NAMES.marker,
      (m) => {
        const e = m as { service: string; instance: string };
        markers.inc({ service: e.service, instance: e.instance });
      },
    ],
    [CLIENT_CHANNEL_NAMES.eject, (m) => ejections.inc({ service: (m as { service: string }).service })],
    [
      CLIENT_CHANNEL_NAMES.refresh,
      (m) => {
        const e = m as { service: string; reason: string };
        refreshes.inc({ service: e.service, reason: e.reason });
      },
    ],
    [CLIENT_CHANNEL_NAMES.registryError, (m) => registryErrors.inc({ service: (m as { service: string }).service })],
    [
      CLIENT_CHANNEL_NAMES.circuit,
      (m) => {
        const e = m as { origin: string; state: string };
        circuitChanges.inc({ origin: e.origin, state: e.state });
      },
    ],
  ];
  for (const [channel, fn] of subscriptions) diagnosticsChannel.subscribe(channel, fn);
  let closed = false;

  const metrics: LosslessMetrics = {
    register,
    get contentType() {
      return register.contentType;
    },
    metrics: () => register.metrics(),
    track(target) {
      if (typeof (target as MetricsClient)?.instances === 'function') clients.add(target as MetricsClient);
      else if (typeof (target as Provider)?.tracker === 'object') providers.add(target as Provider);
      else throw new InvalidOptionError('target', target, 'expected a Provider or a client with instances()');
      return metrics;
    },
    close() {
      if (closed) return;
      closed = true;
      for (const [channel, fn] of subscriptions) diagnosticsChannel.unsubscribe(channel, fn);
      for (const metric of created) register.removeSingleMetric(metric);
      providers.clear();
      clients.clear();
    },
  };
  return metrics;
}
