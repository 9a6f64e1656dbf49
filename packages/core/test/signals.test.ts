import { describe, expect, it, vi } from 'vitest';
import { type ProcessFacts, startupWarnings } from '../src/signals.js';

function facts(overrides: Partial<ProcessFacts> = {}): ProcessFacts {
  return {
    pid: 4321,
    ppid: 4000,
    platform: 'linux',
    env: {},
    commOf: () => 'bash',
    ...overrides,
  };
}

const codes = (f: ProcessFacts): string[] => startupWarnings(f).map((w) => w.code);

describe('startupWarnings', () => {
  it('warns when node runs as PID 1', () => {
    const warnings = startupWarnings(facts({ pid: 1, ppid: 0 }));
    expect(warnings.map((w) => w.code)).toEqual(['LOSSLESS_WARN_PID1']);
    expect(warnings[0]?.message).toMatch(/init/);
  });

  it('warns when npm started node as the container PID 1', () => {
    const warnings = startupWarnings(facts({ ppid: 1, env: { npm_lifecycle_event: 'start' } }));
    expect(warnings.map((w) => w.code)).toEqual(['LOSSLESS_WARN_NPM_PID1']);
    expect(warnings[0]?.message).toContain('npm run start');
  });

  it('does not warn about npm when npm is not PID 1', () => {
    expect(codes(facts({ ppid: 77, env: { npm_lifecycle_event: 'start' } }))).toEqual([]);
  });

  it('warns when a shell running as PID 1 is the parent on Linux', () => {
    const commOf = vi.fn((pid: number) => (pid === 1 ? 'sh' : undefined));
    const warnings = startupWarnings(facts({ ppid: 1, commOf }));
    expect(warnings.map((w) => w.code)).toEqual(['LOSSLESS_WARN_SHELL_PID1']);
    expect(warnings[0]?.message).toContain('(sh)');
    expect(commOf).toHaveBeenCalledWith(1);
  });

  it.each(['bash', 'dash', 'ash', 'zsh'])('recognises %s as a shell', (shell) => {
    expect(codes(facts({ ppid: 1, commOf: () => shell }))).toEqual(['LOSSLESS_WARN_SHELL_PID1']);
  });

  it('does not warn when PID 1 is an init such as tini, or unknown', () => {
    expect(codes(facts({ ppid: 1, commOf: () => 'tini' }))).toEqual([]);
    expect(codes(facts({ ppid: 1, commOf: () => undefined }))).toEqual([]);
  });

  it('only looks for a shell parent on Linux', () => {
    expect(codes(facts({ ppid: 1, platform: 'darwin', commOf: () => 'sh' }))).toEqual([]);
  });

  it('reports the npm case rather than the shell case when both apply', () => {
    expect(codes(facts({ ppid: 1, env: { npm_lifecycle_event: 'start' }, commOf: () => 'sh' }))).toEqual([
      'LOSSLESS_WARN_NPM_PID1',
    ]);
  });

  it('gives no warning for a normal process', () => {
    const commOf = vi.fn(() => 'sh');
    expect(startupWarnings(facts({ commOf }))).toEqual([]);
    // the parent is not PID 1, so PID 1 is not even looked at
    expect(commOf).not.toHaveBeenCalled();
  });

  it('reads the current process when given no facts', () => {
    const found = startupWarnings().map((w) => w.code);
    expect(found.includes('LOSSLESS_WARN_PID1')).toBe(process.pid === 1);
    if (process.ppid !== 1) expect(found).toEqual(process.pid === 1 ? ['LOSSLESS_WARN_PID1'] : []);
  });
});
