// One-shot scripts: `createClient()` then a single `await client.fetch(...)` and nothing else must
// answer, as `fetch` does (the process exited with code 13, an unsettled top-level await, before
// the request was sent: nothing on the discovery path kept the event loop alive).

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempRegistry } from '../support.js';
import { type RunningExample, startExample } from './example.js';

const SCRIPT = fileURLToPath(new URL('../fixtures/one-shot.mjs', import.meta.url));

function runScript(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [SCRIPT, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('a one-shot script with @lossless/client', () => {
  let registry: Awaited<ReturnType<typeof tempRegistry>>;
  let provider: RunningExample | undefined;

  beforeEach(async () => {
    registry = await tempRegistry();
  });
  afterEach(async () => {
    provider?.child.kill('SIGKILL');
    provider = undefined;
    await registry.remove();
  });

  it('gets its answer and exits 0', async () => {
    provider = await startExample(['--registry', registry.url, '--warmup-ms', '0']);
    const run = await runScript([registry.url, 'hello-service']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ status: 200, body: { pid: provider.child.pid } });
  });
});
