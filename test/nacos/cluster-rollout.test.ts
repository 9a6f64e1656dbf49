// A rolling restart on a Nacos cluster that loses a node: rnacos as a 3-node raft cluster on loopback,
// three express example processes registered over gRPC (`nacos://a,b,c`, each listing a different node
// first, so each is connected to its own node), and a lossless client (connected to the second node)
// under bounded constant load. The providers are restarted one by one (the new process first, then
// SIGTERM to the old one); after the first, the node the second provider and the client are
// connected to is SIGKILLed: their connections move to a live node, where the provider's registration
// is made again; the second provider is restarted while that node is down, then the node is
// restarted, then the third provider. No request fails, every drain ends with nothing cut, and every
// provider's registration is listed by the live nodes after its connection moved.

import { createClient, type LosslessClient } from '@lossless/client';
import { createNacosRegistry } from '@lossless/nacos';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { launchExample, listening, type Running, type RunningExample } from '../process/example.js';
import { steadyLoad } from '../reliability/load.js';
import { until } from '../support.js';
import { clusterSkipReason, type NacosCluster, startNacosCluster } from './cluster.js';

const SKIP = clusterSkipReason();
if (SKIP !== undefined) console.warn(`test/nacos/cluster-rollout.test.ts skipped: ${SKIP}`);

const SERVICE = `rollout${process.pid}`; // a host name without a dot: the client treats it as a service

/** Ports of the instances node `addr` lists for the service; undefined when it does not answer. */
async function listedBy(addr: string): Promise<number[] | undefined> {
  try {
    const res = await fetch(`http://${addr}/nacos/v1/ns/instance/list?serviceName=${SERVICE}`, {
      signal: AbortSignal.timeout(2000),
    });
    if (res.status !== 200) {
      await res.text();
      return undefined;
    }
    const body = (await res.json()) as { hosts?: { port: number }[] };
    return (body.hosts ?? []).map((h) => h.port).sort((a, b) => a - b);
  } catch {
    return undefined;
  }
}

describe.skipIf(SKIP !== undefined)('a rolling restart on a 3-node Nacos cluster that loses a node', () => {
  let cluster: NacosCluster;
  let client: LosslessClient | undefined;
  const children: Running[] = [];

  beforeAll(async () => {
    cluster = await startNacosCluster({ nodes: 3 });
  }, 90_000);
  afterAll(async () => {
    await cluster?.stop();
  });
  afterEach(async () => {
    await client?.close();
    for (const c of children.splice(0)) c.child.kill('SIGKILL');
  });

  /** `nacos://` with node `first` listed first: a new connection goes to it while it answers. */
  const urlFrom = (first: number): string => {
    const order = [first, ...[0, 1, 2].filter((i) => i !== first)];
    return `nacos://${order.map((i) => cluster.servers[i]).join(',')}`;
  };

  async function provider(node: number): Promise<RunningExample> {
    const launched = launchExample([
      ...['--registry', urlFrom(node), '--service', SERVICE],
      ...['--warmup-ms', '0', '--quiet-window-ms', '500', '--warmup-window-ms', '0'],
    ]);
    children.push(launched);
    return listening(launched, 30_000);
  }

  /** Every running node lists exactly these ports. */
  async function listedEverywhere(ports: number[], what: string, timeoutMs = 15_000): Promise<void> {
    const want = [...ports].sort((a, b) => a - b);
    const live = cluster.nodes.filter((n) => n.running()).map((n) => n.addr);
    await until(
      async () =>
        (await Promise.all(live.map(listedBy))).every((ports) => JSON.stringify(ports) === JSON.stringify(want)),
      `${what}: every live node to list ${want.join(', ')} (they list ${JSON.stringify(await Promise.all(live.map(listedBy)))})`,
      timeoutMs,
    );
  }

  /** Starts a replacement connected to `node`, then drains the old process with SIGTERM. */
  async function restart(old: RunningExample, node: number, others: RunningExample[]): Promise<RunningExample> {
    const next = await provider(node);
    await listedEverywhere(
      [...others, old, next].map((r) => r.port),
      'the replacement registered',
    );
    await until(
      () => (client?.instances(SERVICE) ?? []).some((i) => i.origin.endsWith(`:${next.port}`)),
      'the client to see the replacement',
    );
    old.child.kill('SIGTERM');
    const { code } = await old.exited;
    // a drain that cut a request in flight exits 1
    expect(code, `exit code of the provider on ${old.port}`).toBe(0);
    await listedEverywhere(
      [...others, next].map((r) => r.port),
      'the old process gone',
    );
    return next;
  }

  it('loses no request while a provider is restarted, a Nacos node is SIGKILLed, another restarted, and the node brought back', async ({
    annotate,
  }) => {
    let [a, b, c] = [await provider(0), await provider(1), await provider(2)];
    let movedMs = 0;
    await listedEverywhere([a.port, b.port, c.port], 'three providers');
    client = createClient({ registry: urlFrom(1), registrySchemes: { nacos: createNacosRegistry } });
    const cl = client;
    await until(() => cl.instances(SERVICE).length === 3, 'the client to see three instances', 15_000);

    const load = steadyLoad({ ratePerSec: 60, maxInFlight: 20, maxRequests: 12_000 }, async () => {
      const res = await cl.request(`http://${SERVICE}/hello`);
      await res.body.text();
      if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
      return res.statusCode;
    });
    try {
      await until(() => load.outcomes.length >= 60, 'a second of load');

      // 1. the provider connected to node 0
      a = await restart(a, 0, [b, c]);

      // 2. node 1 dies: the second provider and the client were connected to it
      const killedAt = Date.now();
      await cluster.kill(1);
      await until(
        () => b.logs().some((l) => /registry answers again/.test(l.msg ?? '')),
        'the second provider to be registered again through a live node',
        15_000,
      );
      movedMs = Date.now() - killedAt;
      await listedEverywhere([a.port, b.port, c.port], 'after the node was killed');
      const sentAtKill = load.sent();
      await until(() => load.sent() > sentAtKill + 60, 'load after the kill');

      // 3. the second provider restarted while its node is down: the new process connects to a live one
      b = await restart(b, 1, [a, c]);

      // 4. node 1 back: it catches up with what the others hold
      await cluster.restart(1);
      await listedEverywhere([a.port, b.port, c.port], 'the restarted node caught up', 20_000);

      // 5. the third provider
      c = await restart(c, 2, [a, b]);
      const sentAtEnd = load.sent();
      await until(() => load.sent() > sentAtEnd + 60, 'a last second of load');
    } finally {
      await load.stop();
    }
    const failed = load.outcomes.filter((o) => o.error !== undefined);
    await annotate(
      `cluster rollout: ${load.outcomes.length} requests, ${failed.length} failed; ` +
        `3 providers restarted; node 2 of 3 SIGKILLed (its provider registered again through a live node ${movedMs} ms later) and restarted`,
      'measured',
    );
    expect(failed.map((o) => o.error)).toEqual([]);
    expect(load.outcomes.length).toBeGreaterThan(300);
    // every node, the restarted one included, lists the three providers running now
    await listedEverywhere([a.port, b.port, c.port], 'at the end');
  }, 240_000);
});
