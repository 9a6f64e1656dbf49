// Chooses a registry from a URL: `file:///shared/dir`, `static://10.0.0.1:8080,10.0.0.2:8080`.
// Other schemes (`nacos://`) come from their own packages through `schemes`, so that core never
// depends on a registry client.

import { isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidOptionError, InvalidRegistryUrlError } from '../errors.js';
import type { Logger } from '../logger.js';
import { FileRegistry } from './file.js';
import { type StaticAddress, StaticRegistry } from './static.js';
import type { Registry } from './types.js';
import { isHost } from './validate.js';

export type RegistryFactory = (url: string, context: { readonly logger?: Logger }) => Registry;

export interface RegistryFromUrlOptions {
  readonly logger?: Logger;
  /** Factories for further schemes, keyed by scheme without the colon, e.g. `{ nacos: createNacosRegistry }`. */
  readonly schemes?: Readonly<Record<string, RegistryFactory>>;
  /** Where the URL came from when it was not given in code (`LOSSLESS_REGISTRY`): named in errors. */
  readonly source?: string;
}

const REGISTRY_METHODS = ['register', 'deregister', 'list', 'subscribe', 'close', 'setEnabled', 'setWeight'];

export function registryFromUrl(url: string, options: RegistryFromUrlOptions = {}): Registry {
  if (options.source === undefined) return fromUrl(url, options);
  try {
    return fromUrl(url, options);
  } catch (error) {
    if (error instanceof InvalidRegistryUrlError)
      throw new InvalidRegistryUrlError(url, `${error.reason} (the URL is the value of ${options.source})`);
    throw error;
  }
}

function fromUrl(url: string, options: RegistryFromUrlOptions): Registry {
  if (typeof url !== 'string' || url.length === 0)
    throw new InvalidRegistryUrlError(typeof url === 'string' ? url : `(${typeof url})`, 'expected a URL');
  const match = /^([a-z][a-z0-9+.-]*):/i.exec(url);
  if (match === null) throw new InvalidRegistryUrlError(url, 'no scheme (expected file://, static:// or nacos://)');
  const scheme = (match[1] as string).toLowerCase();
  const schemes = options.schemes ?? {};
  if (typeof schemes !== 'object') throw new InvalidOptionError('schemes', schemes, 'expected an object of factories');
  // own keys only: `constructor://` must not find Object
  const custom = Object.hasOwn(schemes, scheme) ? schemes[scheme] : undefined;
  if (custom !== undefined && typeof custom !== 'function')
    throw new InvalidOptionError(`schemes.${scheme}`, custom, 'expected a registry factory function');
  if (custom !== undefined) {
    const registry = custom(url, { logger: options.logger });
    if (!REGISTRY_METHODS.every((k) => typeof (registry as unknown as Record<string, unknown>)?.[k] === 'function'))
      throw new InvalidOptionError(`schemes.${scheme}`, custom, 'expected a factory that returns a Registry');
    return registry;
  }
  switch (scheme) {
    case 'file':
      return asUrlError(url, () => fileRegistryFromUrl(url, options.logger));
    case 'static':
      return asUrlError(url, () => new StaticRegistry(parseStaticAddresses(url)));
    case 'nacos':
      throw new InvalidRegistryUrlError(
        url,
        "nacos:// needs a factory: install @lossless/nacos and pass `registrySchemes: { nacos: createNacosRegistry }` (import { createNacosRegistry } from '@lossless/nacos'), or pass the registry object as `registry`",
      );
    default:
      throw new InvalidRegistryUrlError(
        url,
        `unknown scheme "${scheme}:" (expected file: or static:, or a factory for it in \`registrySchemes: { ${JSON.stringify(scheme)}: factory }\`)`,
      );
  }
}

/** Options rejected while building a registry from a URL are reported as a bad URL. */
function asUrlError<T>(url: string, build: () => T): T {
  try {
    return build();
  } catch (error) {
    if (error instanceof InvalidOptionError) throw new InvalidRegistryUrlError(url, error.message);
    throw error;
  }
}

function fileRegistryFromUrl(url: string, logger: Logger | undefined): FileRegistry {
  let parsed: URL;
  let dir: string;
  try {
    parsed = new URL(url);
    dir = fileURLToPath(parsed);
  } catch (error) {
    throw new InvalidRegistryUrlError(url, `not a file URL with an absolute path (${(error as Error).message})`);
  }
  if (!isAbsolute(dir)) throw new InvalidRegistryUrlError(url, 'the path must be absolute');
  if (dir.includes('\0')) throw new InvalidRegistryUrlError(url, 'the path contains a NUL byte (%00)');
  const num = (key: string): number | undefined => {
    const raw = parsed.searchParams.get(key);
    if (raw === null) return undefined;
    const value = Number(raw);
    if (!Number.isFinite(value) || value <= 0)
      throw new InvalidRegistryUrlError(url, `${key}=${raw} is not a positive number of milliseconds`);
    return value;
  };
  for (const key of parsed.searchParams.keys()) {
    if (!['heartbeatMs', 'staleMs', 'pollMs'].includes(key))
      throw new InvalidRegistryUrlError(url, `unknown parameter "${key}" (expected heartbeatMs, staleMs, pollMs)`);
  }
  return new FileRegistry({
    dir,
    heartbeatMs: num('heartbeatMs'),
    staleMs: num('staleMs'),
    pollMs: num('pollMs'),
    logger,
  });
}

/** `static://host:port,host:port`; IPv6 hosts in brackets: `static://[::1]:8080`. */
export function parseStaticAddresses(url: string): StaticAddress[] {
  const rest = url.replace(/^static:\/\//i, '').replace(/\/+$/, '');
  if (rest.length === 0) throw new InvalidRegistryUrlError(url, 'expected at least one host:port');
  if (rest.includes('@')) throw new InvalidRegistryUrlError(url, 'static:// takes no credentials');
  return rest.split(',').map((part) => {
    const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(part.trim());
    if (m === null) throw new InvalidRegistryUrlError(url, `"${part}" is not host:port`);
    const port = Number(m[3]);
    if (port < 1 || port > 65535) throw new InvalidRegistryUrlError(url, `port ${port} is not in 1..65535`);
    const host = (m[1] ?? m[2]) as string;
    if (!isHost(host)) throw new InvalidRegistryUrlError(url, `"${host}" is not an IP address or host name`);
    return { host, port };
  });
}
