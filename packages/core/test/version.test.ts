import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { VERSION } from '../src/version.js';

describe('VERSION', () => {
  it("equals packages/core/package.json's version", async () => {
    const manifest = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as {
      name?: string;
      version?: string;
    };
    expect(manifest.name).toBe('@lossless/core');
    expect(typeof manifest.version).toBe('string');
    expect(VERSION).toBe(manifest.version);
  });
});
