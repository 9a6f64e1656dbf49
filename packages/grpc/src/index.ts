// @lossless/grpc: lossless online/offline for @grpc/grpc-js servers, in one call:
// `lossless(server, options)` before binding, then `provider.listen(port)` (or the server's own
// bindAsync). The consumer side (a `lossless:///service` resolver and load-balancing policy for
// grpc-js clients) is in `@lossless/grpc/client`.

export type { LosslessGrpcOptions, StreamingCall } from './provider.js';
export { GrpcProvider, lossless } from './provider.js';
