// What users install is the packed tarball, not the workspace: pack each package and check that its
// types resolve for ESM consumers (arethetypeswrong), that it carries what its exports map names, its
// README and the license, that its manifest says where it comes from, and that no workspace-only
// version range leaks into it. (install.test.ts installs the tarballs into an app and runs it.)

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const out = mkdtempSync(join(tmpdir(), 'lossless-pack-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe.each(['core', 'express', 'fastify', 'nacos', 'client', 'cli', 'grpc'])('@lossless/%s packed', (name) => {
  const dir = join(ROOT, 'packages', name);
  const dest = join(out, name);
  execFileSync('pnpm', ['pack', '--pack-destination', dest], { cwd: dir, stdio: 'pipe' });
  const tarball = join(dest, readdirSync(dest)[0] as string);
  const files = execFileSync('tar', ['tzf', tarball], { encoding: 'utf8' }).split('\n');
  const manifest = JSON.parse(execFileSync('tar', ['xzOf', tarball, 'package/package.json'], { encoding: 'utf8' }));

  it('resolves its types for ESM consumers', () => {
    const attw = join(ROOT, 'node_modules', '.bin', 'attw');
    // exits non-zero on any problem in the esm-only profile
    execFileSync(attw, [tarball, '--profile', 'esm-only', '--format', 'json'], { stdio: 'pipe' });
  });

  it('ships what its exports map points to, with declaration maps and their sources', () => {
    const entry = manifest.exports['.'];
    expect(Object.keys(entry)[0]).toBe('types');
    for (const path of [entry.types, entry.default, `${entry.types}.map`, './src/index.ts']) {
      expect(files).toContain(`package/${path.replace(/^\.\//, '')}`);
    }
    // every subpath (./client, ./metrics, ./internal) too, types first
    for (const [subpath, target] of Object.entries(manifest.exports as Record<string, unknown>)) {
      if (typeof target !== 'object' || target === null) continue;
      const { types, default: main } = target as { types: string; default: string };
      expect(Object.keys(target)[0], subpath).toBe('types');
      for (const path of [types, main]) expect(files).toContain(`package/${path.replace(/^\.\//, '')}`);
    }
    expect(files.some((f) => f.includes('/test/'))).toBe(false);
  });

  it("ships its README and the MIT license, the same as the repository's", () => {
    expect(files).toContain('package/README.md');
    expect(files).toContain('package/LICENSE');
    const license = execFileSync('tar', ['xzOf', tarball, 'package/LICENSE'], { encoding: 'utf8' });
    expect(license).toBe(readFileSync(join(ROOT, 'LICENSE'), 'utf8'));
    expect(license).toMatch(/^MIT License/);
    expect(manifest.license).toBe('MIT');
    const readme = execFileSync('tar', ['xzOf', tarball, 'package/README.md'], { encoding: 'utf8' });
    expect(readme).toMatch(new RegExp(`^# ${manifest.name}\n`));
    // what it is, how to install it, the smallest example, where the docs are, and ESM only
    expect(readme).toMatch(/## Install[\s\S]*npm install[\s\S]*## Use it\n\n```/);
    expect(readme).toContain('ESM only');
    expect(readme).toContain('https://github.com/lossless-js/lossless/blob/main/docs/');
  });

  it('says where it comes from: repository (with its folder), homepage, bugs, keywords', () => {
    expect(manifest.repository).toEqual({
      type: 'git',
      url: 'git+https://github.com/lossless-js/lossless.git',
      directory: `packages/${name}`,
    });
    expect(manifest.homepage).toBe(`https://github.com/lossless-js/lossless/tree/main/packages/${name}#readme`);
    expect(manifest.bugs).toEqual({ url: 'https://github.com/lossless-js/lossless/issues' });
    expect(manifest.keywords.length).toBeGreaterThanOrEqual(3);
    expect(manifest.engines.node).toBe('>=22.19.0');
    expect(manifest.type).toBe('module');
  });

  it('names real version ranges, not workspace ones', () => {
    const ranges = Object.values({ ...manifest.dependencies, ...manifest.peerDependencies }) as string[];
    for (const range of ranges) expect(range).not.toMatch(/^(workspace|catalog):/);
  });
});
