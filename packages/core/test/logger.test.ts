import { describe, expect, it } from 'vitest';
import { RegistryError } from '../src/errors.js';
import { createStderrLogger, formatLine, silentLogger } from '../src/logger.js';

describe('the default logger', () => {
  it('drops debug and info, and writes each warning and error as one line with its code (newlines stay escaped in the JSON)', () => {
    const lines: string[] = [];
    const logger = createStderrLogger((line) => lines.push(line));
    logger.debug({ a: 1 }, 'debug');
    logger.info({ a: 1 }, 'info');
    const error = new RegistryError('register', 'orders', new Error('connect ECONNREFUSED\n  at somewhere'));
    logger.warn({ err: error, code: error.code, attempt: 2 }, 'registration failed, retrying');
    logger.error({ code: 'LOSSLESS_ERR_DRAIN_TIMEOUT' }, 'Drain reached its maximum');
    expect(lines).toEqual([
      'lossless warn LOSSLESS_ERR_REGISTRY: registration failed, retrying {"attempt":2,"err":"registry register for service \\"orders\\" failed: connect ECONNREFUSED\\n  at somewhere"}\n',
      'lossless error LOSSLESS_ERR_DRAIN_TIMEOUT: Drain reached its maximum\n',
    ]);
  });

  it("carries a child's bindings (but not the component, which the prefix says)", () => {
    const lines: string[] = [];
    const child = createStderrLogger((line) => lines.push(line)).child?.({ service: 'orders', component: 'lossless' });
    child?.warn({ code: 'LOSSLESS_WARN_PID1' }, 'node runs as PID 1');
    expect(lines).toEqual(['lossless warn LOSSLESS_WARN_PID1: node runs as PID 1 {"service":"orders"}\n']);
  });

  it('takes the message and the code from the error when the line has none, and keeps long fields to one short line', () => {
    const error = Object.assign(new Error('boom'), { code: 'ECONNRESET' });
    expect(formatLine('error', { err: error }, undefined)).toBe('lossless error ECONNRESET: boom\n');
    const long = formatLine('warn', { list: 'x'.repeat(5000) }, 'long');
    expect(long.length).toBeLessThan(700);
    expect(long.split('\n')).toHaveLength(2);
  });

  it('silentLogger writes nothing and is still a logger', () => {
    for (const level of ['debug', 'info', 'warn', 'error'] as const)
      expect(() => silentLogger[level]({})).not.toThrow();
  });
});
