// rnacos as a 3-node raft cluster on loopback (cluster.ts): a registration made through one node is
// listed by the others; with a node killed the others answer and take registrations, and a client
// given every node keeps its instance registered; the restarted node catches up.

import type { Instance } from '@lossless/core';
import { NacosRegistry } from '@lossless/nacos';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../support.js';
import { clusterSkipReason, type NacosCluster, startNacosCluster } from './cluster.js';

const SKIP = clusterSkipReason();
if (SKIP !== undefined) console.warn(`test/nacos/cluster.test.ts skipped: ${SKIP}`);

let n = 0;
const fresh = () => `cluster-svc-${process.pid}-${++n}`;

/**
 * `ip:port` of the instances node `addr` lists for `service`, unhealthy ones marked `ip:port (unhealthy)`;
 * undefined when the node does not answer.
 */
async function listedBy(addr: string, service: string): Promise<string[] | undefined> {
  try {
    const res = await fetch(
      `http://${addr}/nacos/v1/ns/instance/list?${new URLSearchParams({ serviceName: service, healthyOnly: 'false' })}`,
      { signal: AbortSignal.timeout(2000) },
    );
    if (res.status !== 200) {
      await res.text();
      return undefined;
    }
    const body = (await res.json()) as { hosts?: { ip: string; port: number; healthy: boolean }[] };
    return (body.hosts ?? []).map((h) => `${h.ip}:${h.port}${h.healthy ? '' : ' (unhealthy)'}`).sort();
  } catch {
    return undefined;
  }
}

const instance = (service: string, port: number): Instance => ({
  service,
  id: `127.0.0.1:${port}`,
  ip: '127.0.0.1',
  port,
  weight: 1,
  enabled: true,
  healthy: true,
  metadata: {},
});

