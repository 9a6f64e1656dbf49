// startNacosCluster(): rnacos as a raft cluster on loopback, for the tests where a Nacos node dies.
// Each node binds its own loopback address (127.0.0.2, .3, .4 where the system allows it, as Linux
// does; else all on 127.0.0.1) on free ports, its gRPC port (also its raft address) = HTTP + 1000,
// console off, data in a temporary folder. The first node initialises the cluster, the others join
// it; the cluster is handed over once every node follows one leader and a write made through one node
// reads back on every other.

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePortPairOn, isFree, waitHttp } from './server.ts';
// @ts-expect-error -- plain ESM helper shared with the install step
import { rnacosPath } from './source.mjs';

/** How long a joining node may take to become a voting member before the cluster is started again. */
const JOIN_TIMEOUT_MS = 8000;

/** Why a cluster cannot be started here (no rnacos built), else undefined. */
export function clusterSkipReason(): string | undefined {
  return rnacosPath() === undefined
    ? 'the cluster tests run rnacos nodes and rnacos is not built: run `node test/nacos/source.mjs --ensure` (it builds rnacos whenever cargo is there), or `cargo install rnacos --version 0.8.8 --locked --root "$LOSSLESS_TOOLS_DIR/rnacos"`'
    : undefined;
}

/** What one node's raft says of itself (GET /nacos/v1/raft/metrics, openraft's RaftMetrics). */
export interface RaftView {
  readonly id: number;
  readonly state: string;
  readonly current_term: number;
  readonly last_log_index: number | null;
  readonly last_applied: number | null;
  readonly current_leader: number | null;
  readonly membership_config?: { readonly members?: number[]; readonly members_after_consensus?: number[] | null };
}

export interface NacosNode {
  /** Raft node id: 1, 2, 3... */
  readonly id: number;
  readonly host: string;
  /** host:port of the HTTP API. */
  readonly addr: string;
  /** host:port of the gRPC API (HTTP port + 1000), also the node's raft address. */
  readonly grpcAddr: string;
  readonly running: () => boolean;
}

export interface NacosCluster {
  readonly nodes: readonly NacosNode[];
  /** The nodes' HTTP addresses, for `nacos://${servers.join(',')}`. */
  readonly servers: readonly string[];
  /** Time from the first spawn until every node followed one leader and a write had replicated, in ms. */
  readonly formedInMs: number;
  /** Raft metrics of node i, or undefined when it does not answer. */
  readonly raft: (i: number) => Promise<RaftView | undefined>;
  /** The leader's index in `nodes`, as the running nodes agree on it; undefined while there is none. */
  readonly leader: () => Promise<number | undefined>;
  /** SIGKILL of node i (index in `nodes`). */
  readonly kill: (i: number) => Promise<void>;
  /** Starts node i again, same ports and data; resolves once it follows the leader and has caught up. */
  readonly restart: (i: number) => Promise<void>;
  readonly stop: () => Promise<void>;
}

export interface ClusterOptions {
  readonly nodes?: number;
  /** Limit for the cluster to form, in ms. Default 60000. */
  readonly timeoutMs?: number;
}

