// Java services and lossless on one Nacos: the Java nacos-client (the probe, java.ts) against the same
// server as @lossless/nacos. The lossless client finds and calls Java instances and stops calling one
// soon after it deregisters; a Java subscriber sees a lossless provider only after its warm-up, with
// its metadata, weighs it as Java's own weighted selection does, and sees it leave before the process
// exits. Skipped, with the reason, without `java` and `mvn`.

import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createClient, type LosslessClient } from '@lossless/client';
import { createNacosRegistry } from '@lossless/nacos';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { launchExample, listening, type Running, startExample } from '../process/example.js';
import { until } from '../support.js';
import {
  JAVA_SKIP_REASON,
  type JavaInstance,
  type JavaProbe,
  NACOS_JAVA_VERSION,
  type ProbeEvent,
  startJavaProbe,
} from './java.js';
import { freePorts, type RunningNacos, startNacos } from './server.js';

/**
 * The weight a Java client sees on a warm lossless instance registered with the default weight:
 * Nacos' own default, and what Spring Cloud Alibaba registers (lossless weight 100 = Nacos 1.0).
 */
const EXPECTED_NODE_WEIGHT = 1;
/** What it sees while the instance's warm-up ramp starts: 10 % of it. */
const RAMP_FLOOR_WEIGHT = 0.1;

/** How soon the lossless client stops sending to a Java instance after its deregistration, in ms. */
const STOP_SENDING_WITHIN_MS = 1000;

if (JAVA_SKIP_REASON !== undefined) console.warn(`test/nacos/java-interop.test.ts skipped: ${JAVA_SKIP_REASON}`);

type Instances = Extract<ProbeEvent, { event: 'instances' }>;
type Selected = Extract<ProbeEvent, { event: 'selected' }>;

let n = 0;
const fresh = () => `java-interop-${process.pid}-${++n}`;
const port = (addr: string) => Number(addr.slice(addr.lastIndexOf(':') + 1));
const lists = (e: ProbeEvent, service: string): e is Instances => e.event === 'instances' && e.service === service;
const has = (e: Instances, p: number) => e.instances.some((i) => i.port === p);

