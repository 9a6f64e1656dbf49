// Nacos registry options, from an object or a URL:
//   nacos://user:pass@127.0.0.1:8848,127.0.0.1:8858/?namespace=public&group=DEFAULT_GROUP&cluster=DEFAULT

import { isIP } from 'node:net';
import { InvalidOptionError, InvalidRegistryUrlError, type Logger } from '@lossless/core';

export interface NacosRegistryOptions {
  /** Nacos servers as `host:port` (port 8848 when omitted). */
  readonly servers: string | readonly string[];
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
  /** Subscribers re-read the instance list at least this often, in ms (Nacos' own poll is 10 s). Default 1000. */
  readonly pollMs?: number;
  /**
   * The address Nacos is told to push instance changes to (UDP, `clientIP`). The npm client reports the
   * host's first LAN address; lossless reports 127.0.0.1 when every server is on loopback, else leaves
   * the client's choice unless this is set.
   */
  readonly clientIp?: string;
  readonly logger?: Logger;
}

export interface ResolvedNacosOptions {
  readonly servers: readonly string[];
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
  const clientIp = options.clientIp ?? (servers.every(isLoopbackServer) ? '127.0.0.1' : undefined);
  if (clientIp !== undefined && (typeof clientIp !== 'string' || isIP(clientIp) === 0))
    throw new InvalidOptionError('clientIp', clientIp, 'expected an IP address');
  if (options.ephemeral !== undefined && typeof options.ephemeral !== 'boolean')
    throw new InvalidOptionError('ephemeral', options.ephemeral, 'expected a boolean');
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
    namespace: name('namespace', 'public'),
    group: name('group', 'DEFAULT_GROUP'),
    cluster: name('cluster', 'DEFAULT'),
    ephemeral: options.ephemeral ?? true,
    metadata: { ...metadata },
    username: options.username,
    password: options.password,
    tls: options.tls ?? false,
    requestTimeoutMs: ms('requestTimeoutMs', 5000),
    pollMs: ms('pollMs', 1000),
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
  const known = ['namespace', 'group', 'cluster', 'ephemeral', 'clientIp', 'pollMs', 'requestTimeoutMs'];
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

function isLoopbackServer(server: string): boolean {
  const host = server.replace(/:\d+$/, '');
  // 127.example.com is a name, not a loopback address
  return host === 'localhost' || host === '[::1]' || (isIP(host) === 4 && host.startsWith('127.'));
}
