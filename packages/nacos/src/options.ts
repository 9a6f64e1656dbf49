// Nacos registry options, from an object or a URL:
//   nacos://user:pass@127.0.0.1:8848,127.0.0.1:8858/?namespace=public&group=DEFAULT_GROUP&cluster=DEFAULT&transport=grpc

import { isIP } from 'node:net';
import { InvalidOptionError, InvalidRegistryUrlError, type Logger } from '@lossless/core';

export type NacosTransport = 'grpc' | 'http';

export interface NacosRegistryOptions {
  /** Nacos servers as `host:port` (port 8848 when omitted): the HTTP port, as Nacos clients are given it. */
  readonly servers: string | readonly string[];
  /**
   * `grpc`: the Nacos 2.x/3.x gRPC API, as Java clients speak it (ephemeral instances live as long as the
   * connection, changes are pushed). `http`: the v1 HTTP OpenAPI and heartbeats (Nacos 1.x, or a closed
   * gRPC port). Default `grpc`, or `http` for persistent instances (`ephemeral: false`).
   */
  readonly transport?: NacosTransport;
  /** gRPC port of every server. Default: each server's HTTP port + 1000, where Nacos listens. */
  readonly grpcPort?: number;
  /** Default `public`. */
  readonly namespace?: string;
  /** Default `DEFAULT_GROUP`. */
  readonly group?: string;
  /** Cluster the instance registers in. Default `DEFAULT`. */
  readonly cluster?: string;
  /** Ephemeral instances live by heartbeats (default); persistent ones by server-side health checks. Default true. */
  readonly ephemeral?: boolean;
  /** Metadata added to every instance this registry registers. */
  readonly metadata?: Readonly<Record<string, string>>;
  /** Credentials, when Nacos has auth on. The access token is obtained and refreshed by lossless. */
  readonly username?: string;
  readonly password?: string;
  /** Use https. Default false. */
  readonly tls?: boolean;
  /** Timeout of one HTTP request to Nacos, in ms. Default 5000. */
  readonly requestTimeoutMs?: number;
  /**
   * Subscribers re-read the instance list at least this often, in ms. Default 1000 over HTTP (Nacos' own
   * poll is 10 s); 10000 over gRPC, where changes are pushed and the poll is only a safety net.
   */
  readonly pollMs?: number;
  /**
   * The client address reported to Nacos: over HTTP where it pushes instance changes to (UDP, `clientIP`);
   * over gRPC the connection's `clientIp`, informational. The npm client and Java report the host's first
   * LAN address; lossless reports 127.0.0.1 when every server is on loopback, else that LAN address unless
   * this is set.
   */
  readonly clientIp?: string;
  readonly logger?: Logger;
}

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

const NAME = /^[A-Za-z0-9_.:-]{1,128}$/;
/** A DNS name or an IPv4 address, as core checks hosts. */
const HOST_NAME =
  /^(?=.{1,253}$)[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;

export function resolveNacosOptions(options: NacosRegistryOptions): ResolvedNacosOptions {
  if (typeof options !== 'object' || options === null)
    throw new InvalidOptionError('options', options, 'expected an object');
  const list = typeof options.servers === 'string' ? options.servers.split(',') : options.servers;
  if (!Array.isArray(list) || list.length === 0)
    throw new InvalidOptionError('servers', options.servers, 'expected at least one host:port');
  // Array.from, not map: a hole in the list is a missing server, not one to skip
  const servers = Array.from(list, (s, i) => normalizeServer(s, `servers[${i}]`));
  const name = (key: 'namespace' | 'group' | 'cluster', fallback: string): string => {
    const value = options[key] ?? fallback;
    if (typeof value !== 'string' || !NAME.test(value))
      throw new InvalidOptionError(key, value, 'expected 1-128 letters, digits or _.:-');
    return value;
  };
  const metadata = options.metadata ?? {};
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata))
    throw new InvalidOptionError('metadata', metadata, 'expected an object of strings');
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') throw new InvalidOptionError(`metadata.${k}`, v, 'expected a string');
  }
  if ((options.username === undefined) !== (options.password === undefined))
    throw new InvalidOptionError(
      options.username === undefined ? 'username' : 'password',
      undefined,
      'expected username and password together',
    );
  for (const key of ['username', 'password'] as const) {
    const v = options[key];
    if (v !== undefined && (typeof v !== 'string' || v.length === 0))
      throw new InvalidOptionError(key, key === 'password' ? '***' : v, 'expected a non-empty string');
  }
  const ms = (key: 'requestTimeoutMs' | 'pollMs', fallback: number): number => {
    const v = options[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > 3_600_000)
      throw new InvalidOptionError(key, v, 'expected a number of milliseconds > 0 and at most 3600000');
    return v;
  };
  if (options.ephemeral !== undefined && typeof options.ephemeral !== 'boolean')
    throw new InvalidOptionError('ephemeral', options.ephemeral, 'expected a boolean');
  const ephemeral = options.ephemeral ?? true;
  if (options.transport !== undefined && options.transport !== 'grpc' && options.transport !== 'http')
    throw new InvalidOptionError('transport', options.transport, "expected 'grpc' or 'http'");
  // persistent instances are not tied to a connection: Nacos registers them through its HTTP API
  const transport = options.transport ?? (ephemeral ? 'grpc' : 'http');
  if (transport === 'grpc' && !ephemeral)
    throw new InvalidOptionError(
      'transport',
      transport,
      "expected 'http' with ephemeral: false (over gRPC, instances live as long as the connection)",
    );
  const grpcPort = options.grpcPort;
  if (
    grpcPort !== undefined &&
    (typeof grpcPort !== 'number' || !Number.isInteger(grpcPort) || grpcPort < 1 || grpcPort > 65535)
  )
    throw new InvalidOptionError('grpcPort', grpcPort, 'expected a port in 1..65535');
  if (grpcPort === undefined && transport === 'grpc') {
    // Nacos listens for gRPC on the HTTP port + 1000: an HTTP port above 64535 leaves none
    servers.forEach((s, i) => {
      if (portOf(s) + GRPC_PORT_OFFSET > 65535)
        throw new InvalidOptionError(
          `servers[${i}]`,
          s,
          `expected an HTTP port up to ${65535 - GRPC_PORT_OFFSET}, or grpcPort set`,
        );
    });
  }
  const clientIp = options.clientIp ?? (servers.every(isLoopbackServer) ? '127.0.0.1' : undefined);
  if (clientIp !== undefined && (typeof clientIp !== 'string' || isIP(clientIp) === 0))
    throw new InvalidOptionError('clientIp', clientIp, 'expected an IP address');
  if (options.tls !== undefined && typeof options.tls !== 'boolean')
    throw new InvalidOptionError('tls', options.tls, 'expected a boolean');
  const logger = options.logger as unknown as Record<string, unknown> | undefined;
  if (
    logger !== undefined &&
    logger !== null &&
    !['debug', 'info', 'warn', 'error'].every((level) => typeof logger[level] === 'function')
  )
    throw new InvalidOptionError('logger', logger, 'expected a pino-compatible logger (debug, info, warn, error)');
  return {
    servers,
    transport,
    grpcPort,
    namespace: name('namespace', 'public'),
    group: name('group', 'DEFAULT_GROUP'),
    cluster: name('cluster', 'DEFAULT'),
    ephemeral,
    metadata: { ...metadata },
    username: options.username,
    password: options.password,
    tls: options.tls ?? false,
    requestTimeoutMs: ms('requestTimeoutMs', 5000),
    // over gRPC changes are pushed: the poll only covers a push lost on the way
    pollMs: ms('pollMs', transport === 'grpc' ? 10_000 : 1000),
    clientIp,
  };
}

