import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BENCHMARKS, DEMO_SCRIPT, findRepository } from '../src/commands/scripts.js';
import { main } from '../src/main.js';
import { capture } from './helpers.js';

const REPOSITORY = fileURLToPath(new URL('../../../', import.meta.url)).replace(/\/$/, '');

/** A fake clone: the scripts exist (empty), the CLI sits in packages/cli/dist. */
let root: string;
let dist: string;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'lossless-cli-'));
  dist = join(root, 'packages', 'cli', 'dist');
  mkdirSync(dist, { recursive: true });
  for (const path of [DEMO_SCRIPT, ...Object.values(BENCHMARKS).map((b) => b.path)]) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), '');
  }
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

/** A context whose scripts run nowhere: records each run and answers `exitCode`. */
function recording(location: string, exitCode = 0) {
  const runs: { script: string; args: readonly string[] }[] = [];
  const io = capture({
    location,
    runScript: async (script, args) => {
      runs.push({ script, args });
      return exitCode;
    },
  });
  return { io, runs };
}

describe('findRepository', () => {
  it('walks up from the CLI folder to the folder holding the demo', () => {
    expect(findRepository(dist)).toBe(root);
    expect(findRepository(root)).toBe(root);
  });

  it('finds this repository from the sources of the CLI', () => {
    expect(findRepository(fileURLToPath(new URL('../src', import.meta.url)))).toBe(REPOSITORY);
  });

  it('answers undefined when no folder above holds the demo', () => {
    rmSync(join(root, DEMO_SCRIPT));
    expect(findRepository(dist)).toBeUndefined();
  });
});

describe('lossless demo', () => {
  it('runs examples/rolling-restart/demo.mjs with the arguments unchanged and exits with its code', async () => {
    const { io, runs } = recording(dist, 7);
    expect(await main(['demo', '--mode', 'naive', '--rate', '300', 'extra'], io)).toBe(7);
    expect(runs).toEqual([{ script: join(root, DEMO_SCRIPT), args: ['--mode', 'naive', '--rate', '300', 'extra'] }]);
  });

  it('shows its own help for a leading --help, and passes --help on after --', async () => {
    const { io, runs } = recording(dist);
    expect(await main(['demo', '--help'], io)).toBe(0);
    expect(io.stdout.text).toMatch(/^Usage: lossless demo/);
    expect(runs).toEqual([]);
    expect(await main(['demo', '--', '--help'], io)).toBe(0);
    expect(await main(['demo', '--quiet', '--help'], io)).toBe(0);
    expect(runs.map((r) => r.args)).toEqual([['--help'], ['--quiet', '--help']]);
  });

  it('exits 2 with LOSSLESS_ERR_CLI_NO_DEMO outside a clone of the repository', async () => {
    rmSync(join(root, DEMO_SCRIPT));
    const { io, runs } = recording(dist);
    expect(await main(['demo'], io)).toBe(2);
    expect(runs).toEqual([]);
    expect(io.stderr.text).toBe(
      'lossless demo: LOSSLESS_ERR_CLI_NO_DEMO: the demo ships with the lossless repository; clone it and run `pnpm demo`\n',
    );
  });
});

describe('lossless bench', () => {
  it.each([
    ['rollout', 'examples/rolling-restart/bench.mjs'],
    ['client', 'test/bench/client-overhead.mjs'],
    ['provider', 'test/bench/provider-overhead.mjs'],
  ])('bench %s runs %s with the arguments unchanged', async (kind, path) => {
    const { io, runs } = recording(dist, 3);
    expect(await main(['bench', kind, '--rounds', '2'], io)).toBe(3);
    expect(runs).toEqual([{ script: join(root, path), args: ['--rounds', '2'] }]);
  });

  it('runs the rollout benchmark when no benchmark is named', async () => {
    const { io, runs } = recording(dist);
    expect(await main(['bench', '--rate', '100'], io)).toBe(0);
    expect(await main(['bench'], io)).toBe(0);
    expect(runs).toEqual([
      { script: join(root, BENCHMARKS.rollout.path), args: ['--rate', '100'] },
      { script: join(root, BENCHMARKS.rollout.path), args: [] },
    ]);
  });

  it('shows its own help for a leading --help, also after the benchmark name', async () => {
    const { io, runs } = recording(dist);
    expect(await main(['bench', '-h'], io)).toBe(0);
    expect(await main(['bench', 'client', '--help'], io)).toBe(0);
    expect(io.stdout.text.match(/^Usage: lossless bench/gm)).toHaveLength(2);
    expect(runs).toEqual([]);
  });

  it('exits 2 naming an unknown benchmark', async () => {
    const { io, runs } = recording(dist);
    expect(await main(['bench', 'server'], io)).toBe(2);
    expect(runs).toEqual([]);
    expect(io.stderr.text).toBe(
      "lossless bench: LOSSLESS_ERR_CLI_USAGE: unknown benchmark 'server'; use rollout, client, provider; see 'lossless bench --help'\n",
    );
  });

  it('exits 2 with LOSSLESS_ERR_CLI_NO_DEMO when the benchmark is not there', async () => {
    rmSync(join(root, BENCHMARKS.provider.path));
    const { io, runs } = recording(dist);
    expect(await main(['bench', 'provider'], io)).toBe(2);
    expect(runs).toEqual([]);
    expect(io.stderr.text).toMatch(
      /^lossless bench: LOSSLESS_ERR_CLI_NO_DEMO: the provider benchmark ships with the lossless repository; clone it and run `.+`\n$/,
    );
  });
});
