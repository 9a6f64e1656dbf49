// startJavaProbe(): a Java service's view of the same Nacos, for the interop tests. The probe
// (test/nacos/java/) runs the Java nacos-client in its own JVM and speaks JSON lines: commands on its
// stdin, events on its stdout (see Probe.java). Built by java-probe.mjs into the tools folder, once.
// Its logs, caches and home folder go to a temporary folder; it reports 127.0.0.1 as its own address,
// so that nothing it does leaves the loopback interface.

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// @ts-expect-error -- plain ESM helper shared with the install step
import { ensureProbe, javaSkipReason, nacosJavaVersion } from './java-probe.mjs';

/** Why the Java interop tests cannot run here, or undefined when `java` and `mvn` are there. */
export const JAVA_SKIP_REASON: string | undefined = javaSkipReason();
/** The nacos-client version the probe runs (LOSSLESS_NACOS_JAVA_VERSION, else 2.4.3). */
export const NACOS_JAVA_VERSION: string = nacosJavaVersion();

export interface JavaInstance {
  readonly ip: string;
  readonly port: number;
  readonly weight: number;
  readonly healthy: boolean;
  readonly enabled: boolean;
  readonly ephemeral: boolean;
  readonly clusterName: string;
  readonly serviceName: string;
  readonly metadata: Record<string, string>;
}

/** One line of the probe's stdout. `at` is the probe's wall clock, ms since the epoch. */
export type ProbeEvent =
  | { readonly event: 'ready'; readonly at: number; readonly clientVersion: string; readonly serverStatus: string }
  | {
      readonly event: 'instances';
      readonly at: number;
      readonly service: string;
      /** `subscribe`: the list once subscribed; `listener`: the client's listener fired; `list`: a direct read. */
      readonly source: 'subscribe' | 'listener' | 'list';
      readonly instances: readonly JavaInstance[];
      readonly id?: number;
    }
  | { readonly event: 'selected'; readonly at: number; readonly picks: Record<string, number>; readonly id?: number }
  | {
      readonly event: 'registered' | 'deregistered' | 'unserved' | 'bye';
      readonly at: number;
      readonly id?: number;
    }
  | { readonly event: 'error'; readonly at: number; readonly message: string; readonly id?: number };

export type ProbeCommand =
  | { readonly cmd: 'subscribe' | 'list'; readonly service: string }
  | {
      readonly cmd: 'register';
      readonly service: string;
      readonly ip?: string;
      readonly port: number;
      readonly weight?: number;
      readonly metadata?: Record<string, string>;
      /** Answer 200 "java" on ip:port (a JDK HTTP server started before registering). */
      readonly serve?: boolean;
    }
  | { readonly cmd: 'deregister'; readonly service: string; readonly ip?: string; readonly port: number }
  | { readonly cmd: 'unserve'; readonly port: number }
  | { readonly cmd: 'select'; readonly service: string; readonly count?: number };

export interface JavaProbe {
  readonly child: ChildProcess;
  /** The nacos-client version the probe reported. */
  readonly clientVersion: string;
  /** Every event so far, in order. */
  readonly events: () => readonly ProbeEvent[];
  /** Sends a command and resolves with its answer (rejects with the probe's error). */
  readonly send: <E extends ProbeEvent = ProbeEvent>(command: ProbeCommand, timeoutMs?: number) => Promise<E>;
  /** The first event, past or future, that matches. */
  readonly waitFor: <E extends ProbeEvent = ProbeEvent>(
    predicate: (event: ProbeEvent) => boolean,
    timeoutMs?: number,
    what?: string,
  ) => Promise<E>;
  /** Asks the probe to exit (it deregisters what it registered, as a Java service shutting down does). */
  readonly stop: () => Promise<void>;
  /** SIGKILL: no deregistration. */
  readonly kill: () => Promise<void>;
}

export interface JavaProbeOptions {
  /**
   * gRPC port minus HTTP port of the servers (Java's `nacos.server.grpc.port.offset`). Default 1000,
   * as Nacos and rnacos place it; a container's mapped ports need the real difference.
   */
  readonly grpcPortOffset?: number;
}

/**
 * Starts a probe connected to `servers` (HTTP addresses, `host:port`; the client looks for gRPC at
 * port + 1000). Resolves once its naming client is created.
 */
