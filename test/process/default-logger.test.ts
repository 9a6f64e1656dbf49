// Failures are visible by default: a real provider process given no logger writes one line to stderr
// per warning or error, with its code (registration failing, requests cut by a drain), and nothing
// when given silentLogger.

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { call, tempRegistry, until } from '../support.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/no-logger.mjs', import.meta.url));

interface Child {
  readonly child: ChildProcess;
  /** Complete stderr lines so far. */
  readonly stderr: () => string[];
  /** The fixture's JSON lines on stdout so far. */
  readonly events: () => Record<string, unknown>[];
  readonly port: () => number | undefined;
  /** Resolves with the exit code once the process has exited and its output is all read. */
  readonly closed: Promise<number | null>;
}

const children: ChildProcess[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

function start(args: string[]): Child {
  const child = spawn(process.execPath, [FIXTURE, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk;
  });
  const closed = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const events = () =>
    out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return {
    child,
    stderr: () => err.split('\n').slice(0, -1),
    events,
    port: () => events().find((e) => typeof e.port === 'number')?.port as number | undefined,
    closed,
  };
}

/** A file registry URL under a regular file: the directory can never be created. */
async function unwritableRegistry(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'lossless-unwritable-'));
  dirs.push(dir);
  await writeFile(join(dir, 'a-file'), '');
  return pathToFileURL(join(dir, 'a-file', 'registry')).href;
}

describe('a provider process given no logger', () => {
  it('prints a registry it cannot write to stderr at once, one line with the code, and each failed registration', async () => {
    const p = start(['--registry', await unwritableRegistry()]);
    await until(
      () => p.stderr().some((l) => l.startsWith('lossless error LOSSLESS_ERR_REGISTRY: file registry check')),
      `the check's line on stderr (stderr so far: ${p.stderr().join('\n')})`,
    );
    await until(
      () => p.stderr().some((l) => l.startsWith('lossless warn LOSSLESS_ERR_REGISTRY: registration failed, retrying')),
      'a failed registration on stderr',
    );
    const check = p.stderr().find((l) => l.includes('file registry check')) as string;
    expect(check).toContain('ENOTDIR');
    expect(check).toContain('"service":"no-logger-service"');
    // nothing but lossless lines: debug and info stay quiet
    expect(p.stderr().every((l) => /^lossless (warn|error) LOSSLESS_[A-Z_]+: /.test(l))).toBe(true);
  });

  it('prints the requests a drain cut, and the drain timeout, one line each', async () => {
    const registry = await tempRegistry();
    dirs.push(registry.dir);
    const p = start(['--registry', registry.url]);
    await until(() => p.port() !== undefined, 'the fixture to listen');
    await until(async () => (await call(p.port() as number, '/')).status === 200, 'the server to answer');
    const hanging = call(p.port() as number, '/hang').catch(() => undefined);
    await until(() => p.events().some((e) => e.hang === true), 'the request in flight');
    p.child.kill('SIGTERM');
    expect(await p.closed).toBe(1);
    await hanging;
    const lines = p.stderr();
    expect(
      lines.filter((l) => l.startsWith('lossless error LOSSLESS_ERR_DRAIN_TIMEOUT: Drain reached its maximum')),
    ).toHaveLength(1);
    const cut = lines.filter((l) =>
      l.startsWith('lossless warn LOSSLESS_ERR_DRAIN_TIMEOUT: request cut at the end of the drain'),
    );
    expect(cut).toHaveLength(1);
    expect(cut[0]).toContain('"url":"/hang"');
  });

  it('prints nothing when given silentLogger', async () => {
    const p = start(['--registry', await unwritableRegistry(), '--silent']);
    // the same failures as above happened: the check's error event, and registration attempts
    await until(() => p.events().some((e) => e.error === 'LOSSLESS_ERR_REGISTRY'), 'the check to fail');
    await until(
      () => p.events().some((e) => /registration attempt 2 failed/.test(String(e.reason))),
      'two failed registration attempts',
    );
    p.child.kill('SIGTERM');
    await p.closed;
    expect(p.stderr()).toEqual([]);
  });
});