/** Parses `nacos://[user:pass@]host[:port][,host[:port]...][/][?namespace=&group=&cluster=&...]`. */
export function parseNacosUrl(url: string): NacosRegistryOptions {
  const m = /^nacos(\+tls)?:\/\/(?:([^:@/]*)(?::([^/]*))?@)?([^/?#@]+)\/?(?:\?([^#]*))?$/i.exec(url);
  if (m === null)
    throw new InvalidRegistryUrlError(url, 'expected nacos://[user:pass@]host:port[,host:port]/?namespace=...');
  const [, tls, user, pass, hosts, query] = m;
  const params = new URLSearchParams(query ?? '');
  const known = [
    'namespace',
    'group',
    'cluster',
    'ephemeral',
    'clientIp',
    'pollMs',
    'requestTimeoutMs',
    'transport',
    'grpcPort',
  ];
  for (const key of params.keys()) {
    if (!known.includes(key))
      throw new InvalidRegistryUrlError(url, `unknown parameter "${key}" (expected ${known.join(', ')})`);
  }
  const num = (key: string): number | undefined => {
    const raw = params.get(key);
    if (raw === null) return undefined;
    const value = Number(raw);
    if (!Number.isFinite(value) || value <= 0)
      throw new InvalidRegistryUrlError(url, `${key}=${raw} is not a positive number`);
    return value;
  };
  const ephemeral = params.get('ephemeral');
  if (ephemeral !== null && ephemeral !== 'true' && ephemeral !== 'false')
    throw new InvalidRegistryUrlError(url, `ephemeral=${ephemeral} is not true or false`);
  const transport = params.get('transport');
  if (transport !== null && transport !== 'grpc' && transport !== 'http')
    throw new InvalidRegistryUrlError(url, `transport=${transport} is not grpc or http`);
  const grpcPort = params.get('grpcPort');
  if (grpcPort !== null && !/^\d{1,5}$/.test(grpcPort))
    throw new InvalidRegistryUrlError(url, `grpcPort=${grpcPort} is not a port`);
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
    ...(params.has('namespace') ? { namespace: params.get('namespace') as string } : {}),
    ...(params.has('group') ? { group: params.get('group') as string } : {}),
    ...(params.has('cluster') ? { cluster: params.get('cluster') as string } : {}),
    ...(ephemeral !== null ? { ephemeral: ephemeral === 'true' } : {}),
    ...(transport !== null ? { transport } : {}),
    ...(grpcPort !== null ? { grpcPort: Number(grpcPort) } : {}),
    ...(params.has('clientIp') ? { clientIp: params.get('clientIp') as string } : {}),
    ...(num('pollMs') !== undefined ? { pollMs: num('pollMs') } : {}),
    ...(num('requestTimeoutMs') !== undefined ? { requestTimeoutMs: num('requestTimeoutMs') } : {}),
    ...(username !== undefined ? { username, password: password ?? '' } : {}),
    ...(tls ? { tls: true } : {}),
  };
}

function normalizeServer(value: unknown, label: string): string {
  if (typeof value !== 'string') throw new InvalidOptionError(label, value, 'expected host:port');
  const s = value.trim();
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?$/.exec(s);
  if (m === null) throw new InvalidOptionError(label, value, 'expected host:port');
  const host = m[1] as string;
  if (host.startsWith('[') ? isIP(host.slice(1, -1)) !== 6 : !HOST_NAME.test(host))
    throw new InvalidOptionError(label, value, 'expected host:port with an IP address or host name');
  const port = m[2] === undefined ? 8848 : Number(m[2]);
  if (port < 1 || port > 65535) throw new InvalidOptionError(label, value, 'expected a port in 1..65535');
  return `${m[1]}:${port}`;
}

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
