// One call to a provider's admin server, bounded in time, sorted into the three outcomes the commands
// report differently: an answer (any status), a timeout, or a server that could not be reached.

import type { CliContext } from './context.js';

export type AdminAnswer =
  | { readonly kind: 'answer'; readonly status: number; readonly text: string; readonly json: unknown }
  | { readonly kind: 'timeout'; readonly afterS: number }
  | { readonly kind: 'unreachable'; readonly reason: string };

export async function callAdmin(
  context: CliContext,
  url: URL,
  init: { readonly method: 'GET' | 'POST'; readonly token?: string | undefined },
  timeoutS: number,
): Promise<AdminAnswer> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutS * 1000);
  const startedAt = performance.now();
  const headers: Record<string, string> = { accept: 'application/json' };
  if (init.token !== undefined) headers.authorization = `Bearer ${init.token}`;
  try {
    // a redirect is reported, never followed: a redirected POST would turn into a GET
    const response = await context.fetch(url, {
      method: init.method,
      headers,
      redirect: 'manual',
      signal: controller.signal,
    });
    const text = await response.text();
    return { kind: 'answer', status: response.status, text, json: parseJson(text) };
  } catch (error) {
    if (controller.signal.aborted) return { kind: 'timeout', afterS: timeoutS };
    // Node's fetch gives up on its own after 300 s without headers (or between body chunks)
    const code = codeOf(causeOf(error));
    if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT')
      return { kind: 'timeout', afterS: Math.round((performance.now() - startedAt) / 1000) };
    return { kind: 'unreachable', reason: reasonOf(error) };
  } finally {
    clearTimeout(timer);
  }
}

/** "HTTP 401 LOSSLESS_ERR_ADMIN_UNAUTHORIZED": the status and the code of a lossless error body, if any. */
export function describeRefusal(answer: { readonly status: number; readonly json: unknown }): string {
  const code = field(answer.json, 'error');
  return `HTTP ${answer.status}${typeof code === 'string' && code.length > 0 ? ` ${code}` : ''}`;
}

export function field(value: unknown, key: string): unknown {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : undefined;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** fetch reports every network failure as TypeError('fetch failed') with the system error as its cause. */
function causeOf(error: unknown): unknown {
  let current = error;
  while (current instanceof Error && current.cause !== undefined && current.message === 'fetch failed')
    current = current.cause;
  return current;
}

function codeOf(error: unknown): string | undefined {
  const code = field(error, 'code');
  return typeof code === 'string' ? code : undefined;
}

/** "connect ECONNREFUSED 127.0.0.1:9797", "getaddrinfo ENOTFOUND admin.invalid", ... */
function reasonOf(error: unknown): string {
  let cause = causeOf(error);
  // a host name with several addresses fails with one error per address
  if (cause instanceof AggregateError && cause.message === '' && cause.errors[0] !== undefined) cause = cause.errors[0];
  if (cause instanceof Error) return cause.message || codeOf(cause) || cause.name;
  return String(cause);
}
