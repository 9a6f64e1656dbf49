// A script whose only work is one call through @lossless/client gets its answer: nothing the call
// waits for (the first list from the registry, the connection) may sit on an unref'd timer, or Node
// exits with "unsettled top-level await" (exit code 13) before the answer. The file registry's first
// read once waited on its unref'd debounce timer and did exactly that.

import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { FileRegistry } from '@lossless/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempRegistry } from '../support.js';

const TEST_DIR = fileURLToPath(new URL('..', import.meta.url));
const run = promisify(execFile);

describe('a one-shot script calling a service through @lossless/client', () => {
  let registry: Awaited<ReturnType<typeof tempRegistry>>;
  let server: Server;
  let files: FileRegistry;

  beforeEach(async () => {
    registry = await tempRegistry();
    server = createServer((_req, res) => res.end('answered'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    files = new FileRegistry({ dir: registry.dir });
    await files.register({
      service: 'oneshot',
      id: `127.0.0.1:${port}`,
      ip: '127.0.0.1',
      port,
      weight: 100,
      enabled: true,
      healthy: true,
      metadata: {},
    });
  });
  afterEach(async () => {
    await files.close();
    await new Promise((resolve) => server.close(resolve));
    await registry.remove();
  });

  it.each(['fetch', 'request'])('gets its answer with client.%s on the file registry', async (method) => {
    const script = [
      "import { createClient } from '@lossless/client';",
      `const client = createClient({ registry: ${JSON.stringify(registry.url)} });`,
      method === 'fetch'
        ? "const res = await client.fetch('http://oneshot/'); console.log(res.status, await res.text());"
        : "const res = await client.request('http://oneshot/'); console.log(res.statusCode, await res.body.text());",
      'await client.close();',
    ].join('\n');
    // resolved from test/, whose node_modules hold the workspace packages
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
      cwd: TEST_DIR,
      timeout: 15_000,
    });
    expect(stdout.trim()).toBe('200 answered');
  });
});
