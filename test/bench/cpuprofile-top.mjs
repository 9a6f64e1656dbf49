// Reads a .cpuprofile (node --cpu-prof) and prints where the time went: the functions with the most
// self time, the same grouped by package (also with native and node: time charged to the nearest
// package function that called it), and the total (self + callees) time of every function of
// the lossless packages, with dist positions mapped back to src through the source maps.
//
//   node --cpu-prof --cpu-prof-dir=/tmp/prof test/bench/client-overhead.mjs --clients lossless-request --rounds 1
//   node test/bench/cpuprofile-top.mjs /tmp/prof/CPU.*.cpuprofile [--top 30] [--filter lossless]

import { existsSync, readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { fileURLToPath } from 'node:url';
import { flags, usageError } from './report.mjs';

const USAGE = 'Usage: node test/bench/cpuprofile-top.mjs FILE.cpuprofile [--top 30] [--filter packages/]';
const { values, positionals } = flags(
  { top: { type: 'string', default: '30' }, filter: { type: 'string', default: 'packages/' } },
  USAGE,
  { allowPositionals: true },
);
if (positionals.length !== 1) usageError('expected one .cpuprofile file', USAGE);
const top = Number(values.top);
const profile = JSON.parse(readFileSync(positionals[0], 'utf8'));

const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

// time per sample: the deltas (µs); the first one belongs to no sample
const selfUs = new Map();
const stackUs = new Map(); // node id -> µs of samples whose leaf is it
let totalUs = 0;
for (let i = 0; i < profile.samples.length; i++) {
  const dt = profile.timeDeltas[i + 1] ?? 0;
  const id = profile.samples[i];
  stackUs.set(id, (stackUs.get(id) ?? 0) + dt);
  totalUs += dt;
}

const maps = new Map();
function position(cf) {
  const line = cf.lineNumber;
  const col = cf.columnNumber;
  if (!cf.url.startsWith('file://')) return `${cf.url || '(native)'}:${line + 1}`;
  const file = fileURLToPath(cf.url);
  let map = maps.get(file);
  if (map === undefined) {
    map = null;
    if (existsSync(`${file}.map`)) {
      try {
        map = new SourceMap(JSON.parse(readFileSync(`${file}.map`, 'utf8')));
      } catch {}
    }
    maps.set(file, map);
  }
  const short = file.replace(/^.*\/node_modules\/\.pnpm\/[^/]+\/node_modules\//, '').replace(/^.*\/work\/main\//, '');
  if (map === null) return `${short}:${line + 1}`;
  const entry = map.findEntry(line, col);
  if (entry?.originalSource === undefined) return `${short}:${line + 1}`;
  const src = new URL(entry.originalSource, cf.url).pathname.replace(/^.*\/work\/main\//, '');
  return `${src}:${entry.originalLine + 1}`;
}

function keyOf(node) {
  const cf = node.callFrame;
  return `${cf.functionName || '(anonymous)'}  ${position(cf)}`;
}

function groupOf(node) {
  const url = node.callFrame.url;
  if (url === '') return node.callFrame.functionName.startsWith('(') ? node.callFrame.functionName : '(native/builtin)';
  if (url.startsWith('node:')) return 'node: internals';
  const m = /node_modules\/\.pnpm\/([^/]+)\//.exec(url) ?? /\/packages\/([^/]+)\//.exec(url);
  if (m !== null) return m[1].replace(/@[\d.]+.*$/, '');
  if (url.includes('/test/bench/')) return 'benchmark driver';
  return url;
}

// the nearest caller that is a file (not native, not node:), to which native and Node.js time is charged
function ownerOf(id) {
  for (let at = id; at !== undefined; at = parent.get(at)) {
    const url = byId.get(at).callFrame.url;
    if (url !== '' && !url.startsWith('node:')) return byId.get(at);
  }
  return byId.get(id);
}

const inclusive = new Map();
const groups = new Map();
const owned = new Map();
const ownedGroups = new Map();
for (const [leaf, us] of stackUs) {
  const leafNode = byId.get(leaf);
  const k = keyOf(leafNode);
  selfUs.set(k, (selfUs.get(k) ?? 0) + us);
  const g = groupOf(leafNode);
  groups.set(g, (groups.get(g) ?? 0) + us);
  const owner = ownerOf(leaf);
  const ok = keyOf(owner);
  owned.set(ok, (owned.get(ok) ?? 0) + us);
  const og = groupOf(owner);
  ownedGroups.set(og, (ownedGroups.get(og) ?? 0) + us);
  const seen = new Set();
  for (let id = leaf; id !== undefined; id = parent.get(id)) {
    const key = keyOf(byId.get(id));
    if (seen.has(key)) continue;
    seen.add(key);
    inclusive.set(key, (inclusive.get(key) ?? 0) + us);
  }
}

const pct = (us) => `${((us / totalUs) * 100).toFixed(1).padStart(5)} %`;
const print = (title, entries, n) => {
  console.log(`\n${title}`);
  for (const [k, us] of [...entries].sort((a, b) => b[1] - a[1]).slice(0, n)) console.log(`${pct(us)}  ${k}`);
};
console.log(`${positionals[0]}: ${(totalUs / 1e6).toFixed(2)} s sampled`);
print('self time by package', groups, top);
print('self time by function', selfUs, top);
print('self time by package, native and node: time charged to the nearest package caller', ownedGroups, top);
print('self time by function, native and node: time charged to the nearest package caller', owned, top);
print(
  `total (self + callees) time of functions under "${values.filter}"`,
  [...inclusive].filter(([k]) => k.includes(values.filter)),
  top,
);
