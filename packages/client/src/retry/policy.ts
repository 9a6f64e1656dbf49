// What may be retried, and how much retrying the client allows overall.
//   - never reached the instance (refused, reset before the request was written, circuit open; over
//     HTTP/2 a stream reset with REFUSED_STREAM or above a GOAWAY's last stream id, which the server
//     never processed): any method, on another instance;
//   - sent: only idempotent methods (GET, HEAD, OPTIONS, PUT, DELETE) or requests with an
//     idempotency key;
//   - 503 with the offline marker: the draining instance did not handle it: on another instance;
//   - anything else (500, 4xx, a timeout): not retried.
// A request body that cannot be replayed (a stream) is never retried.

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);
const NOT_REACHED = new Set([
  'ECONNREFUSED',
  'LOSSLESS_ERR_CIRCUIT_OPEN',
  'UND_ERR_CONNECT_TIMEOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);
// ERR_HTTP2_STREAM_ERROR: an HTTP/2 stream reset with another code than REFUSED_STREAM
const RESET = new Set(['ECONNRESET', 'UND_ERR_SOCKET', 'EPIPE', 'UND_ERR_CLOSED', 'ERR_HTTP2_STREAM_ERROR']);
/** RST_STREAM's REFUSED_STREAM (RFC 9113 §8.7): the stream was not processed. */
const NGHTTP2_REFUSED_STREAM = 7;

export type Phase = 'not-sent' | 'sent';

export interface RetryInput {
  readonly method: string;
  readonly hasIdempotencyKey: boolean;
  readonly phase: Phase;
  readonly error?: { readonly code?: string; readonly message?: string; readonly http2ErrorCode?: number } | undefined;
  readonly status?: number | undefined;
  readonly marked?: boolean | undefined;
}

/** True when the failed attempt may be retried on another instance. */
export function isRetryable(input: RetryInput): boolean {
  if (input.status !== undefined) return input.status === 503 && input.marked === true;
  const code = input.error?.code;
  if (code === undefined) return false;
  if (NOT_REACHED.has(code) || neverProcessed(input.error)) return true;
  if (!RESET.has(code)) return false;
  if (input.phase === 'not-sent') return true;
  return IDEMPOTENT.has(input.method.toUpperCase()) || input.hasIdempotencyKey;
}

/**
 * An HTTP/2 stream the server never processed: refused, left out by a GOAWAY, or whose HEADERS could
 * not be sent (the session was going away). undici replays these once by itself; what reaches the
 * client is what was left when that replay was spent.
 */
export function neverProcessed(error: RetryInput['error']): boolean {
  if (error?.http2ErrorCode === NGHTTP2_REFUSED_STREAM) return true;
  if (error?.code !== 'UND_ERR_INFO' || error.message === undefined) return false;
  return error.message.includes('"GOAWAY" frame received') || error.message.includes('"frameError" received - type 1,');
}

/** True when the body can be sent again as it is. */
export function isReplayable(body: unknown): boolean {
  return (
    body === undefined ||
    body === null ||
    typeof body === 'string' ||
    body instanceof Uint8Array ||
    body instanceof ArrayBuffer ||
    (typeof URLSearchParams !== 'undefined' && body instanceof URLSearchParams)
  );
}

/**
 * Retries are capped at a share of all requests (Envoy's and gRPC's retry budget): every request
 * adds `ratio` of a token, up to `burst`; a retry spends one. A storm of failures cannot multiply load.
 */
export class RetryBudget {
  #tokens: number;
  readonly #ratio: number;
  readonly #burst: number;

  constructor(ratio: number, burst: number) {
    this.#ratio = ratio;
    this.#burst = burst;
    this.#tokens = burst;
  }

  onRequest(): void {
    this.#tokens = Math.min(this.#burst, this.#tokens + this.#ratio);
  }

  tryAcquire(): boolean {
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  get tokens(): number {
    return this.#tokens;
  }
}
