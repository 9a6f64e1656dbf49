// The embedded registry: a shared directory of JSON files, one per instance, that processes on one
// machine (or sharing a volume) use to find each other with no server. Like Prometheus' file-based
// discovery, readers watch the directory. Entries of processes that died without deregistering are
// removed by whoever reads them: by checking the pid when the writer ran on the same host in the same
// pid namespace, else by heartbeat age (containers sharing a host network and a volume see the same
// host name, but a pid of theirs means nothing in another pid namespace).

import { type FSWatcher, readlinkSync, watch } from 'node:fs';
import { mkdir, readdir, readFile, rename, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { InvalidOptionError } from '../errors.js';
import { type Logger, stderrLogger } from '../logger.js';
import { listRefresher } from './refresher.js';
import type { Instance, InstanceListener, Registry } from './types.js';
import { instanceProblem, toInstance } from './validate.js';

export interface FileRegistryOptions {
  /** The shared directory. Created when missing. */
  readonly dir: string;
  /** How often a registered instance refreshes its file's time, in ms. Default 5000. */
  readonly heartbeatMs?: number;
  /** An entry whose file was not refreshed for this long is stale, in ms. Default 3 × heartbeatMs. */
  readonly staleMs?: number;
  /** Subscribers re-read the directory at least this often, in ms, besides watching it. Default 1000. */
  readonly pollMs?: number;
  readonly logger?: Logger;
}

interface FileEntry {
  readonly format: 1;
  readonly instance: Instance;
  readonly pid: number;
  readonly hostname: string;
  /** The writer's pid namespace (Linux: the target of /proc/self/ns/pid); absent elsewhere. */
  readonly pidns?: string;
}

export class FileRegistry implements Registry {
  readonly kind = 'file';
  readonly readsBack = true;
  readonly supportsEnable = true;
  readonly dir: string;

  readonly #heartbeatMs: number;
  readonly #staleMs: number;
  readonly #pollMs: number;
  readonly #logger: Logger;
  readonly #host = hostname();
  readonly #pidns = pidNamespace();
  readonly #heartbeats = new Map<string, NodeJS.Timeout>();
  readonly #subscriptions = new Set<() => void>();
  /**
   * Entries as last read, by file: a file whose inode, size and mtime are unchanged is not read nor
   * parsed again (a subscription re-lists its folder every pollMs and at every change in it).
   */
  readonly #parsed = new Map<string, ParsedEntry>();
  #closed = false;

  constructor(options: FileRegistryOptions) {
    if (typeof options.dir !== 'string' || options.dir.length === 0)
      throw new InvalidOptionError('dir', options.dir, 'expected a directory path');
    this.dir = options.dir;
    this.#heartbeatMs = positive('heartbeatMs', options.heartbeatMs, 5000, MAX_TIMER_MS);
    this.#staleMs = positive('staleMs', options.staleMs, this.#heartbeatMs * 3);
    if (this.#staleMs <= this.#heartbeatMs)
      throw new InvalidOptionError('staleMs', this.#staleMs, `expected more than heartbeatMs (${this.#heartbeatMs})`);
    this.#pollMs = positive('pollMs', options.pollMs, 1000, MAX_TIMER_MS);
    this.#logger = options.logger ?? stderrLogger;
  }

  /** The directory can be created and written: a file is written there and removed. */
  async check(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const probe = join(this.dir, `.lossless-check.${process.pid}.${Math.random().toString(36).slice(2)}`);
    await writeFile(probe, '');
    await unlink(probe).catch(ignoreMissing);
  }

  async register(instance: Instance): Promise<void> {
    await this.#write(instance);
    const key = this.#fileOf(instance);
    clearInterval(this.#heartbeats.get(key));
    const beat = setInterval(() => {
      const now = new Date();
      utimes(key, now, now).catch((error: NodeJS.ErrnoException) => {
        this.#logger.warn({ err: error, file: key }, 'file registry heartbeat failed');
      });
    }, this.#heartbeatMs);
    beat.unref();
    this.#heartbeats.set(key, beat);
  }

  async deregister(instance: Instance): Promise<void> {
    const key = this.#fileOf(instance);
    clearInterval(this.#heartbeats.get(key));
    this.#heartbeats.delete(key);
    await unlink(key).catch(ignoreMissing);
  }

  async setEnabled(instance: Instance, enabled: boolean): Promise<void> {
    await this.#update(instance, { enabled });
  }

  async setWeight(instance: Instance, weight: number): Promise<void> {
    if (!Number.isFinite(weight) || weight < 0)
      throw new InvalidOptionError('weight', weight, 'expected a finite number >= 0');
    await this.#update(instance, { weight });
  }

  /** Our own entry as the directory holds it; undefined when missing or unusable (consumers skip it too). */
  async lookup(instance: Instance): Promise<Instance | undefined> {
    let text: string;
    try {
      text = await readFile(this.#fileOf(instance), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error; // EACCES, EIO...: the registry cannot be read, which says nothing about the entry
    }
    const entry = parseEntry(text);
    if (entry === undefined || instanceProblem(entry.instance) !== undefined) return undefined;
    return toInstance(entry.instance as unknown as Record<string, unknown>);
  }

  async list(service: string): Promise<Instance[]> {
    const dir = this.#serviceDir(service);
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    const found: Instance[] = [];
    await Promise.all(
      names
        .filter((name) => name.endsWith('.json'))
        .map(async (name) => {
          const instance = await this.#readEntry(join(dir, name), service);
          if (instance !== undefined) found.push(instance);
        }),
    );
    return found.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  subscribe(service: string, listener: InstanceListener, onError?: (error: Error) => void): () => void {
    const dir = this.#serviceDir(service);
    let active = true;
    let debounce: NodeJS.Timeout | undefined;
    let watcher: FSWatcher | undefined;
    const refresher = listRefresher(() => this.list(service), listener, onError);

    const schedule = (): void => {
      if (!active || debounce !== undefined) return;
      debounce = setTimeout(() => {
        debounce = undefined;
        refresher.refresh();
      }, 10);
      debounce.unref();
    };

    mkdir(dir, { recursive: true })
      .then(() => {
        if (!active) return;
        try {
          watcher = watch(dir, { persistent: false }, schedule);
          watcher.on('error', () => {
            // the poll below keeps the subscription alive when watching fails
            watcher?.close();
          });
        } catch {
          // some file systems cannot be watched; the poll covers them
        }
      })
      .catch((error: Error) => onError?.(error))
      // the first read at once, not through the unref'd debounce timer: a caller may be waiting for
      // this first list (a one-shot script's only request), and nothing else keeps the process alive
      .finally(() => refresher.refresh());

    const poll = setInterval(schedule, this.#pollMs);
    poll.unref();

    const unsubscribe = (): void => {
      active = false;
      refresher.stop();
      clearInterval(poll);
      clearTimeout(debounce);
      watcher?.close();
      this.#subscriptions.delete(unsubscribe);
    };
    this.#subscriptions.add(unsubscribe);
    return unsubscribe;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const beat of this.#heartbeats.values()) clearInterval(beat);
    this.#heartbeats.clear();
    for (const unsubscribe of [...this.#subscriptions]) unsubscribe();
  }

  #serviceDir(service: string): string {
    return join(this.dir, encodeURIComponent(service));
  }

  #fileOf(instance: Pick<Instance, 'service' | 'id'>): string {
    return join(this.#serviceDir(instance.service), `${encodeURIComponent(instance.id)}.json`);
  }

  async #write(instance: Instance): Promise<void> {
    const problem = instanceProblem(instance);
    if (problem !== undefined)
      throw new InvalidOptionError('instance', instance, `expected a valid instance (${problem})`);
    const file = this.#fileOf(instance);
    await mkdir(this.#serviceDir(instance.service), { recursive: true });
    const entry: FileEntry = {
      format: 1,
      instance,
      pid: process.pid,
      hostname: this.#host,
      ...(this.#pidns === undefined ? {} : { pidns: this.#pidns }),
    };
    // write then rename, so that readers never see half a file
    const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    await writeFile(tmp, `${JSON.stringify(entry, null, 2)}\n`);
    await rename(tmp, file);
  }

  async #update(instance: Instance, change: Partial<Instance>): Promise<void> {
    const file = this.#fileOf(instance);
    const current = await this.#readEntry(file, instance.service);
    await this.#write({ ...(current ?? instance), ...change });
  }

  async #readEntry(file: string, service: string): Promise<Instance | undefined> {
    let entry: Partial<FileEntry> | undefined;
    let mtimeMs: number;
    try {
      const stats = await stat(file);
      mtimeMs = stats.mtimeMs;
      const known = this.#parsed.get(file);
      if (known !== undefined && known.ino === stats.ino && known.size === stats.size && known.mtimeMs === mtimeMs) {
        entry = known.entry;
      } else {
        entry = parseEntry(await readFile(file, 'utf8'));
        if (this.#parsed.size >= MAX_PARSED) this.#parsed.clear();
        this.#parsed.set(file, { ino: stats.ino, size: stats.size, mtimeMs, entry });
      }
    } catch (error) {
      this.#parsed.delete(file);
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      this.#logger.warn({ err: error, file }, 'file registry entry unreadable, skipped');
      return undefined;
    }
    if (entry === undefined) {
      this.#logger.warn({ file, code: 'LOSSLESS_ERR_BAD_INSTANCE' }, 'file registry entry is not JSON, skipped');
      return undefined;
    }
    const problem = instanceProblem(entry?.instance);
    if (problem !== undefined || entry.instance?.service !== service) {
      this.#logger.warn(
        { file, problem: problem ?? 'service does not match its directory', code: 'LOSSLESS_ERR_BAD_INSTANCE' },
        'file registry entry is invalid, skipped',
      );
      return undefined;
    }
    if (this.#isStale(entry, mtimeMs)) {
      this.#logger.info({ file, pid: entry.pid }, 'file registry entry of a dead process removed');
      await unlink(file).catch(ignoreMissing);
      return undefined;
    }
    return toInstance(entry.instance as unknown as Record<string, unknown>);
  }

  #isStale(entry: Partial<FileEntry>, mtimeMs: number): boolean {
    // an entry without a namespace was written where there is none to tell (not Linux), or by an
    // older writer: its pid is trusted only where we cannot tell either
    const samePidNamespace = entry.pidns === undefined ? this.#pidns === undefined : entry.pidns === this.#pidns;
    if (
      entry.hostname === this.#host &&
      samePidNamespace &&
      typeof entry.pid === 'number' &&
      Number.isInteger(entry.pid)
    ) {
      return !processAlive(entry.pid);
    }
    return Date.now() - mtimeMs > this.#staleMs;
  }
}

function parseEntry(text: string): Partial<FileEntry> | undefined {
  try {
    const entry = JSON.parse(text) as unknown;
    return typeof entry === 'object' && entry !== null ? (entry as Partial<FileEntry>) : undefined;
  } catch {
    return undefined;
  }
}

/** This process' pid namespace, e.g. `pid:[4026531836]`; undefined where /proc does not say. */
function pidNamespace(): string | undefined {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch {
    return undefined;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function ignoreMissing(error: NodeJS.ErrnoException): void {
  if (error.code !== 'ENOENT') throw error;
}

/** Node turns a timer above 2^31 - 1 ms into 1 ms (a busy loop); intervals stop at 24 h, as the provider's durations do. */
const MAX_TIMER_MS = 86_400_000;

/** Entries kept parsed at most (a registry of more files than this reads some of them again). */
const MAX_PARSED = 10_000;

/** A file as last read: what identifies its content on disk, and what it held. */
interface ParsedEntry {
  readonly ino: number;
  readonly size: number;
  readonly mtimeMs: number;
  readonly entry: Partial<FileEntry> | undefined;
}

function positive(name: string, value: number | undefined, fallback: number, max = Number.MAX_VALUE): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value > max)
    throw new InvalidOptionError(
      name,
      value,
      `expected a finite number of milliseconds > 0${max < Number.MAX_VALUE ? ` and at most ${max}` : ''}`,
    );
  return value;
}
