// Two HTTP/2 provider processes (the demo's provider-h2.mjs: @lossless/core on a node:http2 secure
// server) behind @lossless/client under steady load; one gets a real SIGTERM: not one stream fails,
// it exits 0 by itself once drained, and nothing reaches it after its drain ended.

import type { ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { createClient, type LosslessClient } from '@lossless/client';
import { afterEach, describe, it } from 'vitest';
import { tlsFiles } from '../../examples/rolling-restart/tls-files.mjs';
import { tempRegistry, until } from '../support.js';
import {
  bothReady,
  type DemoProvider,
  expectLossless,
  sigtermUnderLoad,
  startDemoProvider,
} from './drain-under-load.js';

const PROVIDER = fileURLToPath(new URL('../../examples/rolling-restart/provider-h2.mjs', import.meta.url));
const SERVICE = 'h2-orders';
const QUIET_MS = 300;

describe('an HTTP/2 provider process drained by SIGTERM under load', () => {
  const children: ChildProcess[] = [];
  let client: LosslessClient | undefined;
  let cleanup: (() => Promise<void>)[] = [];

  afterEach(async () => {
    await client?.destroy();
    client = undefined;
    for (const child of children.splice(0)) child.kill('SIGKILL');
    for (const fn of cleanup) await fn();
    cleanup = [];
  });

  function start(registry: string, tlsDir: string, name: string): DemoProvider {
    const provider = startDemoProvider(PROVIDER, {
      registry,
      service: SERVICE,
      name,
      quietWindowMs: QUIET_MS,
      args: ['--tls-dir', tlsDir],
    });
    children.push(provider.child);
    return provider;
  }

  it('loses no stream, exits 0 once drained, and gets nothing after its drain', async ({ annotate }) => {
    const registry = await tempRegistry();
    const tls = await tlsFiles();
    cleanup.push(registry.remove, tls.remove);
    const a = start(registry.url, tls.dir, 'a');
    const b = start(registry.url, tls.dir, 'b');
    await bothReady(a, b);
    const c = createClient({ registry: registry.url, connect: { ca: await readFile(tls.cert, 'utf8') } });
    client = c;
    await until(async () => {
      await c.service(SERVICE).ready;
      return c.service(SERVICE).endpoints.length === 2;
    }, 'both instances listed');

    const outcome = await sigtermUnderLoad(a, async (ms, write) => {
      const method = write ? 'POST' : 'GET';
      const res = await c.request(`http://${SERVICE}/work?ms=${ms}`, { method, ...(write ? { body: '{}' } : {}) });
      const body = (await res.body.json()) as { name: string };
      if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}`);
      return body.name;
    });
    expectLossless(outcome);
    const { sent, exitAfterMs, sigterm, exit } = outcome;
    await annotate(
      `${sent} requests over HTTP/2, 0 failed; a exited 0 ${exitAfterMs} ms after SIGTERM (${sigterm?.inFlight} in flight then, ${exit?.arrivedAfterSigterm} arrived after it)`,
      'measured',
    );
  });
});
