// One gRPC provider process of the rolling-restart demo (`--protocol grpc`): a @grpc/grpc-js server
// of demo.Work (grpc-service.mjs) in the demo's gRPC shutdown modes:
//   lossless        @lossless/grpc: delayed registration, health service, calls counted, marker in
//                   the answers' metadata, out of the registry first, then GOAWAY, adaptive drain,
//                   tryShutdown bounded by the drain, then forceShutdown
//   naive           registers at once; exits on SIGTERM (Node's default)
//   try-shutdown    registers at once; on SIGTERM grpc-js' tryShutdown(), exit once it calls back
//   force-shutdown  registers at once; on SIGTERM grpc-js' forceShutdown(), exit
// As the other provider scripts do: calls are counted by a server interceptor in every mode
// (measurement only) and JSON events go to stdout (measure.mjs: ready, sigterm, exit).
//
//   node provider-grpc.mjs --registry URL [--mode M] [--service S] [--name N] [--quiet-window-ms MS]

import * as grpc from '@grpc/grpc-js';
import { registryFromUrl } from '@lossless/core';
import { lossless } from '@lossless/grpc';
import { createNacosRegistry } from '@lossless/nacos';
import { flags, usageError } from './flags.mjs';
import { GRPC_MODES, workService } from './grpc-service.mjs';
import { drainMeasure } from './measure.mjs';

const USAGE = `Usage: node examples/rolling-restart/provider-grpc.mjs --registry URL [--mode ${GRPC_MODES.join('|')}]
  [--service NAME] [--name N] [--quiet-window-ms MS]
Started by demo.mjs --protocol grpc: one grpc-js provider process; JSON events on stdout.`;
const args = flags(
  {
    mode: { type: 'string', default: 'lossless' },
    registry: { type: 'string' },
    service: { type: 'string', default: 'demo-service' },
    name: { type: 'string', default: 'p' },
    'quiet-window-ms': { type: 'string', default: '1000' },
    // accepted for the demo, which passes it to every provider; no gRPC mode sleeps
    'sleep-ms': { type: 'string', default: '3000' },
  },
  USAGE,
);
if (!GRPC_MODES.includes(args.mode)) usageError(`--mode must be one of ${GRPC_MODES.join(', ')}`, USAGE);
if (args.registry === undefined) usageError('--registry is required', USAGE);
const schemes = { nacos: createNacosRegistry };

// measurement, identical in every mode: calls from their arrival to their status
const inFlight = new Set();
let total = 0;
const { emit, onSigterm, reportExit, ...measured } = drainMeasure({
  name: args.name,
  mode: args.mode,
  quietWindowMs: Number(args['quiet-window-ms']),
  protocol: 'grpc',
  load: {
    total: () => total,
    size: () => inFlight.size,
    oldestAgeMs: () => {
      const now = Date.now();
      let oldest = now;
      for (const entry of inFlight) oldest = Math.min(oldest, entry.at);
      return now - oldest;
    },
    longestRemainingMs: () => 0,
  },
});
const measure = (_method, call) => {
  const entry = { at: Date.now() };
  total++;
  measured.arrived();
  inFlight.add(entry);
  const done = () => {
    if (inFlight.delete(entry)) measured.done();
  };
  return new grpc.ServerInterceptingCall(call, {
    start: (next) => next({ onCancel: done }),
    sendStatus: (status, next) => {
      next(status);
      done();
    },
  });
};

const server = new grpc.Server({ interceptors: [measure] });
server.addService(workService, {
  do: (call, callback) => {
    const ms = Math.min(Number(call.request.ms ?? 1), 10_000);
    const answer = () => callback(null, { name: args.name, workedMs: ms });
    if (ms <= 0) answer();
    else setTimeout(answer, ms);
  },
});

if (args.mode === 'lossless') {
  const provider = lossless(server, {
    service: args.service,
    registry: args.registry,
    registrySchemes: schemes,
    admin: { port: 0 },
    drain: { quietWindowMs: Number(args['quiet-window-ms']) },
    exit: (code) => {
      reportExit();
      process.exit(code);
    },
  });
  process.prependListener('SIGTERM', onSigterm);
  const port = await provider.listen('127.0.0.1:0');
  emit('ready', { port, adminPort: provider.adminAddress?.port });
} else {
  const registry = registryFromUrl(args.registry, { schemes });
  const port = await new Promise((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  const instance = {
    service: args.service,
    id: `127.0.0.1:${port}`,
    ip: '127.0.0.1',
    port,
    weight: 100,
    enabled: true,
    healthy: true,
    metadata: { 'lossless.registered-at': String(Date.now()) },
  };
  await registry.register(instance);
  emit('ready', { port });
  process.on('SIGTERM', () => {
    onSigterm();
    if (args.mode === 'naive') {
      reportExit();
      process.exit(0);
    }
    if (args.mode === 'force-shutdown') {
      server.forceShutdown();
      reportExit();
      // the resets go out first
      setImmediate(() => process.exit(0));
      return;
    }
    server.tryShutdown(() => {
      reportExit();
      process.exit(0);
    });
  });
}