export async function startJavaProbe(
  servers: string | readonly string[],
  options: JavaProbeOptions = {},
): Promise<JavaProbe> {
  const classPath = ensureProbe() as string;
  const home = await mkdtemp(join(tmpdir(), 'lossless-java-'));
  const child = spawn(
    'java',
    [
      // small and quick to start: the probe does little
      '-Xmx128m',
      '-XX:+UseSerialGC',
      '-XX:TieredStopAtLevel=1',
      '-Djava.net.preferIPv4Stack=true',
      // everything the client writes to ~/logs/nacos and ~/nacos goes to the temporary folder
      `-Duser.home=${home}`,
      `-DJM.LOG.PATH=${join(home, 'logs')}`,
      `-DJM.SNAPSHOT.PATH=${home}`,
      '-Dnacos.logging.default.config.enabled=false',
      // the address the client reports for itself: the host's LAN address otherwise (metadata only,
      // but it would be looked up through the network interfaces)
      '-Dcom.alibaba.nacos.client.local.ip=127.0.0.1',
      `-Dnacos.server.grpc.port.offset=${options.grpcPortOffset ?? 1000}`,
      '-Dorg.slf4j.simpleLogger.defaultLogLevel=warn',
      '-cp',
      classPath,
      'lossless.probe.Probe',
      typeof servers === 'string' ? servers : servers.join(','),
    ],
    { cwd: home, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  const events: ProbeEvent[] = [];
  const waiters = new Set<() => void>();
  let stderr = '';
  let exited = false;
  const gone = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      for (const w of waiters) w();
      resolve();
    }),
  );
  let buffer = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    buffer += chunk;
    const lines = buffer.split('\n');
    buffer = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.startsWith('{')) continue;
      events.push(JSON.parse(line) as ProbeEvent);
    }
    for (const w of waiters) w();
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-4000);
  });

  const waitFor = <E extends ProbeEvent>(
    predicate: (event: ProbeEvent) => boolean,
    timeoutMs = 10_000,
    what = 'an event',
  ): Promise<E> =>
    new Promise<E>((resolve, reject) => {
      const check = (): void => {
        const found = events.find(predicate);
        if (found !== undefined) finish(() => resolve(found as E));
        else if (exited) finish(() => reject(new Error(`the Java probe exited while waiting for ${what}:\n${stderr}`)));
      };
      const timer = setTimeout(
        () =>
          finish(() =>
            reject(
              new Error(
                `timed out after ${timeoutMs} ms waiting for ${what} from the Java probe; its last events:\n${events
                  .slice(-5)
                  .map((e) => JSON.stringify(e))
                  .join('\n')}\n${stderr}`,
              ),
            ),
          ),
        timeoutMs,
      );
      const finish = (settle: () => void): void => {
        clearTimeout(timer);
        waiters.delete(check);
        settle();
      };
      waiters.add(check);
      check();
    });

  let nextId = 0;
  const send = async <E extends ProbeEvent>(command: ProbeCommand, timeoutMs = 10_000): Promise<E> => {
    const id = ++nextId;
    child.stdin.write(`${JSON.stringify({ ...command, id })}\n`);
    const answer = await waitFor((e) => 'id' in e && e.id === id, timeoutMs, `the answer to ${command.cmd}`);
    if (answer.event === 'error') throw new Error(`the Java probe failed ${command.cmd}: ${answer.message}`);
    return answer as E;
  };

  const cleanup = async (): Promise<void> => {
    await rm(home, { recursive: true, force: true });
  };
  const kill = async (): Promise<void> => {
    if (!exited) child.kill('SIGKILL');
    await gone;
    await cleanup();
  };
  const stop = async (): Promise<void> => {
    if (!exited) {
      child.stdin.end(`${JSON.stringify({ cmd: 'exit' })}\n`);
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await gone;
      clearTimeout(timer);
    }
    await cleanup();
  };

  try {
    const ready = await waitFor<Extract<ProbeEvent, { event: 'ready' }>>(
      (e) => e.event === 'ready',
      30_000,
      'the probe to start',
    );
    return { child, clientVersion: ready.clientVersion, events: () => events, send, waitFor, stop, kill };
  } catch (error) {
    await kill();
    throw error;
  }
}
