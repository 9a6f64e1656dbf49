// Every script a user runs by hand (the examples, the demo, the benchmarks) answers a wrong flag with
// the flag's name and its usage on stderr and exit code 2, never a stack trace (`pnpm demo --duration
// 30` used to die with ERR_PARSE_ARGS_UNKNOWN_OPTION), and answers --help with the usage on stdout.
// The scripts are found, not listed: every .mjs file under examples/ and test/bench/, plus the
// reliability report, that exports nothing (the files that export are modules the scripts import).

import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const run = promisify(execFile);

function scripts(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.mjs') && !e.parentPath.includes('node_modules'))
    .map((e) => relative(ROOT, join(e.parentPath, e.name)))
    .filter((file) => !/^export /m.test(readFileSync(join(ROOT, file), 'utf8')))
    .sort();
}

const SCRIPTS = [...scripts('examples'), ...scripts('test/bench'), 'test/reliability/report.mjs'];

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

async function start(file: string, args: string[]): Promise<Outcome> {
  return run(process.execPath, [join(ROOT, file), ...args], { cwd: ROOT, timeout: 20_000 }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code?: number; stdout?: string; stderr?: string }) => ({
      code: typeof error.code === 'number' ? error.code : -1,
      stdout: error.stdout ?? '',
      stderr: error.stderr ?? '',
    }),
  );
}

const STACK_TRACE = /^\s+at .+(:\d+:\d+\)?|\(node:.+\))$/m;

describe('the scripts users run by hand', () => {
  it('are all found: the examples, the demo, its benchmark and the overhead benchmarks', () => {
    expect(SCRIPTS).toEqual(
      expect.arrayContaining([
        'examples/consumer/client.mjs',
        'examples/express-provider/demo.mjs',
        'examples/express-provider/server.mjs',
        'examples/fastify-provider/server.mjs',
        'examples/rolling-restart/bench.mjs',
        'examples/rolling-restart/demo.mjs',
        'test/bench/balancer-choice.mjs',
        'test/bench/client-overhead.mjs',
        'test/bench/provider-overhead.mjs',
      ]),
    );
  });

  it.each(SCRIPTS)('%s: a wrong flag prints the flag and the usage, exit code 2', async (file) => {
    const { code, stdout, stderr } = await start(file, ['--no-such-flag']);
    expect(code, stderr).toBe(2);
    expect(stderr).toContain("'--no-such-flag'");
    expect(stderr).toMatch(/^Usage: /m);
    expect(stderr).not.toMatch(STACK_TRACE);
    expect(stderr).not.toContain('ERR_PARSE_ARGS');
    expect(stdout).toBe('');
  });

  it.each(SCRIPTS)('%s: --help prints the usage, exit code 0', async (file) => {
    const { code, stdout, stderr } = await start(file, ['--help']);
    expect(code, stderr).toBe(0);
    expect(stdout).toMatch(/^Usage: /m);
  });

  it('pnpm demo --duration 30 (a flag of another script) names the flag', async () => {
    const { code, stderr } = await start('examples/rolling-restart/demo.mjs', ['--duration', '30']);
    expect(code).toBe(2);
    expect(stderr).toContain("Unknown option '--duration'");
    expect(stderr).toContain('--restarts-for S');
    expect(stderr).not.toMatch(STACK_TRACE);
  });

  it('a flag without its value names the flag too', async () => {
    const { code, stderr } = await start('examples/consumer/client.mjs', ['--rate']);
    expect(code).toBe(2);
    expect(stderr).toContain('--rate');
    expect(stderr).toMatch(/^Usage: /m);
    expect(stderr).not.toMatch(STACK_TRACE);
  });
});
