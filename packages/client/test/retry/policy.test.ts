import { describe, expect, it } from 'vitest';
import { isRetryable, neverProcessed } from '../../src/retry/policy.js';

// What undici 8 hands over when an HTTP/2 stream fails (lib/dispatcher/client-h2.js): a reset stream
// is Node's ERR_HTTP2_STREAM_ERROR with the RST_STREAM code as http2ErrorCode; a request left out by a
// GOAWAY, once undici's own replay is spent, an InformationalError.
const refused = {
  code: 'ERR_HTTP2_STREAM_ERROR',
  http2ErrorCode: 7,
  message: 'Stream closed with error code NGHTTP2_REFUSED_STREAM',
};
const internal = {
  code: 'ERR_HTTP2_STREAM_ERROR',
  http2ErrorCode: 2,
  message: 'Stream closed with error code NGHTTP2_INTERNAL_ERROR',
};
const goaway = { code: 'UND_ERR_INFO', message: 'HTTP/2: "GOAWAY" frame received with code 0' };
const halfClosed = { code: 'UND_ERR_INFO', message: 'HTTP/2: stream half-closed (remote)' };
const headersNotSent = { code: 'UND_ERR_INFO', message: 'HTTP/2: "frameError" received - type 1, code -529' };

describe('retry policy over HTTP/2', () => {
  it.each([
    ['REFUSED_STREAM', refused, 'POST', true],
    ['REFUSED_STREAM', refused, 'GET', true],
    ['left out by a GOAWAY', goaway, 'POST', true],
    ['HEADERS that could not be sent', headersNotSent, 'POST', true],
    ['another reset (INTERNAL_ERROR)', internal, 'GET', true],
    ['another reset (INTERNAL_ERROR)', internal, 'PUT', true],
    ['another reset (INTERNAL_ERROR)', internal, 'POST', false],
    ['a stream the server ended without an answer', halfClosed, 'GET', false],
  ])('%s, %s after it was sent: retried %s', (_what, error, method, expected) => {
    expect(isRetryable({ method, hasIdempotencyKey: false, phase: 'sent', error })).toBe(expected);
  });

  it('counts refused and GOAWAY-left-out streams as never processed (no retry budget spent), nothing else', () => {
    expect(neverProcessed(refused)).toBe(true);
    expect(neverProcessed(goaway)).toBe(true);
    expect(neverProcessed(headersNotSent)).toBe(true);
    expect(neverProcessed(internal)).toBe(false);
    expect(neverProcessed(halfClosed)).toBe(false);
    expect(neverProcessed({ code: 'ECONNRESET' })).toBe(false);
  });
});