describe.skipIf(JAVA_SKIP_REASON !== undefined)(
  `Java nacos-client ${NACOS_JAVA_VERSION} and lossless on one Nacos`,
  () => {
    let nacos: RunningNacos;
    let probe: JavaProbe;
    const children: Running[] = [];
    let client: LosslessClient | undefined;
    const url = () => `nacos://${nacos.addr}/?pollMs=200`;

    beforeAll(async () => {
      nacos = await startNacos();
      probe = await startJavaProbe(nacos.addr, { grpcPortOffset: port(nacos.grpcAddr) - port(nacos.addr) });
    }, 120_000);
    afterAll(async () => {
      await probe?.stop();
      await nacos?.stop();
    });
    afterEach(async () => {
      for (const c of children.splice(0)) c.child.kill('SIGKILL');
      await client?.destroy();
      client = undefined;
    });

    it.runIf(process.platform === 'linux')('the Java client talks to Nacos over loopback only', async () => {
      const service = fresh();
      await probe.send({ cmd: 'subscribe', service });
      const remotes = tcpPeersOf(probe.child.pid as number);
      // its gRPC connection, at least
      expect(remotes).toContain(nacos.grpcAddr.replace('localhost', '127.0.0.1'));
      for (const remote of remotes) expect(remote).toMatch(/^127\./);
    });

    it('the lossless client finds and calls Java instances, and stops calling one soon after it deregisters', async ({
      annotate,
    }) => {
      const service = fresh();
      const [leaving, staying] = (await freePorts(2)) as [number, number];
      for (const p of [leaving, staying])
        await probe.send({ cmd: 'register', service, port: p, weight: 1, serve: true, metadata: { lang: 'java' } });
      const c = createClient({ registry: url(), registrySchemes: { nacos: createNacosRegistry } });
      client = c;
      const first = await c.request(`http://${service}/`);
      expect(first.statusCode).toBe(200);
      expect(await first.body.text()).toBe('java');
      await until(() => c.service(service).endpoints.length === 2, 'the client to list both Java instances');

      // one call at a time, every 10 ms, noting which instance answered (at most 1000 calls)
      const served: { at: number; port: number }[] = [];
      let calling = true;
      let droppedAt: number | undefined;
      const caller = (async () => {
        for (let i = 0; calling && i < 1000; i++) {
          const at = Date.now();
          const res = await c.request(`http://${service}/`);
          await res.body.text();
          served.push({ at, port: Number(String(res.headers['x-served-by']).split(':')[1]) });
          if (droppedAt === undefined && !c.service(service).endpoints.some((e) => e.origin.endsWith(`:${leaving}`)))
            droppedAt = Date.now();
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
      })();
      let deregisteredAt = 0;
      try {
        await until(
          () => served.filter((s) => s.port === leaving).length >= 5,
          'calls to the instance that will leave',
        );
        deregisteredAt = (await probe.send({ cmd: 'deregister', service, port: leaving })).at;
        await until(() => droppedAt !== undefined, 'the client to drop the deregistered instance', 10_000);
        const after = served.length;
        await until(() => served.length >= after + 20, 'more calls');
      } finally {
        calling = false;
        await caller;
      }
      const late = served.filter((s) => s.port === leaving && s.at > deregisteredAt);
      const lastSentAfter = late.length === 0 ? 0 : (late.at(-1) as { at: number }).at - deregisteredAt;
      expect(served.every((s) => s.port === leaving || s.port === staying)).toBe(true);
      expect(lastSentAfter).toBeLessThanOrEqual(STOP_SENDING_WITHIN_MS);
      expect(served.at(-1)?.port).toBe(staying);
      await annotate(
        `after the Java deregistration: last call sent to it ${lastSentAfter} ms later (${late.length} calls), dropped from the client's list after ${(droppedAt as number) - deregisteredAt} ms (HTTP poll every 200 ms)`,
        'measured',
      );
    });

    it('a Java subscriber sees a lossless provider only after warm-up, with its metadata, and sees it leave before it exits', async ({
      annotate,
    }) => {
      const service = fresh();
      const subscribed = await probe.send<Instances>({ cmd: 'subscribe', service });
      expect(subscribed.instances).toEqual([]);
      const warmupMs = 2000;
      const spawnedAt = Date.now();
      const launched = launchExample(['--registry', url(), '--service', service, '--warmup-ms', String(warmupMs)]);
      children.push(launched);
      // while it warms up (its admin port answers already), Java lists nothing
      await until(() => launched.logs().some((l) => l.msg === 'admin server listening'), 'the admin server');
      const during = await probe.send<Instances>({ cmd: 'list', service });
      expect(during.at).toBeLessThan(spawnedAt + warmupMs);
      expect(during.instances).toEqual([]);

      const r = await listening(launched);
      const seen = await probe.waitFor<Instances>(
        (e) => lists(e, service) && has(e, r.port),
        10_000,
        'Java to see the lossless provider',
      );
      expect(seen.at).toBeGreaterThanOrEqual(spawnedAt + warmupMs);
      const before = probe.events().filter((e): e is Instances => lists(e, service) && e.at < seen.at);
      expect(before.every((e) => !has(e, r.port))).toBe(true);

      const instance = seen.instances.find((i) => i.port === r.port) as JavaInstance;
      expect(instance).toMatchObject({ ip: '127.0.0.1', healthy: true, enabled: true, ephemeral: true });
      expect(instance.clusterName).toBe('DEFAULT');
      // a new instance: the bottom of its warm-up ramp, raised by the provider itself on Nacos
      expect(instance.weight).toBeCloseTo(RAMP_FLOOR_WEIGHT, 5);
      expect(instance.metadata['lossless.weight-ramp']).toBe('provider');
      expect(Object.keys(instance.metadata).sort()).toEqual(
        expect.arrayContaining([
          'lossless.instance-id',
          'lossless.registered-at',
          'lossless.version',
          'lossless.warmup-ms',
        ]),
      );
      expect(Number(instance.metadata['lossless.registered-at'])).toBeGreaterThanOrEqual(spawnedAt + warmupMs);

      const termAt = Date.now();
      r.child.kill('SIGTERM');
      const gone = await probe.waitFor<Instances>(
        (e) => lists(e, service) && e.source === 'listener' && e.at > seen.at && !has(e, r.port),
        15_000,
        'Java to see the provider leave',
      );
      const { code, at: exitAt } = await r.exited;
      expect(code).toBe(0);
      expect(gone.at).toBeLessThan(exitAt);
      await annotate(
        `Java saw the provider ${seen.at - spawnedAt} ms after its spawn (warm-up ${warmupMs} ms), weight ${instance.weight}, metadata keys ${Object.keys(
          instance.metadata,
        )
          .sort()
          .join(
            ', ',
          )}; after SIGTERM it saw it leave after ${gone.at - termAt} ms, ${exitAt - gone.at} ms before the process exited`,
        'measured',
      );
    });

    it('a new lossless instance warms up for Java too: its weight rises from 0.1 to 1.0 in about ten steps', async ({
      annotate,
    }) => {
      const service = fresh();
      await probe.send({ cmd: 'subscribe', service });
      // steps of 500 ms: no shorter than rnacos' push batching, so Java sees most of them
      const windowMs = 5000;
      const r = await startExample(['--registry', url(), '--service', service, '--warmup-window-ms', String(windowMs)]);
      children.push(r);
      const first = await probe.waitFor<Instances>(
        (e) => lists(e, service) && has(e, r.port),
        10_000,
        'Java to see it',
      );
      const warm = await probe.waitFor<Instances>(
        (e) => lists(e, service) && (e.instances.find((i) => i.port === r.port)?.weight ?? 0) > 0.99,
        windowMs + 10_000,
        'Java to see it at full weight',
      );
      const weights = probe
        .events()
        .filter((e): e is Instances => lists(e, service) && e.at >= first.at && e.at <= warm.at)
        .map((e) => e.instances.find((i) => i.port === r.port)?.weight ?? 0);
      // Java first sees the weight of its first push, 0.5-1 s after the registration on rnacos (a
      // change goes out in the batch due 500 ms after it): the floor, or a step the ramp (one every
      // windowMs / 10) has taken by then; never more
      const registeredAt = Number(
        first.instances.find((i) => i.port === r.port)?.metadata['lossless.registered-at'] ?? Number.NaN,
      );
      const stepsTaken = Math.floor((first.at - registeredAt) / (windowMs / 10));
      expect(weights[0]).toBeGreaterThanOrEqual(RAMP_FLOOR_WEIGHT - 1e-6);
      expect(weights[0]).toBeLessThanOrEqual(Math.max(RAMP_FLOOR_WEIGHT, stepsTaken / 10) + 1e-6);
      expect(weights[0]).toBeLessThan(0.5);
      expect(weights.at(-1)).toBeCloseTo(EXPECTED_NODE_WEIGHT, 5);
      // never down, at least a few steps between (pushes may batch two steps into one)
      for (let i = 1; i < weights.length; i++) expect(weights[i]).toBeGreaterThanOrEqual(weights[i - 1] as number);
      expect(new Set(weights.map((w) => w.toFixed(2))).size).toBeGreaterThanOrEqual(4);
      expect(warm.at - first.at).toBeGreaterThanOrEqual(windowMs * 0.8);
      await annotate(
        `Java saw the weight go ${[...new Set(weights.map((w) => w.toFixed(2)))].join(' → ')} over ${warm.at - first.at} ms (window ${windowMs} ms; first seen ${first.at - registeredAt} ms after the registration)`,
        'measured',
      );
    });

    it("Java's weighted selection between a warm lossless instance and a Java instance at weight 1.0", async ({
      annotate,
    }) => {
      const service = fresh();
      const r = await startExample(['--registry', url(), '--service', service, '--warmup-window-ms', '500']);
      children.push(r);
      const [javaPort] = (await freePorts(1)) as [number];
      await probe.send({ cmd: 'register', service, port: javaPort, weight: 1 });
      await probe.send({ cmd: 'subscribe', service });
      const both = await probe.waitFor<Instances>(
        (e) =>
          lists(e, service) && has(e, javaPort) && (e.instances.find((i) => i.port === r.port)?.weight ?? 0) > 0.99,
        10_000,
        'Java to list both instances, the lossless one warm',
      );
      const node = both.instances.find((i) => i.port === r.port) as JavaInstance;
      expect(node.weight).toBeCloseTo(EXPECTED_NODE_WEIGHT, 5);
      const count = 100_000;
      const { picks } = await probe.send<Selected>({ cmd: 'select', service, count }, 30_000);
      const nodeShare = (picks[`127.0.0.1:${r.port}`] ?? 0) / count;
      const javaShare = (picks[`127.0.0.1:${javaPort}`] ?? 0) / count;
      expect(nodeShare + javaShare).toBe(1);
      // weighted random: shares follow the weights (100,000 picks: within 1 %)
      expect(Math.abs(nodeShare - EXPECTED_NODE_WEIGHT / (EXPECTED_NODE_WEIGHT + 1))).toBeLessThan(0.01);
      await annotate(
        `a default lossless instance has weight ${node.weight} for Java; selectOneHealthyInstance over ${count} picks: lossless ${(nodeShare * 100).toFixed(2)} %, Java at 1.0 ${(javaShare * 100).toFixed(2)} %`,
        'measured',
      );
    });

    // Over gRPC (the default) a lossless provider's ephemeral instance goes with its connection;
    // over HTTP v1 a killed provider leaves Nacos only when its heartbeats are missed (about 35 s).
    describe('a SIGKILLed lossless provider', () => {
      it('Java sees it gone within 3 s', async ({ annotate }) => {
        const service = fresh();
        const r = await startExample(['--registry', url(), '--service', service]);
        children.push(r);
        await probe.send({ cmd: 'subscribe', service });
        await probe.waitFor<Instances>((e) => lists(e, service) && has(e, r.port), 10_000, 'Java to see it');
        const killedAt = Date.now();
        r.child.kill('SIGKILL');
        const gone = await probe.waitFor<Instances>(
          (e) => lists(e, service) && e.source === 'listener' && e.at > killedAt && !has(e, r.port),
          10_000,
          'Java to see it gone',
        );
        expect(gone.at - killedAt).toBeLessThanOrEqual(3000);
        await annotate(`SIGKILL: Java saw the provider gone after ${gone.at - killedAt} ms`, 'measured');
      });
    });
  },
);

/** `ip:port` of every TCP peer of a process (Linux: its socket inodes looked up in /proc/net/tcp). */
function tcpPeersOf(pid: number): string[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m?.[1] !== undefined) inodes.add(m[1]);
    } catch {
      // closed meanwhile
    }
  }
  const peers: string[] = [];
  for (const table of ['tcp', 'tcp6']) {
    let text = '';
    try {
      text = readFileSync(`/proc/${pid}/net/${table}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      const [remote, state, inode] = [cols[2], cols[3], cols[9]];
      // 0A: listening (no peer)
      if (remote === undefined || inode === undefined || state === '0A' || !inodes.has(inode)) continue;
      peers.push(decodeAddress(remote));
    }
  }
  return peers;
}

/** /proc/net/tcp's `0100007F:1F90` (little-endian words) as `127.0.0.1:8080`; IPv4-mapped IPv6 too. */
function decodeAddress(hex: string): string {
  const [ip = '', p = '0'] = hex.split(':');
  const words = ip.match(/.{8}/g) ?? [];
  const last = words.at(-1) ?? '';
  const mapped = words.length === 4 && words[0] === '00000000' && words[1] === '00000000' && words[2] === 'FFFF0000';
  if (words.length === 1 || mapped) {
    const bytes = (last.match(/../g) ?? []).map((b) => Number.parseInt(b, 16)).reverse();
    return `${bytes.join('.')}:${Number.parseInt(p, 16)}`;
  }
  return `[${ip}]:${Number.parseInt(p, 16)}`;
}
