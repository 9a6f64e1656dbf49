// Option handling shared by the commands: node:util parseArgs in strict mode with its errors turned
// into usage errors, and the admin URL, token and timeout with their environment defaults.

import { UsageError } from './errors.js';

/** The admin server a provider opens by default (core's DEFAULT_ADMIN_PORT). */
const DEFAULT_ADMIN_PORT = 9797;

/** Runs a parseArgs call; its errors (unknown option, missing value, stray argument) become usage errors. */
export function parsing<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) {
      // parseArgs names the bad input in its first sentence: "Unknown option '--foo'. To specify..."
      const first = String((error as Error).message).split(/\.\s/)[0] ?? '';
      throw new UsageError(first.charAt(0).toLowerCase() + first.slice(1));
    }
    throw error;
  }
}

/**
 * The admin server's base URL: `--admin`, else LOSSLESS_ADMIN_URL, else loopback on
 * LOSSLESS_ADMIN_PORT (the variable that moves the provider's admin server), else port 9797.
 */
export function adminBase(given: string | undefined, env: Readonly<Record<string, string | undefined>>): URL {
  const text = given ?? nonEmpty(env.LOSSLESS_ADMIN_URL);
  if (text === undefined) {
    const port = Number(nonEmpty(env.LOSSLESS_ADMIN_PORT) ?? Number.NaN);
    const usable = Number.isInteger(port) && port >= 1 && port <= 65_535;
    return new URL(`http://127.0.0.1:${usable ? port : DEFAULT_ADMIN_PORT}`);
  }
  const from = given === undefined ? 'LOSSLESS_ADMIN_URL' : '--admin';
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`${from} expects an http:// or https:// URL, got '${text}'`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new UsageError(`${from} expects an http:// or https:// URL, got '${text}'`);
  return url;
}

/** `base` with `path` appended to its path (a base may carry a prefix, e.g. behind a proxy). */
export function endpoint(base: URL, path: string): URL {
  const url = new URL(base.href);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}${path}`;
  url.search = '';
  url.hash = '';
  return url;
}

/** A number of seconds above 0, as given to `name`, or the default. */
export function seconds(name: string, given: string | undefined, fallback: number): number {
  if (given === undefined) return fallback;
  const value = Number(given);
  if (given.trim() === '' || !Number.isFinite(value) || value <= 0)
    throw new UsageError(`${name} expects a number of seconds above 0, got '${given}'`);
  return value;
}

export function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.length === 0 ? undefined : value;
}
