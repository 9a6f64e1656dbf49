// The rolling-restart demo over gRPC (`--protocol grpc`), run as a user runs it: lossless providers
// behind the lossless grpc-js client lose no call; grpc-js' own forceShutdown behind a plain client
// loses calls (the harness is sensitive enough to see a loss).

import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const DEMO = fileURLToPath(new URL('../../examples/rolling-restart/demo.mjs', import.meta.url));
const run = promisify(execFile);
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lossless-demo-grpc-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Report {
  mode: string;
  client: string;
  protocol: string;
  requests: number;
  restarts: number;
  failures: { total: number };
  drains: { exitCode: number | string }[];
}

async function demo(mode: string, extra: string[] = []): Promise<{ report: Report; stdout: string }> {
  const json = join(dir, `${mode}-${extra.join('')}.json`);
  const { stdout } = await run(
    process.execPath,
    [
      DEMO,
      '--protocol',
      'grpc',
      '--mode',
      mode,
      '--rate',
      '100',
      '--steady',
      '1',
      '--restarts',
      '3',
      '--quiet',
      '--json',
      json,
      ...extra,
    ],
    { timeout: 90_000 },
  ).catch((error: { stdout?: string; code?: number }) => {
    if (error.stdout !== undefined && error.code === 1) return { stdout: error.stdout };
    throw error;
  });
  return { report: JSON.parse(await readFile(json, 'utf8')) as Report, stdout };
}

describe('rolling-restart demo over gRPC', () => {
  it('lossless mode: three restarts under load, not one call lost', async () => {
    const { report, stdout } = await demo('lossless');
    expect(report.failures, stdout).toMatchObject({ total: 0 });
    expect(report).toMatchObject({ protocol: 'grpc', restarts: 3, client: 'lossless' });
    expect(report.requests).toBeGreaterThan(300);
    expect(report.drains.map((d) => d.exitCode)).toEqual([0, 0, 0]);
  }, 120_000);

  it("grpc-js' forceShutdown behind a plain client: the same load loses calls", async () => {
    const { report } = await demo('force-shutdown', ['--client', 'plain']);
    expect(report.failures.total).toBeGreaterThan(0);
  }, 120_000);

  it('refuses a mode gRPC providers do not have', async () => {
    const error = await run(process.execPath, [DEMO, '--protocol', 'grpc', '--mode', 'close-only']).catch(
      (e: { code: number; stderr: string }) => e,
    );
    expect(error).toMatchObject({ code: 2 });
    expect((error as { stderr: string }).stderr).toContain(
      '--mode must be one of lossless, naive, try-shutdown, force-shutdown',
    );
  });
});
