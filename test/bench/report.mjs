// Statistics, table rendering, run metadata and command-line flags shared by the benchmarks.

import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
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

/**
 * A 95 % interval of the median of `values` (percentile bootstrap, 2000 resamples, seeded so that
 * the same numbers print the same interval): how far a median of noisy per-round ratios can be
 * trusted.
 */
export function medianInterval(values, { resamples = 2000, seed = 1 } = {}) {
  if (values.length === 0) return [Number.NaN, Number.NaN];
  let state = seed >>> 0;
  // mulberry32: a small seeded generator, enough for resampling
  const random = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const medians = new Float64Array(resamples);
  const sample = new Array(values.length);
  for (let b = 0; b < resamples; b++) {
    for (let i = 0; i < values.length; i++) sample[i] = values[Math.floor(random() * values.length)];
    medians[b] = median(sample);
  }
  medians.sort();
  return [medians[Math.floor(resamples * 0.025)], medians[Math.ceil(resamples * 0.975) - 1]];
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

/**
 * node:util's parseArgs plus --help (the usage on stdout, exit 0). A wrong flag (unknown, missing its
 * value, a stray argument) prints the message, which names the flag, and the usage on stderr and
 * exits with code 2, instead of a stack trace.
 */
export function flags(options, usage, { allowPositionals = false, args } = {}) {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals,
      options: { ...options, help: { type: 'boolean', short: 'h', default: false } },
    });
  } catch (error) {
    if (!String(error?.code).startsWith('ERR_PARSE_ARGS')) throw error;
    // "Unknown option '--x'. To specify a positional argument starting with a '-', ...": the first
    // sentence says what is wrong
    usageError(error.message.split('. ')[0], usage);
  }
  if (parsed.values.help) {
    console.log(usage);
    process.exit(0);
  }
  return allowPositionals ? parsed : parsed.values;
}

/** A bad flag or flag value: the message and the usage on stderr, exit code 2. */
export function usageError(message, usage) {
  console.error(`${message}\n\n${usage}`);
  process.exit(2);
}
