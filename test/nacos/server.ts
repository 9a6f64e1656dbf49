// startNacos(): a Nacos-compatible server for a test, from the source chosen in source.mjs. Servers
// started here bind 127.0.0.1 on free ports, with their console off and a temporary data folder,
// and are stopped by `stop()`.

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// @ts-expect-error -- plain ESM helper shared with the install step
import { chooseNacosSource, currentFacts, NACOS_IMAGE } from './source.mjs';

export interface RunningNacos {
  /** host:port of the HTTP API. */
  readonly addr: string;
  /** host:port of the gRPC API: the HTTP port + 1000, where Nacos clients look for it. */
  readonly grpcAddr: string;
  readonly source: 'env' | 'docker' | 'rnacos';
  /** Stops the server while keeping its port and data, so that restart() brings it back (`controlled` only). */
  readonly pause: () => Promise<void>;
  /**
   * Starts it again on the same ports (`controlled` only), stopping it first if it runs; with `empty`, on
   * an empty data folder, as a server that lost its data.
   */
  readonly restart: (options?: { readonly empty?: boolean }) => Promise<void>;
  readonly stop: () => Promise<void>;
}

export interface StartNacosOptions {
  /** Turn on OpenAPI auth with these admin credentials (a local rnacos: implies `controlled`). */
  readonly auth?: { readonly username: string; readonly password: string };
  /**
   * A server the test can pause, restart and empty: a local rnacos, whatever the source of the other
   * tests. A container's mapped ports change when it starts again, so that a Docker Nacos cannot be
   * restarted under its clients, and a running server (NACOS_ADDR) is not ours to stop.
   */
  readonly controlled?: boolean;
}

export async function startNacos(options: StartNacosOptions = {}): Promise<RunningNacos> {
  const facts = await currentFacts();
  if (options.controlled === true || options.auth !== undefined) {
    if (facts.rnacos === undefined)
      throw new Error(
        'this test stops, restarts or secures its Nacos server, which needs a local rnacos: install Rust (cargo) and ' +
          'run `node test/nacos/source.mjs --ensure` (pnpm test does it first)',
      );
    return startRnacos(facts.rnacos, options);
  }
  const source = chooseNacosSource(facts);
  switch (source.kind) {
    case 'env':
      return {
        addr: source.addr,
        grpcAddr: plus1000(source.addr),
        source: 'env',
        pause: unsupported,
        restart: unsupported,
        stop: async () => {},
      };
    case 'docker':
      return startContainer();
    case 'rnacos':
      return startRnacos(source.path, options);
    case 'build-rnacos':
      throw new Error('rnacos is not built yet: run `node test/nacos/source.mjs --ensure` (pnpm test does it first)');
    default:
      throw new Error(source.message);
  }
}

async function unsupported(): Promise<void> {
  throw new Error('pause() and restart() need a local rnacos: start it with startNacos({ controlled: true })');
}

async function startContainer(): Promise<RunningNacos> {
  const { GenericContainer, Wait } = await import('testcontainers');
  const container = await new GenericContainer(NACOS_IMAGE)
    .withEnvironment({ MODE: 'standalone', NACOS_AUTH_ENABLE: 'false' })
    .withExposedPorts(8848, 9848)
    .withWaitStrategy(Wait.forLogMessage('Nacos started successfully'))
    .start();
  return {
    addr: `${container.getHost()}:${container.getMappedPort(8848)}`,
    // mapped ports are not 1000 apart: clients of the container need the gRPC address given
    grpcAddr: `${container.getHost()}:${container.getMappedPort(9848)}`,
    source: 'docker',
    pause: unsupported,
    restart: unsupported,
    stop: async () => {
      await container.stop();
    },
  };
}

