// Provider options: one schema per options object gives the types users write, the defaults (each
// with its reason), the validation with coded errors, and the tables of docs/options.md
// (`pnpm docs:options`). What a schema cannot say (one option bounded by another, defaults that
// depend on another option) is checked in resolveProviderOptions after it.

import type { Server } from 'node:http';
import type { Http2SecureServer, Http2Server } from 'node:http2';
import type { Server as HttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as v from 'valibot';
import { InvalidOptionError } from './errors.js';
import { type Logger, stderrLogger } from './logger.js';
import type { ProviderRegistry } from './registry/types.js';
import type { RegistryFactory } from './registry/url.js';
import { isHost } from './registry/validate.js';
import {
  dictionary,
  doc,
  duration,
  environment,
  fn,
  group,
  HEADER_NAME,
  list,
  logger,
  nonEmpty,
  numberIn,
  withMethods,
} from './schema/kinds.js';
import { environmentOf, type Parsed, parseOptions, sourceOf } from './schema/parse.js';

/**
 * A server a provider can run: node:http, node:https, or node:http2 (`createServer()`, h2c, and
 * `createSecureServer()`, with or without `allowHTTP1`), through its 'request' event.
 */
export type ProviderServer = Server | HttpsServer | Http2Server | Http2SecureServer;

export type WarmupFn = (signal: AbortSignal) => unknown | Promise<unknown>;

/** What `GET /metrics` serves: prom-client's Registry has this shape. */
export interface MetricsSource {
  readonly contentType: string;
  metrics(): Promise<string> | string;
}

export const DEFAULT_ADMIN_PORT = 9797;
export const DEFAULT_MARKER_HEADER = 'x-lossless-offline';

/** The registry providers and clients use when given none: a directory every process of this machine can find. */
export function defaultRegistryUrl(): string {
  return pathToFileURL(join(tmpdir(), 'lossless-registry')).href;
}

const host = (message = 'expected an IP address or host name') => v.pipe(v.string(message), v.check(isHost, message));

const RESERVED_HEADERS = ['connection', 'content-length', 'transfer-encoding'];

export const warmupHookSchema = group(
  {
    name: doc(nonEmpty(), 'Names the hook in errors, logs and the `reason` shown by `/readyz`.'),
    run: doc(
      fn<WarmupFn>(),
      "The work to do before registration. A rejection fails the start (`LOSSLESS_ERR_WARMUP_FAILED`). `signal` aborts at the hook's timeout or when a drain begins.",
      { type: '(signal: AbortSignal) => unknown | Promise<unknown>' },
    ),
    timeoutMs: v.optional(
      doc(duration(true), 'Time the hook may take; past it the start fails with `LOSSLESS_ERR_WARMUP_TIMEOUT`.', {
        default: '`hookTimeoutMs`',
      }),
    ),
  },
  'expected { name, run }',
);

export const instanceSchema = group(
  {
    ip: v.nullish(
      doc(host(), 'Address registered for consumers.', {
        env: 'LOSSLESS_INSTANCE_IP',
        default:
          "the address the server is bound to; when bound to `0.0.0.0` or `::`, this host's first non-internal IPv4 address, else `127.0.0.1`",
      }),
    ),
    port: v.optional(
      doc(
        numberIn(1, 65_535, { integer: true, message: 'expected a port in 1..65535' }),
        'Port registered for consumers.',
        { default: "the server's port" },
      ),
    ),
    id: v.optional(doc(nonEmpty(), 'Instance id, unique within the service.', { default: '`<ip>:<port>`' })),
    weight: v.nullish(
      doc(
        numberIn(0, Number.MAX_VALUE, { message: 'expected a finite number >= 0' }),
        'Relative share of traffic registered for the instance. 100 leaves room to give an instance less (or more) than the others without fractions.',
      ),
      100,
    ),
    metadata: v.nullish(
      doc(
        dictionary(v.string('expected a string'), 'expected an object of strings'),
        'Extra metadata registered with the instance. The keys `lossless.registered-at`, `lossless.warmup-ms` and `lossless.version` are added and replace user keys of the same name.',
        { type: 'Readonly<Record<string, string>>' },
      ),
      {},
    ),
  },
  'expected an object',
);

export const adminSchema = group(
  {
    port: v.nullish(
      doc(
        numberIn(0, 65_535, { integer: true, message: 'expected 0 or a port in 1..65535' }),
        'Port of the admin server (`/livez`, `/readyz`, `/startupz`, `/status`, `POST /prestop`); `0` picks a free port (read it from `provider.adminAddress`). A fixed port, so that probes and preStop hooks can name it; 9797 is not one of the well-known ports of other tools. If it cannot be bound, `start()` rejects with `LOSSLESS_ERR_LISTEN`.',
        { env: 'LOSSLESS_ADMIN_PORT', envValue: 'number' },
      ),
      DEFAULT_ADMIN_PORT,
    ),
    host: v.nullish(
      doc(host(), 'Interface the admin server binds.', {
        env: 'LOSSLESS_ADMIN_HOST',
        default: 'the address the main server is bound to',
      }),
    ),
    token: v.nullish(
      doc(
        v.pipe(
          v.string('expected a string of at least 8 characters'),
          v.minLength(8, 'expected a string of at least 8 characters'),
        ),
        "Token that callers not on loopback must send as `Authorization: Bearer <token>` or `X-Lossless-Token: <token>` to call `POST /prestop`; with it set, `GET /prestop` (Kubernetes' `httpGet` hook) drains too, but only with the token, from any address. Errors never show it.",
        { env: 'LOSSLESS_ADMIN_TOKEN', secret: true, default: 'none' },
      ),
    ),
  },
  'expected an object or false',
);

export const drainSchema = group(
  {
    quietWindowMs: v.optional(
      doc(
        duration(),
        'How long no new request must arrive before the drain may end, counted from the later of the last arrival and the moment the registry step settled. 1500 ms covers a registry push (Nacos: about 0.5 s) and a client acting on it, without slowing a rollout.',
      ),
      1500,
    ),
    minDrainMs: v.optional(doc(duration(), 'The wait never ends sooner than this after the drain began.'), 0),
    maxDrainMs: v.optional(
      doc(
        duration(),
        "The wait never lasts longer than this after the drain began; requests still in flight then are cut (exit code 1). Must be greater than `drain.quietWindowMs` and at least `drain.minDrainMs`. 25000 ms plus `closeTimeoutMs` and a few seconds fits Kubernetes' default `terminationGracePeriodSeconds` of 30 s.",
      ),
      25_000,
    ),
    closeTimeoutMs: v.optional(
      doc(
        duration(),
        'Once the wait is over and the server is told to close, how long open connections get to finish before they are destroyed. 1000 ms lets a response being written finish.',
      ),
      1000,
    ),
    offline: v.nullish(
      doc(
        v.picklist(['deregister', 'disable'], 'expected "deregister" or "disable"'),
        'How the instance leaves the registry: `deregister` removes it; `disable` keeps it registered but disabled, where the registry supports that (file: yes; static: no, it deregisters instead). `deregister` works with every registry.',
      ),
      'deregister',
    ),
  },
  'expected an object',
);

export const markerSchema = group(
  {
    header: v.nullish(
      doc(
        v.pipe(
          v.string('expected an HTTP header name'),
          v.regex(HEADER_NAME, 'expected an HTTP header name'),
          v.check(
            (h) => !RESERVED_HEADERS.includes(h.toLowerCase()),
            'expected a header name HTTP does not reserve (not connection, content-length or transfer-encoding)',
          ),
        ),
        'Response header set on every tracked response while the instance goes offline (together with `Connection: close`). The client looks for it under this name too.',
      ),
      DEFAULT_MARKER_HEADER,
    ),
    value: v.nullish(
      doc(
        v.pipe(
          v.string('expected a non-empty printable ASCII value'),
          v.regex(/^[\t\x20-\x7e]+$/, 'expected a non-empty printable ASCII value'),
        ),
        'Its value.',
      ),
      'draining',
    ),
  },
  'expected an object',
);

export const registrationSchema = group(
  {
    timeoutMs: v.optional(
      doc(
        duration(true),
        "Time allowed for one register, deregister or disable call, and for reading a registration back at start-up. 5000 ms is well above a healthy registry's answer and short enough to retry soon.",
      ),
      5000,
    ),
    retryMinDelayMs: v.optional(
      doc(
        duration(true),
        'First delay before retrying a failed registration. Later delays double, each multiplied by a random factor in [1, 2), capped at `registration.retryMaxDelayMs`. Registration is retried until it succeeds or a drain begins.',
      ),
      500,
    ),
    retryMaxDelayMs: v.optional(
      doc(
        duration(true),
        'Largest retry delay; at least `registration.retryMinDelayMs`. 10000 ms: a registry back after an outage sees every instance again within seconds, without a storm of retries meanwhile.',
      ),
      10_000,
    ),
    confirmTimeoutMs: v.optional(
      doc(
        duration(),
        'How long the drain polls the registry for the instance to be gone (or disabled). Only for registries that read back (file: yes, static: no). `0` skips the check. A timeout is logged and the drain goes on.',
      ),
      3000,
    ),
    checkIntervalMs: v.optional(
      doc(
        duration(),
        "How often a ready instance looks its registration up in the registry. When the registry answers without it (its data was lost, the entry deleted or corrupted), the instance is not ready (`/readyz` 503, state `registering`, logged as `LOSSLESS_ERR_REGISTRATION_LOST`) until it is registered again and read back. When the registry cannot be reached, the instance stays ready and `/readyz`'s body says `registry.reachable: false`. Never during a drain. `0` turns the check off. Only for registries that read back. 1000 ms: a lost registration is back within about a second, for one cheap read a second.",
      ),
      1000,
    ),
  },
  'expected an object',
);

const signalsSchema = v.union(
  [
    v.literal(false),
    list(
      v.custom<NodeJS.Signals>((s) => typeof s === 'string' && /^SIG[A-Z0-9]+$/.test(s), 'expected a signal name'),
      'expected an array of signal names',
    ),
  ],
  'expected an array of signal names or false',
);

/** ProviderOptions, as users pass them. */
export const providerOptionsSchema = group(
  {
    service: doc(
      v.pipe(
        v.string('expected a non-empty service name of at most 255 characters'),
        v.check((s) => s.trim().length > 0, 'expected a non-empty service name of at most 255 characters'),
        v.maxLength(255, 'expected a non-empty service name of at most 255 characters'),
      ),
      'Service name registered in the registry and discovered by consumers.',
    ),
    registry: v.nullish(
      doc(
        v.union(
          [
            v.string(),
            withMethods<ProviderRegistry>(
              ['register', 'deregister', 'lookup', 'setEnabled', 'setWeight', 'close'],
              'expected a ProviderRegistry',
            ),
          ],
          'expected a registry URL or an object implementing ProviderRegistry (register, deregister, lookup, setEnabled, setWeight, close)',
        ),
        'A registry URL (see [Registry URLs](#registry-urls)) or an object implementing `ProviderRegistry`. A bad URL makes the `Provider` constructor throw `LOSSLESS_ERR_INVALID_REGISTRY_URL`. The default is a directory every process of this machine finds with no setting, the client included.',
        {
          env: 'LOSSLESS_REGISTRY',
          type: 'string | ProviderRegistry',
          default: '`file://<os.tmpdir()>/lossless-registry`',
        },
      ),
      defaultRegistryUrl,
    ),
    registrySchemes: v.nullish(
      doc(
        dictionary(
          fn<RegistryFactory>('expected a registry factory function'),
          'expected an object of factory functions',
        ),
        'Factories for registry URL schemes, keyed by the scheme in lower case without the colon, for example `{ nacos: createNacosRegistry }` from `@lossless/nacos`. A factory is `(url, { logger }) => Registry`. These are looked up before the built-in `file` and `static` schemes.',
        { type: 'Readonly<Record<string, RegistryFactory>>' },
      ),
      {},
    ),
    server: v.optional(
      doc(
        withMethods<ProviderServer>(
          ['listen', 'close', 'prependListener'],
          'expected a node:http, node:https or node:http2 server',
        ),
        'The server whose requests are tracked and which is closed at the end of the drain: `node:http`, `node:https`, or `node:http2` (`createServer()`, h2c, and `createSecureServer()`, with or without `allowHTTP1`; HTTP/2 streams count as requests, and every session gets GOAWAY during the drain). May be given later with `provider.attach(server)`. The express and fastify adapters do not accept it: they supply the server themselves.',
        { type: 'http.Server | https.Server | http2.Http2Server | http2.Http2SecureServer', default: 'none' },
      ),
    ),
    instance: v.nullish(
      doc(instanceSchema, 'What is registered for consumers; see [instance](#instance).', { type: 'InstanceOptions' }),
      {},
    ),
    admin: v.nullish(
      doc(
        v.union([v.literal(false), adminSchema], 'expected an object or false'),
        'The admin server (probes, `POST /prestop`); see [admin](#admin). `false`: no admin server, no token, and the `LOSSLESS_ADMIN_*` variables are ignored; mount `provider.adminHandler` yourself (or use `mountAdmin`).',
        { type: 'AdminOptions | false' },
      ),
      {},
    ),
    drain: v.nullish(
      doc(drainSchema, 'How the instance goes offline; see [drain](#drain).', { type: 'DrainOptions' }),
      {},
    ),
    marker: v.nullish(
      doc(markerSchema, 'The response header sent while going offline; see [marker](#marker).', {
        type: 'MarkerOptions',
      }),
      {},
    ),
    registration: v.nullish(
      doc(registrationSchema, 'Timeouts and retries of registry calls; see [registration](#registration).', {
        type: 'RegistrationOptions',
      }),
      {},
    ),
    warmupWindowMs: v.optional(
      doc(
        duration(),
        "Warm-up window consumers should apply to this instance, advertised in its metadata as `lossless.warmup-ms`, and the length of the provider's own weight ramp when `weightRamp` is on. 60000 ms: long enough for a JIT and caches to warm, short enough for a rollout.",
      ),
      60_000,
    ),
    weightRamp: v.optional(
      doc(
        v.boolean('expected a boolean'),
        'Raise the registered weight from 10 % of `instance.weight` to all of it over `warmupWindowMs`, in ten updates (`setWeight`), so that consumers that do not run lossless (Java services on Nacos) warm the instance up too. The instance then carries `lossless.weight-ramp: provider` and lossless clients apply no ramp of their own. No ramp when `warmupWindowMs` or `instance.weight` is 0.',
        { default: 'as the registry asks (`true` for Nacos, `false` for the file and static registries)' },
      ),
    ),
    warmups: v.nullish(
      doc(
        list(warmupHookSchema, 'expected an array of hooks'),
        'Warm-up hooks, run one after another once the server listens and before registration; see [warmups](#warmups). More can be added with `provider.addWarmup()` before `start()`.',
        { type: 'readonly WarmupHook[]' },
      ),
      [],
    ),
    hookTimeoutMs: v.optional(
      doc(
        duration(true),
        'Timeout of a warm-up hook that sets none, and of every `onReady`, `preDrain` and `onClose` hook. 30000 ms: a hook that takes longer is stuck, not slow.',
      ),
      30_000,
    ),
    signals: v.nullish(
      doc(
        signalsSchema,
        'Signals that start a drain (a second one forces its end). `false` or `[]`: no handler is installed. Handlers are installed by `start()` and removed when the drain is over or by `provider.uninstall()`. SIGTERM is what Kubernetes and Docker send; SIGINT is Ctrl-C.',
        { type: 'readonly NodeJS.Signals[] | false', default: "`['SIGTERM', 'SIGINT']`" },
      ),
      ['SIGTERM', 'SIGINT'],
    ),
    exit: v.nullish(
      doc(
        v.union([v.boolean(), fn<(code: number) => void>()], 'expected a boolean or a function'),
        'What happens once a drain is over, whatever started it: `true` calls `process.exit(code)`, a function is called with the code instead, `false` does nothing. The code is 0 when no request was cut, 1 when some were.',
        { type: 'boolean | ((code: number) => void)', default: '`true` when `signals` is not empty, else `false`' },
      ),
    ),
    logger: v.nullish(
      doc(
        logger(),
        "A pino-compatible logger. When it has `child()`, lossless logs through `child({ service, component: 'lossless' })`. The default drops debug and info and writes each warning and error to stderr as one line (`lossless warn LOSSLESS_ERR_REGISTRY: ...`), so that failures show with no setting; pass `silentLogger` for silence.",
        { type: 'Logger', default: 'warnings and errors to stderr' },
      ),
      stderrLogger,
    ),
    metrics: v.optional(
      doc(
        v.custom<MetricsSource>(
          (m) =>
            typeof m === 'object' &&
            m !== null &&
            typeof (m as MetricsSource).metrics === 'function' &&
            typeof (m as MetricsSource).contentType === 'string',
          'expected { contentType, metrics() }, e.g. a prom-client Registry',
        ),
        "Served as `GET /metrics` (and HEAD) by the admin handler: an object with `contentType` (the answer's `content-type`) and `metrics()` returning the text, for example the result of `prometheusMetrics()` from `@lossless/core/metrics` or a prom-client `Registry`. Without it `/metrics` is a 404. A failing `metrics()` answers 500 `LOSSLESS_ERR_METRICS`. See [observability](observability.md).",
        { type: 'MetricsSource', default: 'none' },
      ),
    ),
    env: environment('Where the `LOSSLESS_*` variables are read from.'),
  },
  'expected an object',
);

export type ProviderOptions = v.InferInput<typeof providerOptionsSchema>;
export type InstanceOptions = v.InferInput<typeof instanceSchema>;
export type AdminOptions = v.InferInput<typeof adminSchema>;
export type DrainOptions = v.InferInput<typeof drainSchema>;
export type MarkerOptions = v.InferInput<typeof markerSchema>;
export type RegistrationOptions = v.InferInput<typeof registrationSchema>;
export type WarmupHook = v.InferInput<typeof warmupHookSchema>;

/** Every option with its value: the schema's output, with the defaults that depend on other options applied. */
export interface ResolvedProviderOptions {
  readonly service: string;
  readonly registry: string | ProviderRegistry;
  readonly registrySchemes: Readonly<Record<string, RegistryFactory>>;
  readonly server: ProviderServer | undefined;
  readonly instance: {
    readonly ip: string | undefined;
    readonly port: number | undefined;
    readonly id: string | undefined;
    readonly weight: number;
    readonly metadata: Readonly<Record<string, string>>;
  };
  readonly admin:
    | { readonly port: number; readonly host: string | undefined; readonly token: string | undefined }
    | false;
  readonly drain: Parsed<typeof drainSchema>;
  readonly marker: Parsed<typeof markerSchema>;
  readonly registration: Parsed<typeof registrationSchema>;
  readonly warmupWindowMs: number;
  /** undefined: as the registry asks (`rampsWeight`). */
  readonly weightRamp: boolean | undefined;
  readonly warmups: readonly Required<WarmupHook>[];
  readonly hookTimeoutMs: number;
  readonly signals: readonly NodeJS.Signals[];
  readonly exit: ((code: number) => void) | undefined;
  readonly logger: Logger;
  readonly metrics: MetricsSource | undefined;
}

export function resolveProviderOptions(options: ProviderOptions): ResolvedProviderOptions {
  const o = parseOptions(providerOptionsSchema, options, { env: environmentOf(options) });

  // what one schema field cannot say: bounds set by another option
  const { drain, registration } = o;
  if (drain.maxDrainMs <= drain.quietWindowMs)
    throw new InvalidOptionError(
      'drain.maxDrainMs',
      drain.maxDrainMs,
      `expected more than drain.quietWindowMs (${drain.quietWindowMs})`,
    );
  if (drain.maxDrainMs < drain.minDrainMs)
    throw new InvalidOptionError(
      'drain.maxDrainMs',
      drain.maxDrainMs,
      `expected at least drain.minDrainMs (${drain.minDrainMs})`,
    );
  if (registration.retryMaxDelayMs < registration.retryMinDelayMs)
    throw new InvalidOptionError(
      'registration.retryMaxDelayMs',
      registration.retryMaxDelayMs,
      `expected at least registration.retryMinDelayMs (${registration.retryMinDelayMs})`,
    );

  // defaults that depend on another option
  const signals = o.signals === false ? [] : o.signals;
  const exitOption = o.exit ?? signals.length > 0;
  const exit =
    exitOption === true ? (code: number) => process.exit(code) : exitOption === false ? undefined : exitOption;
  const { ip, port, id, weight, metadata } = o.instance;
  return {
    service: o.service,
    registry: o.registry,
    registrySchemes: o.registrySchemes,
    server: o.server,
    instance: { ip: ip ?? undefined, port, id, weight, metadata },
    admin:
      o.admin === false
        ? false
        : { port: o.admin.port, host: o.admin.host ?? undefined, token: o.admin.token ?? undefined },
    drain,
    marker: o.marker,
    registration,
    warmupWindowMs: o.warmupWindowMs,
    weightRamp: o.weightRamp,
    warmups: o.warmups.map((hook) => ({ ...hook, timeoutMs: hook.timeoutMs ?? o.hookTimeoutMs })),
    hookTimeoutMs: o.hookTimeoutMs,
    signals,
    exit,
    logger: o.logger,
    metrics: o.metrics,
  };
}

/** A hook given to `addWarmup()`: checked like `warmups[]`, errors named after `label`. */
export function resolveWarmup(hook: WarmupHook, label: string, defaultTimeoutMs: number): Required<WarmupHook> {
  const parsed = parseOptions(warmupHookSchema, hook, { at: label });
  return { ...parsed, timeoutMs: parsed.timeoutMs ?? defaultTimeoutMs };
}

/** `LOSSLESS_REGISTRY` when the registry URL came from it, for errors about the URL. */
export function registrySource(options: ProviderOptions): string | undefined {
  return sourceOf(providerOptionsSchema, options, ['registry'], environmentOf(options));
}
