// Starts examples/express-provider/server.mjs as a real process, as a user would, and follows its
// JSON log lines.

import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { until } from '../support.js';

const EXAMPLE = fileURLToPath(new URL('../../examples/express-provider/server.mjs', import.meta.url));
const WATCH = fileURLToPath(new URL('../fixtures/watch.mjs', import.meta.url));

export interface Running {
  readonly child: ChildProcess;
  readonly lines: string[];
  readonly exited: Promise<{ code: number | null; at: number }>;
  /** Parsed JSON log lines. */
  readonly logs: () => { msg?: string; [key: string]: unknown }[];
}

export interface RunningExample extends Running {
  readonly port: number;
  readonly adminPort: number;
}

/** Where and with what environment a script runs: the test's own by default. */
export interface LaunchOptions {
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
}

function run(args: string[], options: LaunchOptions = {}): Running {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  const lines: string[] = [];
  const exited = new Promise<{ code: number | null; at: number }>((resolve) =>
    child.on('exit', (code) => resolve({ code, at: Date.now() })),
  );
  let buffer = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    buffer += chunk;
    const parts = buffer.split('\n');
    buffer = parts.pop() ?? '';
    lines.push(...parts);
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => lines.push(`stderr: ${chunk}`));
  const logs = () =>
    lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg?: string; [key: string]: unknown });
  return { child, lines, exited, logs };
}

/** Starts another script that logs JSON lines as the example does (`node <script> ...args`). */
export function launchScript(script: string, args: string[], options: LaunchOptions = {}): Running {
  return run([script, ...args], options);
}

/** Starts the example with `--port 0 --admin-port 0` and the given arguments; resolves once it listens. */
export function launchExample(args: string[]): Running {
  return run([EXAMPLE, '--port', '0', '--admin-port', '0', ...args]);
}

/**
 * Starts the example with only `args` on its command line, as a user would type it; `env` adds
 * variables (`PORT=0`, `LOSSLESS_ADMIN_PORT=0`: free ports on a machine shared with other tests).
 */
export function launchExampleWith(args: string[], env: NodeJS.ProcessEnv): Running {
  return run([EXAMPLE, ...args], { env: { ...process.env, ...env } });
}

export async function listening(r: Running, timeoutMs = 15_000): Promise<RunningExample> {
  let ready: { port: number; adminPort: number } | undefined;
  const output = () => `(output: ${r.lines.join('\n')})`;
  await until(
    () => {
      ready = r.logs().find((l) => l.msg?.startsWith('listening on')) as typeof ready;
      if (ready === undefined && r.child.exitCode !== null)
        throw new Error(`the example exited with code ${r.child.exitCode} before listening ${output()}`);
      return ready !== undefined;
    },
    'the example to listen',
    timeoutMs,
  ).catch((error: Error) => {
    throw error.message.includes('(output:') ? error : new Error(`${error.message} ${output()}`);
  });
  return { ...r, port: ready!.port, adminPort: ready!.adminPort };
}

export async function startExample(args: string[]): Promise<RunningExample> {
  return listening(launchExample(args));
}

/** A separate process subscribed to `service`: its `seen()` lists the instance ids of every change. */
export function watch(registryUrl: string, service: string): Running & { seen: () => { at: number; ids: string[] }[] } {
  const r = run([WATCH, registryUrl, service]);
  return {
    ...r,
    seen: () => r.logs().filter((l) => Array.isArray(l.ids)) as unknown as { at: number; ids: string[] }[],
  };
}
