import { spawn } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { access, mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InvalidOptionError } from '../../src/errors.js';
import type { Logger } from '../../src/logger.js';
import { FileRegistry, type FileRegistryOptions } from '../../src/registry/file.js';
import type { Instance } from '../../src/registry/types.js';

/** This process' pid namespace, as the registry records it (undefined where /proc does not say). */
const PIDNS = (() => {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch {
    return undefined;
  }
})();

/** Waits until `condition` holds, checking often, and fails once `timeoutMs` has passed. */
async function pollUntil(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

interface LogCall {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly obj: Record<string, unknown>;
  readonly msg: string | undefined;
}

function recordingLogger(): { logger: Logger; calls: LogCall[] } {
  const calls: LogCall[] = [];
  const at =
    (level: LogCall['level']) =>
    (obj: object, msg?: string): void => {
      calls.push({ level, obj: obj as Record<string, unknown>, msg });
    };
  return { logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }, calls };
}

function instance(overrides: Partial<Instance> = {}): Instance {
  const port = overrides.port ?? 8080;
  return {
    service: 'orders',
    id: `127.0.0.1:${port}`,
    ip: '127.0.0.1',
    port,
    weight: 100,
    enabled: true,
    healthy: true,
    metadata: { zone: 'a' },
    ...overrides,
  };
}

