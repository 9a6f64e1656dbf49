// Two gRPC provider processes (the demo's provider-grpc.mjs: @lossless/grpc on a grpc-js server)
// behind the lossless grpc-js client (lossless:/// target) under steady load; one gets a real
// SIGTERM: not one call fails, it exits 0 by itself once drained, and nothing reaches it after.

import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { createDiscovery, type LosslessDiscovery } from '@lossless/grpc/client';
import { afterEach, describe, it } from 'vitest';
import { WorkClient } from '../../examples/rolling-restart/grpc-service.mjs';
import { tempRegistry, until } from '../support.js';
import {
  bothReady,
  type DemoProvider,
  expectLossless,
  sigtermUnderLoad,
  startDemoProvider,
} from './drain-under-load.js';

const PROVIDER = fileURLToPath(new URL('../../examples/rolling-restart/provider-grpc.mjs', import.meta.url));
const SERVICE = 'grpc-orders';
const QUIET_MS = 300;

type Work = grpc.Client & {
  do(
    request: object,
    options: grpc.CallOptions,
    callback: (error: grpc.ServiceError | null, reply?: { name: string }) => void,
  ): void;
};

describe('a gRPC provider process drained by SIGTERM under load', () => {
  const children: ChildProcess[] = [];
  let discovery: LosslessDiscovery | undefined;
  let client: grpc.Client | undefined;
  let cleanup: (() => Promise<void>)[] = [];

  afterEach(async () => {
    client?.close();
    await discovery?.close();
    for (const child of children.splice(0)) child.kill('SIGKILL');
    for (const fn of cleanup) await fn();
    cleanup = [];
  });

  function start(registry: string, name: string): DemoProvider {
    const provider = startDemoProvider(PROVIDER, { registry, service: SERVICE, name, quietWindowMs: QUIET_MS });
    children.push(provider.child);
    return provider;
  }

  it('loses no call, exits 0 once drained, and gets nothing after its drain', async ({ annotate }) => {
    const registry = await tempRegistry();
    cleanup.push(registry.remove);
    const a = start(registry.url, 'a');
    const b = start(registry.url, 'b');
    await bothReady(a, b);
    const d = createDiscovery({ registry: registry.url });
    discovery = d;
    const c = new WorkClient(
      `lossless:///${SERVICE}`,
      grpc.credentials.createInsecure(),
      d.clientOptions,
    ) as unknown as Work;
    client = c;
    await until(async () => {
      await d.service(SERVICE).ready;
      return d.service(SERVICE).endpoints.length === 2;
    }, 'both instances listed');

    const outcome = await sigtermUnderLoad(
      a,
      (ms, write) =>
        new Promise<string>((resolve, reject) => {
          c.do({ ms, write }, { deadline: Date.now() + 10_000 }, (error, reply) => {
            if (error !== null) reject(new Error(`${grpc.status[error.code]}: ${error.details}`));
            else if (reply === undefined) reject(new Error('no reply'));
            else resolve(reply.name);
          });
        }),
    );
    expectLossless(outcome);
    const { sent, exitAfterMs, sigterm, exit } = outcome;
    await annotate(
      `${sent} gRPC calls, 0 failed; a exited 0 ${exitAfterMs} ms after SIGTERM (${sigterm?.inFlight} in flight then, ${exit?.arrivedAfterSigterm} arrived after it)`,
      'measured',
    );
  });
});
