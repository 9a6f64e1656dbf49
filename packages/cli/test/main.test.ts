import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { main } from '../src/main.js';
import { VERSION } from '../src/version.js';
import { capture } from './helpers.js';

describe('lossless', () => {
  it.each([['--help'], ['-h']])('%s prints the overview of the commands and exits 0', async (flag) => {
    const io = capture();
    expect(await main([flag], io)).toBe(0);
    expect(io.stdout.text).toMatch(/^Usage: lossless <command>/);
    for (const command of ['prestop', 'status', 'demo', 'bench']) expect(io.stdout.text).toContain(`  ${command} `);
    expect(io.stderr.text).toBe('');
  });

  it.each(['prestop', 'status', 'demo', 'bench'])(
    '--help %s and %s --help print the help of the command',
    async (command) => {
      const before = capture();
      expect(await main(['--help', command], before)).toBe(0);
      const after = capture();
      expect(await main([command, '--help'], after)).toBe(0);
      expect(before.stdout.text).toMatch(new RegExp(`^Usage: lossless ${command}`));
      expect(after.stdout.text).toBe(before.stdout.text);
    },
  );

  it('without a command, prints the overview on stderr and exits 2', async () => {
    const io = capture();
    expect(await main([], io)).toBe(2);
    expect(io.stdout.text).toBe('');
    expect(io.stderr.text).toMatch(/^Usage: lossless <command>/);
    expect(io.stderr.text).toMatch(/lossless: LOSSLESS_ERR_CLI_USAGE: missing command; see 'lossless --help'\n$/);
  });

  it('exits 2 naming an unknown command', async () => {
    const io = capture();
    expect(await main(['drain', '--now'], io)).toBe(2);
    expect(io.stderr.text).toBe("lossless: LOSSLESS_ERR_CLI_USAGE: unknown command 'drain'; see 'lossless --help'\n");
  });

  it.each([
    [['--verbose'], "'--verbose'"],
    [['--help', 'drain'], "unknown command 'drain'"],
    [['--help', 'status', 'extra'], "unexpected argument 'extra'"],
  ])('exits 2 naming the bad input of %j', async (args, named) => {
    const io = capture();
    expect(await main(args, io)).toBe(2);
    expect(io.stderr.text).toMatch(/^lossless: LOSSLESS_ERR_CLI_USAGE: .+; see 'lossless --help'\n$/);
    expect(io.stderr.text).toContain(named);
  });

  it('--version prints the version of package.json', async () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(VERSION).toBe(pkg.version);
    const io = capture();
    expect(await main(['--version'], io)).toBe(0);
    expect(io.stdout.text).toBe(`${pkg.version}\n`);
  });
});