async function startRnacos(binary: string, options: StartNacosOptions): Promise<RunningNacos> {
  const httpPort = await freePortPair(1000);
  const grpcPort = httpPort + 1000;
  const dir = await mkdtemp(join(tmpdir(), 'lossless-rnacos-'));
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    RNACOS_SDK_HOST: '127.0.0.1',
    RNACOS_CONSOLE_HOST: '127.0.0.1',
    RNACOS_HTTP_PORT: String(httpPort),
    RNACOS_GRPC_PORT: String(grpcPort),
    RNACOS_RAFT_NODE_ADDR: `127.0.0.1:${grpcPort}`,
    RNACOS_HTTP_CONSOLE_PORT: '0',
    RNACOS_DATA_DIR: join(dir, 'data'),
    RNACOS_CONFIG_DB_DIR: join(dir, 'db'),
    RNACOS_ENABLE_METRICS: 'false',
    RNACOS_HTTP_WORKERS: '2',
    ...(options.auth
      ? {
          RNACOS_ENABLE_OPEN_API_AUTH: 'true',
          // the wait below polls the login: rnacos' default limit (100 a minute) would lock it out
          RNACOS_API_LOGIN_ONE_MINUTE_LIMIT: '100000',
          RNACOS_INIT_ADMIN_USERNAME: options.auth.username,
          RNACOS_INIT_ADMIN_PASSWORD: options.auth.password,
        }
      : {}),
  };
  const addr = `127.0.0.1:${httpPort}`;
  let child: ChildProcess | undefined;
  let output = '';
  const launch = async (): Promise<void> => {
    output = '';
    child = spawn(binary, [], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.on('data', (d: Buffer) => {
      output = (output + d.toString()).slice(-4000);
    });
    child.stderr?.on('data', (d: Buffer) => {
      output = (output + d.toString()).slice(-4000);
    });
    const exited = new Promise<never>((_, reject) =>
      child?.once('exit', (code) =>
        reject(new Error(`rnacos exited with code ${code} before it answered:\n${output}`)),
      ),
    );
    await Promise.race([waitHttp(addr, 20_000, () => output), exited]);
    // rnacos creates its first user 0.5 s after it starts if its raft node leads by then, else once
    // more 10 s later, and never again: wait for a working login, and past 15 s start afresh
    if (options.auth) await Promise.race([waitLogin(addr, options.auth, 15_000, () => output), exited]);
    child.removeAllListeners('exit');
  };
  const halt = async (): Promise<void> => {
    const c = child;
    child = undefined;
    if (c === undefined || c.exitCode !== null) return;
    const gone = new Promise((resolve) => c.once('exit', resolve));
    c.kill('SIGKILL');
    await gone;
  };
  const wipe = async (): Promise<void> => {
    await rm(join(dir, 'data'), { recursive: true, force: true });
    await rm(join(dir, 'db'), { recursive: true, force: true });
  };
  // rnacos sometimes misses its first user (no raft leader in time, on a busy machine): up to two
  // fresh starts
  const failures: string[] = [];
  while (failures.length < 3) {
    try {
      await launch();
      break;
    } catch (error) {
      failures.push((error as Error).message);
      await halt();
      await wipe();
    }
  }
  if (failures.length === 3) throw new Error(`rnacos did not start 3 times:\n${failures.join('\n---\n')}`);
  return {
    addr,
    grpcAddr: `127.0.0.1:${grpcPort}`,
    source: 'rnacos',
    pause: halt,
    restart: async (restartOptions = {}) => {
      await halt();
      if (restartOptions.empty) await wipe();
      await launch();
    },
    stop: async () => {
      await halt();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Resolves once the Nacos HTTP API at addr answers (any status below 500). */
export async function waitHttp(addr: string, timeoutMs: number, output: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(`http://${addr}/nacos/v1/ns/instance/list?serviceName=lossless-probe`);
      await res.text();
      // any answer will do: with auth on, the list is refused (403) until a login
      if (res.status < 500) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`Nacos at ${addr} did not answer within ${timeoutMs} ms:\n${output()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function waitLogin(
  addr: string,
  auth: { username: string; password: string },
  timeoutMs: number,
  output: () => string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await fetch(`http://${addr}/nacos/v1/auth/login`, {
      method: 'POST',
      body: new URLSearchParams(auth),
    }).catch(() => undefined);
    const body = (await res?.text()) ?? 'no answer';
    if (res?.status === 200) return;
    if (Date.now() > deadline)
      throw new Error(
        `Nacos at ${addr} did not accept its admin login within ${timeoutMs} ms (last answer ${res?.status}: ${body.slice(0, 200)}):\n${output()}`,
      );
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** The gRPC port of a server, for `grpcPort` (a Docker container's mapped ports are not 1000 apart). */
export function grpcPortOf(nacos: Pick<RunningNacos, 'grpcAddr'>): number {
  return Number(nacos.grpcAddr.slice(nacos.grpcAddr.lastIndexOf(':') + 1));
}

function plus1000(addr: string): string {
  const i = addr.lastIndexOf(':');
  return `${addr.slice(0, i)}:${Number(addr.slice(i + 1)) + 1000}`;
}

/** A free port p on 127.0.0.1 such that p + offset is free too (Nacos' gRPC port is HTTP + 1000). */
export async function freePortPair(offset: number): Promise<number> {
  return freePortPairOn('127.0.0.1', offset);
}

/** freePortPair() on another loopback address (127.0.0.2...). */
export async function freePortPairOn(host: string, offset: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = createServer();
      s.once('error', reject);
      s.listen(0, host, () => {
        const { port } = s.address() as import('node:net').AddressInfo;
        s.close(() => resolve(port));
      });
    });
    if (port + offset > 65535) continue;
    if (await isFree(port + offset, host)) return port;
  }
  throw new Error(`no free port p with p + ${offset} free on ${host} after 50 tries`);
}

/** True when a server can listen on host:port now (also: when the host is an address of this machine). */
export function isFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, host, () => s.close(() => resolve(true)));
  });
}

/** Distinct free TCP ports on 127.0.0.1. */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<import('node:net').Server>((resolve, reject) => {
          const s = createServer();
          s.once('error', reject);
          s.listen(0, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as import('node:net').AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}
