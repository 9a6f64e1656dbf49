export declare const workService: import('@grpc/grpc-js').ServiceDefinition;
export declare const WorkClient: import('@grpc/grpc-js').ServiceClientConstructor;
export declare const GRPC_MODES: readonly string[];
