// Statistics, table rendering and run metadata shared by the overhead benchmarks.

import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** The i-th loopback address (i from 0): 127.0.0.1, 127.0.0.2, ... 127.0.1.0, ... */
export function loopback(i) {
  const n = i + 1;
  return `127.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
}

export function quantile(sorted, q) {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

export function median(values) {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function fmt(n, digits) {
  return Number.isFinite(n) ? n.toFixed(digits) : '-';
}

export function pct(ratio) {
  if (!Number.isFinite(ratio)) return '-';
  const d = (ratio - 1) * 100;
  return `${ratio.toFixed(3)} (${d >= 0 ? '+' : ''}${d.toFixed(1)} %)`;
}

/** A text table: the first row is the header, the first column left-aligned, the others right-aligned. */
export function render(rows) {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const line = (r) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ');
  return [line(rows[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

/** global.gc without --expose-gc, to collect between measurements so one variant does not pay for another's garbage. */
export function exposeGc() {
  try {
    setFlagsFromString('--expose-gc');
    return runInNewContext('gc');
  } catch {
    return undefined;
  }
}

export function versionOf(name) {
  try {
    return createRequire(import.meta.url)(`${name}/package.json`).version;
  } catch {
    return undefined;
  }
}

/** HEAD's commit, marked when the packages measured have uncommitted changes. */
export function gitCommit(packages) {
  try {
    const root = fileURLToPath(new URL('../..', import.meta.url));
    const git = { cwd: root, encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'ignore'] };
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], git).trim();
    const paths = packages.map((p) => `packages/${p}`);
    const dirty = execFileSync('git', ['status', '--porcelain', '--', ...paths], git).trim();
    return dirty === '' ? commit : `${commit} (${paths.join(', ')} modified)`;
  } catch {
    return undefined;
  }
}
