// SIGTERM while the express example is still warming up: it exits promptly, and no consumer ever sees
// it in the registry (it registers only after its warm-up, which the drain aborts).

import { FileRegistry } from '@lossless/core';
import { afterEach, describe, expect, it } from 'vitest';
import { call, tempRegistry, until } from '../support.js';
import { launchExample, type Running, watch } from './example.js';

describe('express example: SIGTERM during the warm-up', () => {
  let registry: Awaited<ReturnType<typeof tempRegistry>> | undefined;
  const children: Running[] = [];
  afterEach(async () => {
    for (const c of children.splice(0)) c.child.kill('SIGKILL');
    await registry?.remove();
  });

  it('exits promptly, exit code 0, never listed in the registry', async ({ annotate }) => {
    registry = await tempRegistry();
    const watcher = watch(registry.url, 'hello-service');
    children.push(watcher);
    await until(() => watcher.seen().length > 0, 'the watcher to read the registry');
    // a 10 s warm-up: the process would register only after it
    const r = launchExample(['--registry', registry.url, '--warmup-ms', '10000', '--quiet-window-ms', '300']);
    children.push(r);
    await until(() => r.logs().some((l) => l.msg === 'admin server listening'), 'the admin server');
    const admin = Number(r.logs().find((l) => l.msg === 'admin server listening')?.port);
    await until(
      async () => JSON.parse((await call(admin, '/status')).body).state === 'warming',
      'the warm-up to begin',
    );
    const sigtermAt = Date.now();
    r.child.kill('SIGTERM');
    const { code, at } = await r.exited;
    expect(code).toBe(0);
    // "promptly": well before the 10 s warm-up would have ended (about 0.3 s here; a busy machine adds more)
    expect(at - sigtermAt).toBeLessThan(3000);
    // it never registered: no registry call in its log, no entry left, nothing the watcher saw
    expect(r.logs().some((l) => l.msg === 'ready: registered and serving')).toBe(false);
    expect(
      r
        .logs()
        .find((l) => typeof l.msg === 'string' && /removed from the registry|disabled in the registry/.test(l.msg)),
    ).toBeUndefined();
    const reader = new FileRegistry({ dir: registry.dir });
    expect(await reader.list('hello-service')).toEqual([]);
    await reader.close();
    expect(watcher.seen().flatMap((s) => s.ids)).toEqual([]);
    await annotate(`exited ${at - sigtermAt} ms after SIGTERM, code ${code}; 0 registry entries seen`, 'measured');
  });
});
