// What a command talks to: output streams, environment, fetch, and how to run a script. Everything
// is injectable so that tests run the commands in-process against their own servers and streams.

import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where a command writes its lines: process.stdout, or anything with a `write(text)`. */
export interface Output {
  write(text: string): unknown;
}

export interface CliContext {
  readonly stdout: Output;
  readonly stderr: Output;
  /** Read for LOSSLESS_ADMIN_URL, LOSSLESS_ADMIN_PORT and LOSSLESS_ADMIN_TOKEN. */
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly fetch: typeof globalThis.fetch;
  /** Runs `node <script> ...args` with stdio inherited and resolves with its exit code. */
  readonly runScript: (script: string, args: readonly string[]) => Promise<number>;
  /** The folder the search for the repository's demo starts from: the CLI's own (dist/ once built). */
  readonly location: string;
}

export function createContext(overrides: Partial<CliContext> = {}): CliContext {
  return {
    stdout: overrides.stdout ?? process.stdout,
    stderr: overrides.stderr ?? process.stderr,
    env: overrides.env ?? process.env,
    fetch: overrides.fetch ?? globalThis.fetch,
    runScript: overrides.runScript ?? runNode,
    location: overrides.location ?? dirname(fileURLToPath(import.meta.url)),
  };
}

/** `node <script> ...args` in the current directory, stdio inherited. */
export function runNode(script: string, args: readonly string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { stdio: 'inherit' });
    // Ctrl-C in a terminal reaches the child too (same process group): the CLI only waits for the
    // child to finish its own clean-up. A signal sent to the CLI alone is passed on.
    const ignore = (): void => {};
    const forward = (signal: NodeJS.Signals): void => {
      child.kill(signal);
    };
    process.on('SIGINT', ignore);
    process.on('SIGTERM', forward);
    process.on('SIGHUP', forward);
    const cleanUp = (): void => {
      process.removeListener('SIGINT', ignore);
      process.removeListener('SIGTERM', forward);
      process.removeListener('SIGHUP', forward);
    };
    child.on('error', (error) => {
      cleanUp();
      reject(error);
    });
    child.on('exit', (code, signal) => {
      cleanUp();
      // as shells report it: 128 + the signal's number
      resolve(code ?? 128 + (signal === null ? 0 : (constants.signals[signal] ?? 0)));
    });
  });
}
