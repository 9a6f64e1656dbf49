import { describe, expect, it } from 'vitest';
import { decodePayload, encodePayload } from '../../src/grpc/payload.js';

/** The fields of a protobuf message, read by hand: field number -> values (strings for LEN fields). */
function fields(bytes: Uint8Array): Map<number, Uint8Array[]> {
  const out = new Map<number, Uint8Array[]>();
  let i = 0;
  const varint = (): number => {
    let value = 0;
    let shift = 0;
    for (;;) {
      const b = bytes[i++] as number;
      value += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return value;
      shift += 7;
    }
  };
  while (i < bytes.length) {
    const tag = varint();
    expect(tag & 7, 'only length-delimited fields').toBe(2);
    const length = varint();
    const value = bytes.subarray(i, i + length);
    i += length;
    out.set(tag >>> 3, [...(out.get(tag >>> 3) ?? []), value]);
  }
  return out;
}

const text = (b: Uint8Array | undefined): string => Buffer.from(b ?? new Uint8Array()).toString('utf8');

describe('Nacos Payload', () => {
  it('has the field numbers of nacos_grpc_service.proto (metadata 2, body 3; type 3, headers 7, clientIp 8)', () => {
    const bytes = encodePayload({
      type: 'InstanceRequest',
      body: { serviceName: 'orders' },
      headers: { accessToken: 'token-1' },
      clientIp: '127.0.0.1',
    });
    const payload = fields(bytes);
    const metadata = fields(payload.get(2)?.[0] as Uint8Array);
    expect(text(metadata.get(3)?.[0])).toBe('InstanceRequest');
    expect(text(metadata.get(8)?.[0])).toBe('127.0.0.1');
    // map<string, string> is a repeated entry { key = 1; value = 2 }
    const header = fields(metadata.get(7)?.[0] as Uint8Array);
    expect([text(header.get(1)?.[0]), text(header.get(2)?.[0])]).toEqual(['accessToken', 'token-1']);
    // google.protobuf.Any: the JSON body in value (2)
    const body = fields(payload.get(3)?.[0] as Uint8Array);
    expect(JSON.parse(text(body.get(2)?.[0]))).toEqual({ serviceName: 'orders' });
  });

  it('decodes what it encodes', () => {
    const decoded = decodePayload(
      encodePayload({
        type: 'NotifySubscriberRequest',
        body: { requestId: '7', serviceInfo: { hosts: [] } },
        headers: { a: 'b' },
      }),
    );
    expect(decoded).toEqual({
      type: 'NotifySubscriberRequest',
      body: { requestId: '7', serviceInfo: { hosts: [] } },
      headers: { a: 'b' },
      clientIp: '',
    });
  });

  it('reads a body that is not a JSON object as {}, keeping the type', () => {
    const bytes = encodePayload({ type: 'X', body: [] });
    expect(decodePayload(bytes)).toMatchObject({ type: 'X', body: {} });
    expect(decodePayload(new Uint8Array())).toEqual({ type: '', body: {}, headers: {}, clientIp: '' });
  });
});
