// Nacos registry options, from an object or a URL:
//   nacos://user:pass@127.0.0.1:8848,127.0.0.1:8858/?namespace=public&group=DEFAULT_GROUP&cluster=DEFAULT&transport=grpc
// One schema (core's toolkit, as the provider's and the client's options) gives the types, the
// defaults with their reasons, the checks with coded errors (an unknown key or URL parameter refused
// with the closest valid one), the URL parameters, and the table of docs/nacos.md (`pnpm docs:options`).
// Defaults that depend on another option, and checks across options, come after the schema.

import { isIP } from 'node:net';
import { InvalidOptionError, InvalidRegistryUrlError } from '@lossless/core';
import {
  closest,
  dictionary,
  doc,
  group,
  inspect,
  logger,
  nonEmpty,
  numberIn,
  parseOptions,
} from '@lossless/core/internal';
import * as v from 'valibot';

export type NacosTransport = 'grpc' | 'http';

const NAME_MESSAGE = 'expected 1-128 letters, digits or _.:-';
const name = () => v.pipe(v.string(NAME_MESSAGE), v.regex(/^[A-Za-z0-9_.:-]{1,128}$/, NAME_MESSAGE));

/** A DNS name or an IPv4 address, as core checks hosts. */
const HOST_NAME =
  /^(?=.{1,253}$)[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;
const SERVER_MESSAGE = 'expected host:port with an IP address or host name and a port in 1..65535';

/** `host[:port]` as `host:port` (8848 when the port is left out), or undefined when it is not one. */
function normalizeServer(value: string): string | undefined {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?$/.exec(value.trim());
  if (m === null) return undefined;
  const host = m[1] as string;
  if (host.startsWith('[') ? isIP(host.slice(1, -1)) !== 6 : !HOST_NAME.test(host)) return undefined;
  const port = m[2] === undefined ? 8848 : Number(m[2]);
  return port >= 1 && port <= 65_535 ? `${host}:${port}` : undefined;
}

const server = v.pipe(
  v.string(SERVER_MESSAGE),
  v.check((s) => normalizeServer(s) !== undefined, SERVER_MESSAGE),
  v.transform((s) => normalizeServer(s) as string),
);

const SERVERS_MESSAGE = 'expected host:port, several separated by commas, or an array of them';
const servers = v.pipe(
  v.custom<string | readonly string[]>((s) => typeof s === 'string' || Array.isArray(s), SERVERS_MESSAGE),
  // Array.from, not map: a hole in the list is a missing server, not one to skip
  v.transform((s) => (typeof s === 'string' ? s.split(',') : Array.from(s as readonly unknown[]))),
  v.array(server, SERVERS_MESSAGE),
  v.minLength(1, 'expected at least one host:port'),
);

/** One call to Nacos, or one poll: more than an hour is a mistake, not a setting. */
const MAX_MS = 3_600_000;
const ms = () =>
  numberIn(Number.MIN_VALUE, MAX_MS, { message: `expected a number of milliseconds > 0 and at most ${MAX_MS}` });

const booleanSchema = () => v.boolean('expected a boolean');

/** NacosRegistryOptions, as users pass them (and as parseNacosUrl reads them from a URL). */
export const nacosOptionsSchema = group(
  {
    servers: doc(
      servers,
      'Nacos servers, `host:port` (the HTTP port, as Nacos clients are given it; 8848 when omitted), as an array or separated by commas. Calls go to one that answers; over gRPC, a lost connection is replaced by one to the next server.',
      { type: 'string | readonly string[]', url: 'the hosts' },
    ),
    transport: v.optional(
      doc(
        v.picklist(['grpc', 'http'], "expected 'grpc' or 'http'"),
        "`grpc`: Nacos' gRPC API (2.x, 3.x), as Java clients speak it: ephemeral instances live as long as the connection and changes are pushed. `http`: the v1 HTTP OpenAPI and heartbeats (Nacos 1.x, persistent instances, or a closed gRPC port). See [Transports](#transports).",
        { url: '`?transport=`', default: '`grpc`; `http` when `ephemeral` is `false`' },
      ),
    ),
    grpcPort: v.optional(
      doc(
        numberIn(1, 65_535, { integer: true, message: 'expected a port in 1..65535' }),
        'gRPC port of every server, where it is not the usual one (behind a proxy, a container with mapped ports).',
        { url: '`?grpcPort=`', default: "each server's HTTP port + 1000, where Nacos listens" },
      ),
    ),
    namespace: v.optional(
      doc(name(), "Nacos namespace id. `public`: Nacos' own default namespace.", { url: '`?namespace=`' }),
      'public',
    ),
    group: v.optional(
      doc(name(), "Group of the service. `DEFAULT_GROUP`: where Nacos' Java clients register unless told.", {
        url: '`?group=`',
      }),
      'DEFAULT_GROUP',
    ),
    cluster: v.optional(
      doc(name(), "Cluster the instance registers in. `DEFAULT`: Nacos' and Spring Cloud Alibaba's default.", {
        url: '`?cluster=`',
      }),
      'DEFAULT',
    ),
    ephemeral: v.optional(
      doc(
        booleanSchema(),
        'Ephemeral instances live as long as the gRPC connection (over HTTP: by heartbeats every 5 s; Nacos marks them unhealthy after 15 s, removes them after 30 s), so a process that dies leaves on its own. `false` (persistent, health-checked by the server) needs the HTTP transport.',
        { url: '`?ephemeral=`' },
      ),
      true,
    ),
    metadata: v.optional(
      doc(
        dictionary(v.string('expected a string'), 'expected an object of strings'),
        'Added to every instance this registry registers.',
        { type: 'Readonly<Record<string, string>>' },
      ),
      {},
    ),
    username: v.optional(
      doc(
        nonEmpty(),
        'When Nacos has auth on (Nacos 3.3 turns it on by default). lossless logs in over HTTP, sends the access token with every call (gRPC too), refreshes it at 80 % of its lifetime, and logs in again when a call is refused. Given together with `password`.',
        { url: '`user:`', default: 'none' },
      ),
    ),
    password: v.optional(
      doc(nonEmpty(), 'Goes with `username`; never logged or shown in errors.', {
        url: '`:password@`',
        default: 'none',
        secret: true,
      }),
    ),
    tls: v.optional(doc(booleanSchema(), 'https, and TLS on the gRPC connection.', { url: '`nacos+tls://`' }), false),
    requestTimeoutMs: v.optional(
      doc(
        ms(),
        'Timeout of one call to Nacos; over gRPC also how long a registration or update waits for a connection being made. 5000 ms: well above a healthy server, short enough to try the next one soon.',
        { url: '`?requestTimeoutMs=`' },
      ),
      5000,
    ),
    pollMs: v.optional(
      doc(
        ms(),
        "Subscribers re-read the instance list at least this often. Over HTTP the npm client's push is unreliable (see the quirks) and Nacos' own refresh is 10 s; over gRPC the server pushes every change and this poll is only a safety net for a push lost on the way.",
        { url: '`?pollMs=`', default: '`1000` over HTTP, `10000` over gRPC' },
      ),
    ),
    clientIp: v.optional(
      doc(
        v.pipe(
          v.string('expected an IP address'),
          v.check((ip) => isIP(ip) !== 0, 'expected an IP address'),
        ),
        "The client address reported to Nacos: over HTTP where Nacos pushes changes to (UDP, `clientIP`); over gRPC the connection's `clientIp`, informational. The npm client and Java report the host's first LAN address; lossless keeps a test on loopback from reporting one.",
        {
          url: '`?clientIp=`',
          default: "`127.0.0.1` when every server is on loopback, else the host's first LAN address",
        },
      ),
    ),
    logger: v.nullish(
      doc(logger(), 'A pino-compatible logger.', { type: 'Logger', default: 'warnings and errors to stderr' }),
    ),
  },
  'expected an object',
);

export type NacosRegistryOptions = v.InferInput<typeof nacosOptionsSchema>;

export interface ResolvedNacosOptions {
  readonly servers: readonly string[];
  readonly transport: NacosTransport;
  /** undefined: each server's HTTP port + 1000. */
  readonly grpcPort: number | undefined;
  readonly namespace: string;
  readonly group: string;
  readonly cluster: string;
  readonly ephemeral: boolean;
  readonly metadata: Readonly<Record<string, string>>;
  readonly username: string | undefined;
  readonly password: string | undefined;
  readonly tls: boolean;
  readonly requestTimeoutMs: number;
  readonly pollMs: number;
  readonly clientIp: string | undefined;
}

export function resolveNacosOptions(options: NacosRegistryOptions): ResolvedNacosOptions {
  const o = parseOptions(nacosOptionsSchema, options);

  // what one option's schema cannot say
  if ((o.username === undefined) !== (o.password === undefined))
    throw new InvalidOptionError(
      o.username === undefined ? 'username' : 'password',
      undefined,
      'expected username and password together',
    );
  // persistent instances are not tied to a connection: Nacos registers them through its HTTP API
  const transport = o.transport ?? (o.ephemeral ? 'grpc' : 'http');
  if (transport === 'grpc' && !o.ephemeral)
    throw new InvalidOptionError(
      'transport',
      transport,
      "expected 'http' with ephemeral: false (over gRPC, instances live as long as the connection)",
    );
  if (o.grpcPort === undefined && transport === 'grpc') {
    // Nacos listens for gRPC on the HTTP port + 1000: an HTTP port above 64535 leaves none
    o.servers.forEach((s, i) => {
      if (portOf(s) + GRPC_PORT_OFFSET > 65_535)
        throw new InvalidOptionError(
          `servers[${i}]`,
          s,
          `expected an HTTP port up to ${65_535 - GRPC_PORT_OFFSET}, or grpcPort set`,
        );
    });
  }

  return {
    servers: o.servers,
    transport,
    grpcPort: o.grpcPort,
    namespace: o.namespace,
    group: o.group,
    cluster: o.cluster,
    ephemeral: o.ephemeral,
    metadata: o.metadata,
    username: o.username,
    password: o.password,
    tls: o.tls,
    requestTimeoutMs: o.requestTimeoutMs,
    // over gRPC changes are pushed: the poll only covers a push lost on the way
    pollMs: o.pollMs ?? (transport === 'grpc' ? 10_000 : 1000),
    // nothing of a registry whose servers are all on loopback leaves the machine
    clientIp: o.clientIp ?? (o.servers.every(isLoopbackServer) ? '127.0.0.1' : undefined),
  };
}

// ------------------------------------------------------------------------------------------------
// nacos:// URLs

const ENTRIES = inspect(nacosOptionsSchema).entries as Readonly<Record<string, v.GenericSchema>>;

/** The options a URL gives as `?name=value`: those whose docs say so (the table and the parser agree). */
const URL_PARAMETERS = Object.keys(ENTRIES).filter((key) => inspect(ENTRIES[key]).meta.url === `\`?${key}=\``);

const URL_SHAPE = 'expected nacos://[user:pass@]host:port[,host:port]/?namespace=...';

/** Parses `nacos://[user:pass@]host[:port][,host[:port]...][/][?namespace=&group=&cluster=&...]`. */
export function parseNacosUrl(url: string): NacosRegistryOptions {
  const m = /^nacos(\+tls)?:\/\/(?:([^:@/]*)(?::([^/]*))?@)?([^/?#@]+)\/?(?:\?([^#]*))?$/i.exec(url);
  if (m === null) throw new InvalidRegistryUrlError(url, URL_SHAPE);
  const [, tls, user, pass, hosts, query] = m;
  const parameters: Record<string, unknown> = {};
  for (const [key, raw] of new URLSearchParams(query ?? '')) {
    if (!URL_PARAMETERS.includes(key)) throw new InvalidRegistryUrlError(url, unknownParameter(key));
    if (Object.hasOwn(parameters, key))
      throw new InvalidRegistryUrlError(url, `parameter "${key}" given twice (expected it once)`);
    parameters[key] = parameterValue(url, key, raw);
  }
  if (user === '' && pass !== undefined && pass !== '')
    throw new InvalidRegistryUrlError(url, 'a password without a user name (expected nacos://user:pass@...)');
  let username: string | undefined;
  let password: string | undefined;
  try {
    username = user ? decodeURIComponent(user) : undefined;
    password = pass !== undefined ? decodeURIComponent(pass) : undefined;
  } catch {
    throw new InvalidRegistryUrlError(url, 'the credentials are not correctly percent-encoded');
  }
  return {
    servers: (hosts as string).split(','),
    ...(parameters as Partial<NacosRegistryOptions>),
    ...(username !== undefined ? { username, password: password ?? '' } : {}),
    ...(tls ? { tls: true } : {}),
  };
}

/** Why a URL parameter is refused: the parameter meant, or where the URL carries the option. */
function unknownParameter(key: string): string {
  const option = Object.hasOwn(ENTRIES, key) ? inspect(ENTRIES[key]).meta.url : undefined;
  if (option !== undefined) return `"${key}" is not a URL parameter: the URL gives it as ${option.replace(/`/g, '')}`;
  if (Object.hasOwn(ENTRIES, key)) return `"${key}" is not a URL parameter: set it on the options object`;
  const suggestion = closest(key, URL_PARAMETERS);
  return `unknown parameter "${key}" (${
    suggestion === undefined ? `expected one of ${URL_PARAMETERS.join(', ')}` : `did you mean "${suggestion}"?`
  })`;
}

/** The text of a URL parameter as its option's type, checked by the option's schema. */
function parameterValue(url: string, key: string, raw: string): unknown {
  const type = inspect(ENTRIES[key]).schema.type;
  // numbers as decimals only: `1e3`, `0x10` and `` (which Number() takes as 0) are typos in a URL
  const value =
    type === 'number'
      ? /^\d+(\.\d+)?$/.test(raw)
        ? Number(raw)
        : raw
      : type === 'boolean'
        ? raw === 'true'
          ? true
          : raw === 'false'
            ? false
            : raw
        : raw;
  const checked = v.safeParse(ENTRIES[key] as v.GenericSchema, value);
  if (!checked.success) {
    const message = (checked.issues[0] as v.BaseIssue<unknown>).message;
    throw new InvalidRegistryUrlError(url, `${key}=${raw}: ${type === 'boolean' ? 'expected true or false' : message}`);
  }
  return checked.output;
}

// ------------------------------------------------------------------------------------------------

/** Nacos' gRPC port is its HTTP port + 1000. */
export const GRPC_PORT_OFFSET = 1000;

/** The gRPC address of a server (`host:port` as normalized above). */
export function grpcAddress(server: string, options: Pick<ResolvedNacosOptions, 'grpcPort'>): string {
  const port = options.grpcPort ?? portOf(server) + GRPC_PORT_OFFSET;
  return `${server.replace(/:\d+$/, '')}:${port}`;
}

function portOf(server: string): number {
  return Number(/:(\d+)$/.exec(server)?.[1]);
}

function isLoopbackServer(server: string): boolean {
  const host = server.replace(/:\d+$/, '');
  // 127.example.com is a name, not a loopback address
  return host === 'localhost' || host === '[::1]' || (isIP(host) === 4 && host.startsWith('127.'));
}
