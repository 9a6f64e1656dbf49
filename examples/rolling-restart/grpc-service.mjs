// The gRPC service of the rolling-restart demo (`--protocol grpc`): demo.Work/Do, unary, JSON
// messages (no .proto to load): { ms, write } in, { name, workedMs } out after `ms`. `write` stands
// for the demo's POSTs (20 %): calls that are not safe to repeat once the server got them.

import * as grpc from '@grpc/grpc-js';

const json = {
  serialize: (value) => Buffer.from(JSON.stringify(value)),
  deserialize: (buffer) => JSON.parse(buffer.toString()),
};

export const workService = {
  do: {
    path: '/demo.Work/Do',
    requestStream: false,
    responseStream: false,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
    originalName: 'do',
  },
};

export const WorkClient = grpc.makeGenericClientConstructor(workService, 'Work');

/** The provider modes of `--protocol grpc`. */
export const GRPC_MODES = ['lossless', 'naive', 'try-shutdown', 'force-shutdown'];