/** Waits for a process that exits at once and returns its (now unused) pid. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not spawn node');
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', () => resolve());
  });
  return pid;
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}

let dir: string;
const registries: FileRegistry[] = [];

function makeRegistry(options: Partial<FileRegistryOptions> = {}): FileRegistry {
  const registry = new FileRegistry({ dir, pollMs: 50, ...options });
  registries.push(registry);
  return registry;
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lossless-file-registry-'));
});

afterEach(async () => {
  for (const registry of registries.splice(0)) await registry.close();
  await rm(dir, { recursive: true, force: true });
});

describe('FileRegistry', () => {
  it('identifies itself as a file registry that reads back and supports enable', () => {
    const registry = makeRegistry();
    expect(registry.kind).toBe('file');
    expect(registry.readsBack).toBe(true);
    expect(registry.supportsEnable).toBe(true);
    expect(registry.dir).toBe(dir);
  });

  it('lists nothing for a service nobody registered', async () => {
    const registry = makeRegistry();
    expect(await registry.list('nobody')).toEqual([]);
  });

  it('lists a registered instance and forgets it once deregistered', async () => {
    const registry = makeRegistry();
    const a = instance();
    await registry.register(a);
    expect(await registry.list('orders')).toEqual([a]);
    expect(await registry.list('payments')).toEqual([]);

    await registry.deregister(a);
    expect(await registry.list('orders')).toEqual([]);
  });

  it('lists several instances sorted by id, seen from another registry on the same directory', async () => {
    const writer = makeRegistry();
    const reader = makeRegistry();
    const b = instance({ port: 8082 });
    const a = instance({ port: 8081 });
    await writer.register(b);
    await writer.register(a);
    expect((await reader.list('orders')).map((i) => i.id)).toEqual(['127.0.0.1:8081', '127.0.0.1:8082']);
  });

  it('keeps its entries fresh with a heartbeat while registered, and stops once deregistered', async () => {
    const { logger, calls } = recordingLogger();
    const registry = makeRegistry({ heartbeatMs: 50, staleMs: 200, logger });
    const a = instance();
    await registry.register(a);
    const file = join(dir, 'orders', `${encodeURIComponent(a.id)}.json`);
    const old = new Date(Date.now() - 60_000);
    await utimes(file, old, old);
    await pollUntil(async () => Date.now() - (await stat(file)).mtimeMs < 1000, 'a heartbeat');
    await registry.deregister(a);
    expect(await exists(file)).toBe(false);
    // a heartbeat left running would fail on the missing file, and say so
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(calls.filter((c) => c.msg === 'file registry heartbeat failed')).toEqual([]);
  });

  it('keeps service names and ids that are not safe file names apart', async () => {
    const registry = makeRegistry();
    const odd = instance({ service: 'a/b c', id: '../x:1' });
    await registry.register(odd);
    expect(await registry.list('a/b c')).toEqual([odd]);
    expect(await registry.list('a')).toEqual([]);
  });

  it('deregistering an instance that is not registered is not an error', async () => {
    const registry = makeRegistry();
    await expect(registry.deregister(instance())).resolves.toBeUndefined();
  });

  it('round-trips setEnabled(false) and setWeight through list()', async () => {
    const registry = makeRegistry();
    const a = instance();
    await registry.register(a);

    await registry.setEnabled(a, false);
    expect(await registry.list('orders')).toEqual([{ ...a, enabled: false }]);

    await registry.setWeight(a, 7);
    // the weight change keeps the earlier enabled=false
    expect(await registry.list('orders')).toEqual([{ ...a, enabled: false, weight: 7 }]);

    await registry.setEnabled(a, true);
    expect(await registry.list('orders')).toEqual([{ ...a, enabled: true, weight: 7 }]);
  });

  it('reads an entry again once it changed on disk, even rewritten in place to the same size', async () => {
    const registry = makeRegistry();
    const a = instance({ weight: 50 });
    await registry.register(a);
    expect(await registry.list('orders')).toEqual([a]);
    // as an editor would: the same file (same inode), the same length, another weight and mtime
    const file = join(dir, 'orders', `${encodeURIComponent(a.id)}.json`);
    const text = await readFile(file, 'utf8');
    const edited = text.replace('"weight": 50', '"weight": 60');
    expect(edited).not.toBe(text);
    expect(edited).toHaveLength(text.length);
    await writeFile(file, edited);
    const later = new Date(Date.now() + 1000);
    await utimes(file, later, later);
    expect(await registry.list('orders')).toEqual([{ ...a, weight: 60 }]);
    // replaced by rename (as the registry writes), and removed
    await registry.setWeight(a, 70);
    expect(await registry.list('orders')).toEqual([{ ...a, weight: 70 }]);
    await registry.deregister(a);
    expect(await registry.list('orders')).toEqual([]);
  });

  it('rejects a negative or non-finite weight in setWeight', async () => {
    const registry = makeRegistry();
    const a = instance();
    await registry.register(a);
    for (const weight of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
      const error = await registry.setWeight(a, weight).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidOptionError);
      expect(error).toMatchObject({ code: 'LOSSLESS_ERR_INVALID_OPTION', option: 'weight' });
    }
    expect(await registry.list('orders')).toEqual([a]);
  });

  it('refuses to register an invalid instance', async () => {
    const registry = makeRegistry();
    const error = await registry.register(instance({ port: 0 })).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'LOSSLESS_ERR_INVALID_OPTION', option: 'instance' });
    expect(await registry.list('orders')).toEqual([]);
  });

  it('writes one JSON file per instance with this pid and hostname', async () => {
    const registry = makeRegistry();
    const a = instance();
    await registry.register(a);
    const file = join(dir, 'orders', `${encodeURIComponent(a.id)}.json`);
    const entry = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    expect(entry).toEqual({ format: 1, instance: a, pid: process.pid, hostname: hostname(), pidns: PIDNS });
  });

  it('subscribe() delivers the initial list, a later registration, and the empty list when the last instance leaves', async () => {
    const registry = makeRegistry();
    const a = instance();
    await registry.register(a);

    const seen: (readonly Instance[])[] = [];
    const errors: Error[] = [];
    const unsubscribe = registry.subscribe(
      'orders',
      (list) => seen.push(list),
      (error) => errors.push(error),
    );
    try {
      await pollUntil(() => seen.length >= 1, 'the initial list');
      expect(seen[0]).toEqual([a]);

      const b = instance({ port: 8081 });
      await registry.register(b);
      await pollUntil(() => seen.at(-1)?.length === 2, 'the list with the second instance');
      expect(seen.at(-1)).toEqual([a, b]);

      await registry.deregister(a);
      await pollUntil(() => seen.at(-1)?.length === 1, 'the list without the first instance');
      expect(seen.at(-1)).toEqual([b]);

      await registry.deregister(b);
      await pollUntil(() => seen.at(-1)?.length === 0, 'the empty list');
      expect(seen.at(-1)).toEqual([]);

      // no two consecutive deliveries are equal: only changes are delivered
      for (let i = 1; i < seen.length; i++) expect(seen[i]).not.toEqual(seen[i - 1]);
      expect(errors).toEqual([]);
    } finally {
      unsubscribe();
    }
  });

  it('subscribe() delivers an empty initial list for a service with no instances', async () => {
    const registry = makeRegistry();
    const seen: (readonly Instance[])[] = [];
    const unsubscribe = registry.subscribe('nobody', (list) => seen.push(list));
    try {
      await pollUntil(() => seen.length >= 1, 'the initial list');
      expect(seen[0]).toEqual([]);
    } finally {
      unsubscribe();
    }
  });

  it('stops delivering once unsubscribed', async () => {
    const registry = makeRegistry();
    const seen: (readonly Instance[])[] = [];
    const probe: (readonly Instance[])[] = [];
    const unsubscribe = registry.subscribe('orders', (list) => seen.push(list));
    // a second subscriber on the same directory shows when the change became observable
    const unsubscribeProbe = registry.subscribe('orders', (list) => probe.push(list));
    try {
      await pollUntil(() => seen.length >= 1 && probe.length >= 1, 'the initial lists');
      unsubscribe();
      const count = seen.length;

      await registry.register(instance());
      await pollUntil(() => probe.at(-1)?.length === 1, 'the probe subscriber to see the registration');
      expect(seen.length).toBe(count);
    } finally {
      unsubscribeProbe();
    }
  });

  it('drops the entry of a dead process on this host and deletes its file', async () => {
    const registry = makeRegistry();
    const alive = instance({ port: 8081 });
    await registry.register(alive);

    const pid = await deadPid();
    const dead = instance({ port: 8082 });
    const file = join(dir, 'orders', `${encodeURIComponent(dead.id)}.json`);
    await writeFile(file, JSON.stringify({ format: 1, instance: dead, pid, hostname: hostname(), pidns: PIDNS }));
    expect(await exists(file)).toBe(true);

    expect(await registry.list('orders')).toEqual([alive]);
    expect(await exists(file)).toBe(false);
  });

  it('lookup() finds its own entry; undefined once the entry is deleted or corrupted; rejects when the directory cannot be read', async () => {
    const registry = makeRegistry();
    const a = instance();
    await registry.register(a);
    expect(await registry.lookup(a)).toEqual(a);
    const file = join(dir, 'orders', `${encodeURIComponent(a.id)}.json`);
    await writeFile(file, '{"format":1,"instance":');
    expect(await registry.lookup(a), 'a corrupted entry').toBeUndefined();
    await rm(file);
    expect(await registry.lookup(a), 'a deleted entry').toBeUndefined();
    // a directory where the entry should be: the registry answers with an error, not "absent"
    await mkdir(file);
    await expect(registry.lookup(a)).rejects.toThrow();
  });

  it('judges an entry from another pid namespace on this host by heartbeat age, not by its pid', async () => {
    // hostNetwork pods (or containers on the host network) sharing a volume: same host name, and a
    // pid that names nothing, or someone else, in this namespace
    const registry = makeRegistry({ heartbeatMs: 1000, staleMs: 60_000 });
    const pid = await deadPid();
    const other = instance({ port: 8083, id: 'other-namespace' });
    const serviceDir = join(dir, 'orders');
    await mkdir(serviceDir, { recursive: true });
    const file = join(serviceDir, 'other-namespace.json');
    const entry = { format: 1, instance: other, pid, hostname: hostname(), pidns: 'pid:[1]' };
    await writeFile(file, JSON.stringify(entry));
    expect(await registry.list('orders'), 'a fresh entry of a live provider in another namespace').toEqual([other]);
    expect(await exists(file)).toBe(true);
    const old = new Date(Date.now() - 120_000);
    await utimes(file, old, old);
    expect(await registry.list('orders'), 'the same entry once its heartbeat is older than staleMs').toEqual([]);
    expect(await exists(file)).toBe(false);
  });

  it('keeps a fresh entry from another host and drops it (and its file) once older than staleMs', async () => {
    const registry = makeRegistry({ heartbeatMs: 1000, staleMs: 60_000 });
    const remote = instance({ ip: '10.9.9.9', id: 'remote' });
    const serviceDir = join(dir, 'orders');
    await mkdir(serviceDir, { recursive: true });
    const file = join(serviceDir, 'remote.json');
    await writeFile(
      file,
      JSON.stringify({ format: 1, instance: remote, pid: 1, hostname: `not-${hostname()}.invalid` }),
    );
    expect(await registry.list('orders')).toEqual([remote]);

    const old = new Date(Date.now() - 120_000);
    await utimes(file, old, old);
    expect(await registry.list('orders')).toEqual([]);
    expect(await exists(file)).toBe(false);
  });

  it('skips invalid entries with a LOSSLESS_ERR_BAD_INSTANCE warning and still lists the good ones', async () => {
    const { logger, calls } = recordingLogger();
    const registry = makeRegistry({ logger });
    const good = instance();
    await registry.register(good);

    const serviceDir = join(dir, 'orders');
    const entry = (inst: Record<string, unknown>): string =>
      JSON.stringify({ format: 1, instance: inst, pid: process.pid, hostname: hostname() });
    const bad = {
      'not-json.json': '{ "format": 1, "instance": ',
      'bad-port.json': entry({ ...instance({ id: 'bad-port' }), port: 70000 }),
      'bad-ip.json': entry({ ...instance({ id: 'bad-ip' }), ip: 'not an address!' }),
      'bad-weight.json': entry({ ...instance({ id: 'bad-weight' }), weight: -5 }),
    };
    for (const [name, text] of Object.entries(bad)) await writeFile(join(serviceDir, name), text);

    expect(await registry.list('orders')).toEqual([good]);

    const warned = calls.filter((c) => c.level === 'warn' && c.obj.code === 'LOSSLESS_ERR_BAD_INSTANCE');
    const files = warned.map((c) => c.obj.file as string).sort();
    expect(files).toEqual(
      Object.keys(bad)
        .map((name) => join(serviceDir, name))
        .sort(),
    );
    const problems = warned.map((c) => String(c.obj.problem));
    expect(problems.some((p) => p.includes('port'))).toBe(true);
    expect(problems.some((p) => p.includes('ip'))).toBe(true);
    expect(problems.some((p) => p.includes('weight'))).toBe(true);
    // invalid entries are skipped, not deleted: a human may want to look at them
    for (const name of Object.keys(bad)) expect(await exists(join(serviceDir, name))).toBe(true);
  });

  it('skips an entry whose service does not match its directory', async () => {
    const { logger, calls } = recordingLogger();
    const registry = makeRegistry({ logger });
    const serviceDir = join(dir, 'orders');
    await mkdir(serviceDir, { recursive: true });
    await writeFile(
      join(serviceDir, 'x.json'),
      JSON.stringify({
        format: 1,
        instance: instance({ service: 'payments' }),
        pid: process.pid,
        hostname: hostname(),
      }),
    );
    expect(await registry.list('orders')).toEqual([]);
    expect(calls.some((c) => c.level === 'warn' && c.obj.code === 'LOSSLESS_ERR_BAD_INSTANCE')).toBe(true);
  });

  it('ignores files that are not .json (such as half-written temporary files)', async () => {
    const registry = makeRegistry();
    const serviceDir = join(dir, 'orders');
    await mkdir(serviceDir, { recursive: true });
    await writeFile(join(serviceDir, 'a.json.123.abc.tmp'), '{ half');
    await writeFile(join(serviceDir, 'README'), 'hello');
    expect(await registry.list('orders')).toEqual([]);
  });

  it('close() is idempotent and stops subscriptions', async () => {
    const registry = makeRegistry();
    const seen: (readonly Instance[])[] = [];
    registry.subscribe('orders', (list) => seen.push(list));
    await pollUntil(() => seen.length >= 1, 'the initial list');
    await registry.close();
    await registry.close();
    const count = seen.length;

    const other = makeRegistry();
    await other.register(instance());
    const probe: (readonly Instance[])[] = [];
    other.subscribe('orders', (list) => probe.push(list));
    await pollUntil(() => probe.at(-1)?.length === 1, 'a live subscriber to see the registration');
    expect(seen.length).toBe(count);
  });

  describe('constructor options', () => {
    it.each([
      ['dir', { dir: '' }],
      ['dir', { dir: undefined as unknown as string }],
      ['heartbeatMs', { heartbeatMs: 0 }],
      ['heartbeatMs', { heartbeatMs: -1 }],
      ['heartbeatMs', { heartbeatMs: Number.NaN }],
      ['heartbeatMs', { heartbeatMs: Number.POSITIVE_INFINITY }],
      ['staleMs', { staleMs: 0 }],
      ['staleMs', { heartbeatMs: 1000, staleMs: 1000 }],
      ['staleMs', { heartbeatMs: 1000, staleMs: 999 }],
      // the default heartbeat is 5000 ms
      ['staleMs', { staleMs: 4000 }],
      ['pollMs', { pollMs: 0 }],
      ['pollMs', { pollMs: -5 }],
      ['pollMs', { pollMs: Number.NaN }],
    ] as const)('rejects a bad %s: %o', (option, overrides) => {
      let error: unknown;
      try {
        makeRegistry(overrides as Partial<FileRegistryOptions>);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(InvalidOptionError);
      expect(error).toMatchObject({ code: 'LOSSLESS_ERR_INVALID_OPTION', option });
      expect((error as Error).message).toContain(`"${option}"`);
    });

    it('accepts staleMs just above heartbeatMs, and heartbeatMs alone', () => {
      expect(() => makeRegistry({ heartbeatMs: 1000, staleMs: 1001 })).not.toThrow();
      expect(() => makeRegistry({ heartbeatMs: 60_000 })).not.toThrow();
    });
  });
});

describe('FileRegistry check()', () => {
  it('passes on a directory it can create and write, and leaves nothing behind', async () => {
    const dir = join(await mkdtemp(join(tmpdir(), 'lossless-check-')), 'registry');
    const registry = new FileRegistry({ dir });
    await registry.check();
    expect(await readdir(dir)).toEqual([]);
    await rm(dirname(dir), { recursive: true, force: true });
  });

  it('rejects when the directory cannot be created (a regular file on its path)', async () => {
    const parent = await mkdtemp(join(tmpdir(), 'lossless-check-'));
    await writeFile(join(parent, 'a-file'), '');
    const registry = new FileRegistry({ dir: join(parent, 'a-file', 'registry') });
    await expect(registry.check()).rejects.toMatchObject({ code: 'ENOTDIR' });
    await rm(parent, { recursive: true, force: true });
  });
});
