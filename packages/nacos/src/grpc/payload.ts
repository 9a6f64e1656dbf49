// The one message Nacos' gRPC API carries: a Payload whose metadata names the request or response type
// (the Java class's simple name) and whose body is that object as JSON. The protobuf definitions below
// are written for lossless with the field numbers of Nacos' nacos_grpc_service.proto:
//   Metadata { string type = 3; string clientIp = 8; map<string, string> headers = 7; }
//   Payload  { Metadata metadata = 2; google.protobuf.Any body = 3; }
// Services: `Request.request` (unary) and `BiRequestStream.requestBiStream` (both ways, server pushes).

import protobuf from 'protobufjs/light.js';

const { Field, MapField, Root, Type } = protobuf;
const PayloadType = new Root()
  .add(
    new Type('Metadata')
      .add(new Field('type', 3, 'string'))
      .add(new Field('clientIp', 8, 'string'))
      .add(new MapField('headers', 7, 'string', 'string')),
  )
  // google.protobuf.Any; Nacos leaves type_url empty and puts the JSON in value
  .add(new Type('Any').add(new Field('type_url', 1, 'string')).add(new Field('value', 2, 'bytes')))
  .add(new Type('Payload').add(new Field('metadata', 2, 'Metadata')).add(new Field('body', 3, 'Any')))
  .lookupType('Payload');

/** Method paths of Nacos' gRPC services (the proto declares no package). */
export const UNARY_METHOD = '/Request/request';
export const STREAM_METHOD = '/BiRequestStream/requestBiStream';

export interface Payload {
  /** Request or response type: `InstanceRequest`, `NotifySubscriberRequest`, `ErrorResponse`... */
  readonly type: string;
  /** The JSON body, parsed. */
  readonly body: Record<string, unknown>;
  readonly headers: Readonly<Record<string, string>>;
  readonly clientIp: string;
}

export function encodePayload(payload: {
  readonly type: string;
  readonly body: object;
  readonly headers?: Readonly<Record<string, string>>;
  readonly clientIp?: string;
}): Buffer {
  const message = PayloadType.fromObject({
    metadata: { type: payload.type, clientIp: payload.clientIp ?? '', headers: { ...payload.headers } },
    body: { type_url: '', value: Buffer.from(JSON.stringify(payload.body)) },
  });
  const bytes = PayloadType.encode(message).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Decodes a Payload; a body that is not a JSON object becomes `{}` (the type still tells what it was). */
export function decodePayload(bytes: Uint8Array): Payload {
  const message = PayloadType.toObject(PayloadType.decode(bytes), { defaults: true }) as {
    metadata?: { type?: string; clientIp?: string; headers?: Record<string, string> };
    body?: { value?: Uint8Array };
  };
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(message.body?.value ?? new Uint8Array()).toString('utf8'));
  } catch {
    body = {};
  }
  return {
    type: message.metadata?.type ?? '',
    body: typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as Record<string, unknown>) : {},
    headers: message.metadata?.headers ?? {},
    clientIp: message.metadata?.clientIp ?? '',
  };
}