export async function startNacosCluster(options: ClusterOptions = {}): Promise<NacosCluster> {
  const count = options.nodes ?? 3;
  const timeoutMs = options.timeoutMs ?? 60_000;
  const binary = rnacosPath() as string | undefined;
  if (binary === undefined) throw new Error(clusterSkipReason());
  const dir = await mkdtemp(join(tmpdir(), 'lossless-rnacos-cluster-'));
  const hosts = await loopbackHosts(count);
  type Spec = { id: number; host: string; http: number; grpc: number; data: string };
  const pickSpecs = async (): Promise<Spec[]> => {
    const picked: Spec[] = [];
    for (let i = 0; i < count; i++) {
      const host = hosts[i] as string;
      let http = await freePortPairOn(host, 1000);
      // on one shared address the ports must differ too
      while (picked.some((s) => s.host === host && (s.http === http || s.grpc === http || s.http === http + 1000)))
        http = await freePortPairOn(host, 1000);
      picked.push({ id: i + 1, host, http, grpc: http + 1000, data: join(dir, `node${i + 1}`) });
    }
    return picked;
  };
  const specs = await pickSpecs();
  const first = (): Spec => specs[0] as Spec;
  const envOf = (s: (typeof specs)[number]): NodeJS.ProcessEnv => ({
    PATH: process.env.PATH,
    // its own messages, not a line per HTTP request (the waits below poll)
    RUST_LOG: 'info,actix_web::middleware::logger=warn',
    RNACOS_SDK_HOST: s.host,
    RNACOS_CONSOLE_HOST: s.host,
    RNACOS_HTTP_PORT: String(s.http),
    RNACOS_GRPC_PORT: String(s.grpc),
    RNACOS_HTTP_CONSOLE_PORT: '0',
    RNACOS_DATA_DIR: join(s.data, 'data'),
    RNACOS_CONFIG_DB_DIR: join(s.data, 'db'),
    RNACOS_ENABLE_METRICS: 'false',
    RNACOS_HTTP_WORKERS: '2',
    RNACOS_RAFT_NODE_ID: String(s.id),
    RNACOS_RAFT_NODE_ADDR: `${s.host}:${s.grpc}`,
    // the first node makes a one-node cluster; the others ask it to let them in (only while their
    // raft log is empty: a restarted node is a member already)
    ...(s.id === first().id
      ? { RNACOS_RAFT_AUTO_INIT: 'true' }
      : { RNACOS_RAFT_AUTO_INIT: 'false', RNACOS_RAFT_JOIN_ADDR: `${first().host}:${first().grpc}` }),
  });

  const children: (ChildProcess | undefined)[] = specs.map(() => undefined);
  const outputs: string[] = specs.map(() => '');
  // rnacos 0.8.8 sometimes applies its first raft entries before its state machine is wired up (a
  // panic in raftapply.rs, "Mailbox has closed" afterwards): the node answers but can take no one in
  const panics: boolean[] = specs.map(() => false);
  /** The lines around each node's panic, which its later output would push out of `outputs`. */
  const panicTexts: string[] = specs.map(() => '');
  const launch = async (i: number): Promise<void> => {
    const s = specs[i] as (typeof specs)[number];
    outputs[i] = '';
    panics[i] = false;
    const child = spawn(binary, [], { cwd: dir, env: envOf(s), stdio: ['ignore', 'pipe', 'pipe'] });
    children[i] = child;
    const keep = (d: Buffer): void => {
      if (children[i] !== child) return; // a killed process' last words
      const text = d.toString();
      if (text.includes(' panicked at ')) {
        panics[i] = true;
        const at = text.indexOf(' panicked at ');
        panicTexts[i] = text.slice(Math.max(0, at - 300), at + 700);
      }
      outputs[i] = (outputs[i] + text).slice(-4000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const exited = new Promise<never>((_, reject) =>
      child.once('exit', (code) =>
        reject(new Error(`rnacos node ${s.id} exited with code ${code} before it answered:\n${outputs[i]}`)),
      ),
    );
    exited.catch(() => {});
    await Promise.race([waitHttp(`${s.host}:${s.http}`, 20_000, () => outputs[i] as string), exited]);
    child.removeAllListeners('exit');
  };
  const halt = async (i: number): Promise<void> => {
    const c = children[i];
    children[i] = undefined;
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise((resolve) => c.once('exit', resolve));
    c.kill('SIGKILL');
    await gone;
  };

  const nodeOf = (s: Spec, i: number): NacosNode => ({
    id: s.id,
    host: s.host,
    addr: `${s.host}:${s.http}`,
    grpcAddr: `${s.host}:${s.grpc}`,
    running: () => children[i] !== undefined,
  });
  const nodes: NacosNode[] = specs.map(nodeOf);
  const raft = async (i: number): Promise<RaftView | undefined> => {
    const node = nodes[i] as NacosNode;
    try {
      const res = await fetch(`http://${node.addr}/nacos/v1/raft/metrics`, { signal: AbortSignal.timeout(2000) });
      if (res.status !== 200) {
        await res.text();
        return undefined;
      }
      return (await res.json()) as RaftView;
    } catch {
      return undefined;
    }
  };
  const running = (): number[] => nodes.flatMap((n, i) => (n.running() ? [i] : []));
  const leader = async (): Promise<number | undefined> => {
    const views = await Promise.all(running().map((i) => raft(i)));
    const leaders = new Set(views.map((v) => v?.current_leader ?? undefined));
    if (leaders.size !== 1) return undefined;
    const [id] = leaders;
    const index = specs.findIndex((s) => s.id === id);
    return index >= 0 && nodes[index]?.running() ? index : undefined;
  };
  /**
   * Every running node answers, follows one leader, counts every running node as a voting member,
   * and has applied the log up to `minApplied`.
   */
  const settled = async (minApplied = 0): Promise<boolean> => {
    const up = running();
    const views = await Promise.all(up.map((i) => raft(i)));
    if (views.some((v) => v === undefined)) return false;
    const ids = new Set(views.map((v) => v?.current_leader));
    if (ids.size !== 1 || [...ids][0] === null) return false;
    return views.every(
      (v) =>
        (v?.last_applied ?? -1) >= minApplied &&
        up.every((i) => v?.membership_config?.members?.includes((specs[i] as (typeof specs)[number]).id) === true),
    );
  };
  const until = async (check: () => Promise<boolean>, what: string, ms: number): Promise<void> => {
    const deadline = Date.now() + ms;
    while (!(await check())) {
      const panicked = panics.findIndex((p, i) => p && children[i] !== undefined);
      if (panicked >= 0)
        throw new Error(`rnacos node ${panicked + 1} panicked: ${panicTexts[panicked]}\n...\n${outputs[panicked]}`);
      if (Date.now() > deadline)
        throw new Error(
          `the rnacos cluster did not ${what} within ${ms} ms; raft: ${JSON.stringify(
            await Promise.all(nodes.map((_, i) => raft(i))),
          )}\n${outputs.map((o, i) => `node ${i + 1}: ${o.slice(-800)}`).join('\n')}`,
        );
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };

  const form = async (): Promise<void> => {
    // the first node leads before the others ask to join it
    await launch(0);
    await until(async () => (await raft(0))?.current_leader === first().id, 'elect its first leader', timeoutMs);
    // one at a time: raft changes its membership one change at a time, and a join that races
    // another is left a non-voter
    for (let i = 1; i < count; i++) {
      await launch(i);
      await until(() => settled(), `take node ${i + 1} in`, JOIN_TIMEOUT_MS);
    }
    // a write through the last node, read back through every node: the cluster replicates
    const dataId = `lossless-cluster-check-${process.pid}`;
    const content = String(Date.now());
    const last = nodes[count - 1] as NacosNode;
    await until(
      async () => (await configWrite(last.addr, dataId, content).catch(() => false)) === true,
      'accept a write',
      timeoutMs,
    );
    await until(
      async () =>
        (await Promise.all(nodes.map((n) => configRead(n.addr, dataId).catch(() => undefined)))).every(
          (c) => c === content,
        ),
      'replicate a write',
      timeoutMs,
    );
  };

  const started = Date.now();
  const failures: string[] = [];
  for (let attempt = 1; ; attempt++) {
    try {
      await form();
      break;
    } catch (error) {
      await Promise.all(specs.map((_, i) => halt(i)));
      failures.push((error as Error).message);
      // a node that panicked or a join that was lost: start again from nothing, twice at most
      if (attempt === 3) {
        await rm(dir, { recursive: true, force: true });
        throw new Error(`the rnacos cluster did not form in 3 attempts:\n${failures.join('\n---\n')}`);
      }
      await Promise.all(specs.map((s) => rm(s.data, { recursive: true, force: true })));
      // new ports too: another process of this machine may have taken one of them since they were
      // found free (every attempt then fails the same way at once)
      specs.splice(0, specs.length, ...(await pickSpecs()));
      nodes.splice(0, nodes.length, ...specs.map(nodeOf));
    }
  }
  const formedInMs = Date.now() - started;

  return {
    nodes,
    servers: nodes.map((n) => n.addr),
    formedInMs,
    raft,
    leader,
    kill: (i) => halt(i),
    restart: async (i) => {
      const lead = await leader();
      const applied = lead === undefined ? 0 : ((await raft(lead))?.last_applied ?? 0);
      for (let attempt = 1; ; attempt++) {
        await launch(i);
        try {
          await until(() => settled(applied), `take node ${i + 1} back`, timeoutMs);
          return;
        } catch (error) {
          // the same start-up race as above; its data is kept this time
          if (!panics[i] || attempt === 3) throw error;
          await halt(i);
        }
      }
    },
    stop: async () => {
      await Promise.all(specs.map((_, i) => halt(i)));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** 127.0.0.2, .3... when this system answers on them (Linux: all of 127.0.0.0/8); else 127.0.0.1 each. */
async function loopbackHosts(count: number): Promise<string[]> {
  const own = Array.from({ length: count }, (_, i) => `127.0.0.${i + 2}`);
  // port 0: only whether the address can be bound at all
  const usable = await Promise.all(own.map((host) => isFree(0, host)));
  return usable.every(Boolean) ? own : own.map(() => '127.0.0.1');
}

/** Publishes a config through node addr (a raft write); true when the node accepted it. */
export async function configWrite(addr: string, dataId: string, content: string): Promise<boolean> {
  const res = await fetch(`http://${addr}/nacos/v1/cs/configs`, {
    method: 'POST',
    body: new URLSearchParams({ dataId, group: 'DEFAULT_GROUP', content }),
    signal: AbortSignal.timeout(3000),
  });
  return res.status === 200 && (await res.text()).trim() === 'true';
}

/** The config as node addr holds it, or undefined. */
export async function configRead(addr: string, dataId: string): Promise<string | undefined> {
  const res = await fetch(
    `http://${addr}/nacos/v1/cs/configs?${new URLSearchParams({ dataId, group: 'DEFAULT_GROUP' })}`,
    {
      signal: AbortSignal.timeout(3000),
    },
  );
  const text = await res.text();
  return res.status === 200 ? text : undefined;
}
