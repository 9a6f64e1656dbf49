// A registry that loses data, as a user sees it: the express example runs on the file registry and its
// entry is deleted, or corrupted, behind its back. /readyz must not claim a registration that does not
// exist for more than 2 s, and the instance must be listed again.

import { readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FileRegistry } from '@lossless/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { call, tempRegistry, until } from '../support.js';
import { type RunningExample, startExample } from './example.js';

describe('a registration the registry lost (file registry, real process)', () => {
  let registry: Awaited<ReturnType<typeof tempRegistry>>;
  let reader: FileRegistry;
  let running: RunningExample | undefined;

  beforeEach(async () => {
    registry = await tempRegistry();
    reader = new FileRegistry({ dir: registry.dir });
  });
  afterEach(async () => {
    running?.child.kill('SIGKILL');
    running = undefined;
    await reader.close();
    await registry.remove();
  });

  const entryFile = async (): Promise<string> => {
    const dir = join(registry.dir, 'hello-service');
    const [name] = (await readdir(dir)).filter((n) => n.endsWith('.json'));
    if (name === undefined) throw new Error('no entry file');
    return join(dir, name);
  };
  const listed = async () => (await reader.list('hello-service')).map((i) => i.id);

  it('entry deleted: not ready within 2 s, registered again, ready once read back', ({ annotate }) =>
    lose('deleted', (file) => rm(file), annotate));

  it('entry corrupted: not ready within 2 s, registered again, ready once read back', ({ annotate }) =>
    lose('corrupted', (file) => writeFile(file, '{"format":1,"instance":{"service":'), annotate));

  async function lose(
    how: string,
    damage: (file: string) => Promise<unknown>,
    annotate: (message: string, type?: string) => Promise<unknown>,
  ): Promise<void> {
    running = await startExample(['--registry', registry.url]);
    const r = running;
    const id = `127.0.0.1:${r.port}`;
    await until(async () => (await call(r.adminPort, '/readyz')).status === 200, 'ready');
    expect(await listed()).toEqual([id]);

    const damagedAt = Date.now();
    await damage(await entryFile());
    // the provider notices within 2 s (its check runs every second) and is not ready until the entry
    // is written again and read back; that window may be a few ms, too short to catch with a probe,
    // so its start and end are read from the provider's own log lines
    const logged = (what: (l: { msg?: string; code?: unknown }) => boolean) => r.logs().find(what);
    await until(
      () => logged((l) => l.code === 'LOSSLESS_ERR_REGISTRATION_LOST') !== undefined,
      'the loss noticed',
      2000,
    );
    const lost = logged((l) => l.code === 'LOSSLESS_ERR_REGISTRATION_LOST') as { time: string };
    await until(
      () => logged((l) => l.msg === 'registered again and read back') !== undefined,
      'registered again',
      10_000,
    );
    const back = logged((l) => l.msg === 'registered again and read back') as { time: string };
    const notReadyAfterMs = Date.parse(lost.time) - damagedAt;
    const readyAgainAfterMs = Date.parse(back.time) - damagedAt;
    expect(notReadyAfterMs).toBeLessThanOrEqual(2000);
    expect((await call(r.adminPort, '/readyz')).status).toBe(200);
    expect(await listed()).toEqual([id]);
    // the app served throughout
    expect((await call(r.port, '/hello')).status).toBe(200);
    await annotate(
      `entry ${how}: /readyz 503 after ${notReadyAfterMs} ms, ready again after ${readyAgainAfterMs} ms`,
      'measured',
    );
  }
});
