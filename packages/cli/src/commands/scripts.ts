// lossless demo and lossless bench: the demo and the benchmarks are scripts of the lossless
// repository, not of the published package, so they run only from a clone: the CLI finds the
// repository by walking up from its own folder, then runs the script with this node.

import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { CliContext } from '../context.js';
import { NoDemoError, UsageError } from '../errors.js';
import { HELP } from '../help.js';

/** The file that marks the root of a clone of the lossless repository. */
export const DEMO_SCRIPT = 'examples/rolling-restart/demo.mjs';

export interface Script {
  /** Relative to the repository root. */
  readonly path: string;
  /** "the demo ships with the lossless repository" */
  readonly what: string;
  /** What to run in a clone instead. */
  readonly hint: string;
}

export const BENCHMARKS: Readonly<Record<'rollout' | 'client' | 'provider', Script>> = {
  rollout: { path: 'examples/rolling-restart/bench.mjs', what: 'the rollout benchmark', hint: 'pnpm bench:rollout' },
  client: { path: 'test/bench/client-overhead.mjs', what: 'the client benchmark', hint: 'pnpm bench:client' },
  provider: {
    path: 'test/bench/provider-overhead.mjs',
    what: 'the provider benchmark',
    hint: 'pnpm build && node test/bench/provider-overhead.mjs',
  },
};

const DEMO: Script = { path: DEMO_SCRIPT, what: 'the demo', hint: 'pnpm demo' };

/** The nearest folder at or above `from` that holds the demo, or undefined. */
export function findRepository(from: string): string | undefined {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, DEMO_SCRIPT))) return dir;
    if (dirname(dir) === dir) return undefined;
  }
}

export function demoCommand(argv: readonly string[], context: CliContext): Promise<number> {
  return run(DEMO, 'demo', argv, context);
}

export function benchCommand(argv: readonly string[], context: CliContext): Promise<number> {
  const [first, ...rest] = argv;
  if (first !== undefined && !first.startsWith('-')) {
    if (!Object.hasOwn(BENCHMARKS, first))
      throw new UsageError(`unknown benchmark '${first}'; use ${Object.keys(BENCHMARKS).join(', ')}`);
    return run(BENCHMARKS[first as keyof typeof BENCHMARKS], 'bench', rest, context);
  }
  return run(BENCHMARKS.rollout, 'bench', argv, context);
}

async function run(script: Script, topic: 'demo' | 'bench', argv: readonly string[], context: CliContext) {
  // the arguments belong to the script; only a leading -h/--help is the CLI's, and a leading `--`
  // is dropped so that `lossless demo -- --help` reaches the script's own help
  if (argv[0] === '-h' || argv[0] === '--help') {
    context.stdout.write(HELP[topic]);
    return 0;
  }
  const args = argv[0] === '--' ? argv.slice(1) : argv;
  const root = findRepository(context.location);
  const path = root === undefined ? undefined : join(root, script.path);
  if (path === undefined || !existsSync(path)) throw new NoDemoError(script.what, script.hint);
  return context.runScript(path, args);
}
