// The built `lossless` command against the express example as a real process: `lossless status`
// reads it, `lossless prestop` drains it, answers once the drain is over, and the example exits.

import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type RunningExample, startExample } from '../process/example.js';
import { call, refused, tempRegistry } from '../support.js';

const BIN = fileURLToPath(new URL('../../packages/cli/dist/bin.js', import.meta.url));

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly at: number;
}

/** Runs `node packages/cli/dist/bin.js ...args` with no LOSSLESS_* variables of the test's environment. */
function lossless(args: string[]): Promise<Run> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('LOSSLESS_')));
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env, timeout: 20_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
      resolve({ code, stdout, stderr, at: Date.now() });
    });
  });
}

describe('lossless (built) against the express example', () => {
  let registry: Awaited<ReturnType<typeof tempRegistry>>;
  let running: RunningExample | undefined;

  beforeEach(async () => {
    registry = await tempRegistry();
  });
  afterEach(async () => {
    running?.child.kill('SIGKILL');
    running = undefined;
    await registry.remove();
  });

  it('prestop drains the example, answers when the drain is over, and the example exits', async () => {
    running = await startExample(['--registry', registry.url, '--quiet-window-ms', '300']);
    const r = running;
    const admin = `http://127.0.0.1:${r.adminPort}`;

    const status = await lossless(['status', '--admin', admin]);
    expect(status).toMatchObject({ code: 0, stderr: '' });
    expect(status.stdout).toContain('service   hello-service\nstate     ready\n');
    expect(status.stdout).toContain('registry  file, registered\n');

    // a slow request in flight: the drain, and so the answer, waits for it
    const slow = call(r.port, '/work?ms=800').then((reply) => ({ ...reply, at: Date.now() }));
    await new Promise((resolve) => setTimeout(resolve, 50));
    const prestop = await lossless(['prestop', '--admin', admin]);
    const reply = await slow;

    expect(prestop.stderr).toBe('');
    expect(prestop.stdout).toMatch(/^drained in \d+ ms \(outcome idle, 0 requests cut\)\n$/);
    expect(prestop.code).toBe(0);
    expect(reply.status).toBe(200);
    expect(reply.headers['x-lossless-offline']).toBe('draining');
    expect(prestop.at).toBeGreaterThanOrEqual(reply.at);
    const exited = await r.exited;
    expect(exited.code).toBe(0);
    expect(await refused(r.port)).toBe(true);

    // once the example is gone, the admin server is not reachable any more
    const after = await lossless(['status', '--admin', admin]);
    expect(after.code).toBe(4);
    expect(after.stderr).toBe(`not reachable: connect ECONNREFUSED 127.0.0.1:${r.adminPort}\n`);
  });

  it('demo passes its arguments to the demo script of this repository (here: its --help)', async () => {
    const run = await lossless(['demo', '--', '--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^Usage: node examples\/rolling-restart\/demo\.mjs /);
  });
});
