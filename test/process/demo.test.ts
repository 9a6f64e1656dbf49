// The rolling-restart demo, run as a user runs it: lossless loses nothing; the naive way loses
// requests (if it did not, the harness would not be sensitive enough to prove anything). Also the
// endpoint race (--race-ms), the soak option (--restarts-for) and the libraries it compares with.

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
  dir = await mkdtemp(join(tmpdir(), 'lossless-demo-test-'));
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
  failures: { total: number; refused: number; reset: number; status5xx: number; timeout: number; other: number };
  latencyMs: { steady: { p50: number; count: number }; rollout: { p50: number; count: number } };
  drains: {
    instance: string;
    drainMs: number;
    longestInFlightMs: number;
    arrivedAfterSigterm: number | null;
    lastArrivalAfterSigtermMs: number | null;
    exitCode: number | string;
  }[];
  rolloutMs: number;
  raceMs: number | null;
  restartsForS: number | null;
}

async function demo(mode: string, extra: string[] = []): Promise<{ report: Report; stdout: string }> {
  const json = join(dir, `${mode}-${extra.join('')}.json`);
  const { stdout } = await run(
    process.execPath,
    [
      DEMO,
      ...['--mode', mode, '--rate', '100', '--steady', '1', '--quiet', '--json', json],
      // three restarts unless the test says how many, or for how long
      ...(extra.some((a) => a.startsWith('--restarts')) ? [] : ['--restarts', '3']),
      ...extra,
    ],
    { timeout: 90_000 },
  ).catch((error: { stdout?: string; stderr?: string; code?: number }) => {
    // the demo exits 1 when lossless lost requests: keep its output for the assertion message
    if (error.stdout !== undefined && error.code === 1) return { stdout: error.stdout };
    throw error;
  });
  return { report: JSON.parse(await readFile(json, 'utf8')) as Report, stdout };
}

describe('rolling-restart demo', () => {
  it('lossless mode: three restarts under load, not one request lost', async () => {
    const { report, stdout } = await demo('lossless');
    expect(report.failures, stdout).toMatchObject({
      total: 0,
      refused: 0,
      reset: 0,
      status5xx: 0,
      timeout: 0,
      other: 0,
    });
    expect(report.restarts).toBe(3);
    expect(report.requests).toBeGreaterThan(300);
    expect(report.latencyMs.rollout.count).toBeGreaterThan(0);
    expect(report.drains.map((d) => d.exitCode)).toEqual([0, 0, 0]);
    expect(stdout).toContain('failures       0');
  }, 120_000);

  // With @lossless/client a naive provider loses only the requests in flight when it exits that may
  // not be retried (POSTs already sent): a few per run at this rate, sometimes none. A plain client
  // loses every request sent to an instance that has gone: the harness's sensitivity, every time.
  it('naive mode with a plain client: the same load loses requests', async () => {
    const { report } = await demo('naive', ['--client', 'plain']);
    expect(report.failures.total).toBeGreaterThan(0);
    expect(report.mode).toBe('naive');
  }, 120_000);

  it('lossless mode over HTTP/2 (TLS): three restarts under load, not one request lost', async () => {
    const { report, stdout } = await demo('lossless', ['--protocol', 'h2']);
    expect(report.failures, stdout).toMatchObject({ total: 0 });
    expect(report).toMatchObject({ protocol: 'h2', restarts: 3 });
    expect(report.requests).toBeGreaterThan(300);
    expect(report.drains.map((d) => d.exitCode)).toEqual([0, 0, 0]);
  }, 120_000);

  // Kubernetes' endpoint race: the plain client keeps sending to the old instance for D ms after
  // SIGTERM. lossless serves all of it (its drain lasts until the requests stop coming, then a quiet
  // window); a library that closes at once refuses what comes meanwhile.
  it('--race-ms: the plain client keeps sending for D ms after SIGTERM; lossless loses nothing, http-terminator loses', async () => {
    const [{ report: lossless, stdout }, { report: terminator }] = await Promise.all([
      demo('lossless', ['--client', 'plain', '--race-ms', '1500']),
      demo('http-terminator', ['--client', 'plain', '--race-ms', '1500']),
    ]);
    expect(lossless.raceMs).toBe(1500);
    expect(lossless.failures.total, stdout).toBe(0);
    for (const drain of lossless.drains) {
      // requests kept coming for about D after SIGTERM, and the drain waited for them
      expect(drain.arrivedAfterSigterm).toBeGreaterThan(0);
      expect(drain.lastArrivalAfterSigtermMs).toBeGreaterThan(1000);
      expect(drain.drainMs).toBeGreaterThan(1500);
      expect(drain.exitCode).toBe(0);
    }
    expect(terminator.failures.total).toBeGreaterThan(0);
  }, 120_000);

  it('--race-ms needs the plain client', async () => {
    const error = await run(process.execPath, [DEMO, '--race-ms', '500']).catch(
      (e: { code: number; stderr: string }) => e,
    );
    expect(error).toMatchObject({ code: 2 });
    expect((error as { stderr: string }).stderr).toContain('--client plain');
  });

  it('--restarts-for: keeps restarting for that long, then stops', async () => {
    const { report } = await demo('lossless', ['--restarts-for', '4']);
    expect(report.restartsForS).toBe(4);
    expect(report.restarts).toBeGreaterThanOrEqual(2);
    // the last restart began before the time was up, and a restart takes a drain (~1 s)
    expect(report.rolloutMs).toBeGreaterThanOrEqual(4000);
    expect(report.rolloutMs).toBeLessThan(4000 + 15_000);
    expect(report.failures.total).toBe(0);
  }, 120_000);

  // The libraries the benchmark compares with: each one starts, serves, and stops on SIGTERM (by
  // itself, or killed at the grace period: fastify's close waits for the keep-alive connections the
  // plain client still holds).
  it('runs every library mode: terminus, lightship, http-terminator, close-with-grace, fastify', async () => {
    const modes = ['terminus', 'lightship', 'http-terminator', 'close-with-grace', 'fastify'];
    const reports = await Promise.all(
      modes.map(async (mode) => (await demo(mode, ['--client', 'plain', '--restarts', '1', '--rate', '30'])).report),
    );
    for (const [i, report] of reports.entries()) {
      expect(report.mode).toBe(modes[i]);
      expect(report.restarts).toBe(1);
      expect(report.latencyMs.steady.count).toBeGreaterThan(0);
      expect(report.drains).toHaveLength(1);
    }
  }, 120_000);

  it('refuses bad options with a clear message', async () => {
    const error = await run(process.execPath, [DEMO, '--mode', 'sloppy']).catch(
      (e: { code: number; stderr: string }) => e,
    );
    expect(error).toMatchObject({ code: 2 });
    expect((error as { stderr: string }).stderr).toContain(
      '--mode must be one of lossless, naive, close-only, fixed-sleep',
    );
  });
});