describe.skipIf(SKIP !== undefined)('rnacos as a 3-node raft cluster', () => {
  let cluster: NacosCluster;
  const registries: NacosRegistry[] = [];
  const registry = (servers: readonly string[]): NacosRegistry => {
    const r = new NacosRegistry({ servers, requestTimeoutMs: 2000 });
    registries.push(r);
    return r;
  };

  beforeAll(async () => {
    cluster = await startNacosCluster({ nodes: 3 });
  }, 90_000);
  afterAll(async () => {
    await Promise.all(registries.map((r) => r.close()));
    await cluster?.stop();
  });

  it('elects a leader, and a registration made through one node is listed by every node', async ({ annotate }) => {
    expect(cluster.servers).toHaveLength(3);
    expect(new Set(cluster.servers).size).toBe(3);
    expect(await cluster.leader()).toBeDefined();
    const service = fresh();
    const first = cluster.nodes[0]!;
    await registry([first.addr]).register(instance(service, 41001));
    const registeredAt = Date.now();
    for (const node of cluster.nodes)
      await until(
        async () => (await listedBy(node.addr, service))?.includes('127.0.0.1:41001') === true,
        `node ${node.id} to list the instance registered through node ${first.id}`,
      );
    await annotate(
      `the cluster formed (leader elected, a config write replicated) ${cluster.formedInMs} ms after the first spawn on ${cluster.nodes
        .map((n) => n.addr)
        .join(', ')}; a registration through node 1 listed by all three after ${Date.now() - registeredAt} ms`,
      'measured',
    );
  });

  it('with a node killed the others answer and take registrations; the restarted node catches up', async ({
    annotate,
  }) => {
    // the leader goes: the hardest case (a new election)
    const victim = (await cluster.leader()) as number;
    expect(victim).toBeDefined();
    const back = cluster.nodes[victim]!;
    const survivors = cluster.nodes.filter((_, i) => i !== victim);
    // rnacos routes each service's instances to one node by a hash of its name: with eight services,
    // some are all but certain to belong to the node that dies
    const services = Array.from({ length: 8 }, () => fresh());
    // a client given every node, as nacos://a,b,c: its instances must outlive any one node
    const everywhere = registry(cluster.servers);
    for (const service of services) await everywhere.register(instance(service, 41002));
    for (const node of cluster.nodes)
      for (const service of services)
        await until(async () => (await listedBy(node.addr, service))?.includes('127.0.0.1:41002') === true, 'the list');

    await cluster.kill(victim);
    const killedAt = Date.now();
    // from now on, what the survivors say of the instances registered with every node, twice a second
    let unhealthySeen = 0;
    let firstUnhealthy: number | undefined;
    let lastUnhealthy: number | undefined;
    const missing: string[] = [];
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        for (const node of survivors)
          for (const service of services) {
            const list = await listedBy(node.addr, service);
            const at = Date.now() - killedAt;
            if (list?.includes('127.0.0.1:41002 (unhealthy)') === true) {
              unhealthySeen++;
              firstUnhealthy ??= at;
              lastUnhealthy = at;
            } else if (list?.includes('127.0.0.1:41002') !== true)
              missing.push(`${at} ms: node ${node.id} lists ${JSON.stringify(list)} for ${service}`);
          }
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    })();

    try {
      // the survivors answer reads at once
      for (const node of survivors) expect(await listedBy(node.addr, services[0]!)).toBeDefined();
      await until(async () => (await cluster.leader()) !== undefined, 'a new leader', 20_000);
      const electedAfter = Date.now() - killedAt;

      // a new registration per service through one survivor, retried (every 250 ms) until accepted
      // and listed by both survivors
      const late = registry([survivors[0]!.addr]);
      const acceptedAfter = new Map<string, number>();
      let firstRefusal: string | undefined;
      await until(
        async () => {
          await Promise.all(
            services
              .filter((service) => !acceptedAfter.has(service))
              .map(async (service) => {
                try {
                  await late.register(instance(service, 41003));
                } catch (error) {
                  firstRefusal ??= (error as Error).message;
                  return;
                }
                const lists = await Promise.all(survivors.map((node) => listedBy(node.addr, service)));
                if (lists.every((l) => l?.includes('127.0.0.1:41003') === true))
                  acceptedAfter.set(service, Date.now() - killedAt);
              }),
          );
          if (acceptedAfter.size === services.length) return true;
          await new Promise((resolve) => setTimeout(resolve, 250));
          return false;
        },
        'the survivors to take a registration of every service',
        40_000,
      );
      const times = [...acceptedAfter.values()].sort((a, b) => a - b);
      const refused = times.filter((t) => t > electedAfter + 1000).length;
      // the instances registered with every node are healthy on both survivors again: their
      // heartbeats reach a live node
      await until(
        async () =>
          (
            await Promise.all(survivors.flatMap((node) => services.map((service) => listedBy(node.addr, service))))
          ).every((l) => l?.includes('127.0.0.1:41002') === true),
        'the instances registered with every node to be healthy on both survivors',
        30_000,
      );
      const healthyAfter = Date.now() - killedAt;
      watching = false;
      await watcher;
      // never dropped by a survivor (at worst marked unhealthy for a while)
      expect(missing).toEqual([]);

      const restartAt = Date.now();
      await cluster.restart(victim);
      const raftBackAfter = Date.now() - restartAt;
      await until(
        async () =>
          (await Promise.all(services.map((service) => listedBy(back.addr, service)))).every(
            (list) => list?.includes('127.0.0.1:41002') === true && list.includes('127.0.0.1:41003'),
          ),
        `the restarted node ${back.id} to list the registrations made while it was down`,
        30_000,
      );
      const caughtUpAfter = Date.now() - restartAt;
      // and a registration through it reaches the others
      await registry([back.addr]).register(instance(services[0]!, 41004));
      await until(
        async () =>
          (await Promise.all(cluster.nodes.map((node) => listedBy(node.addr, services[0]!)))).every(
            (l) => l?.includes('127.0.0.1:41004') === true,
          ),
        'a registration through the restarted node to reach every node',
        30_000,
      );
      await annotate(
        `leader (node ${back.id}) SIGKILLed: a new leader after ${electedAfter} ms; registrations through a survivor accepted and listed by both survivors after ${times[0]}–${times.at(-1)} ms (${refused} of ${services.length} services refused for longer than the election${firstRefusal === undefined ? '' : `: "${firstRefusal.slice(0, 100)}"`}); instances registered with every node never dropped, ${unhealthySeen === 0 ? 'never unhealthy' : `seen unhealthy from ${firstUnhealthy} to ${lastUnhealthy} ms`}, healthy everywhere after ${healthyAfter} ms; the restarted node followed the leader ${raftBackAfter} ms after its spawn and listed what was registered meanwhile after ${caughtUpAfter} ms`,
        'measured',
      );
    } finally {
      watching = false;
      await watcher;
    }
  }, 120_000);
});
