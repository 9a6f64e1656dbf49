// The Java probe of the interop tests (test/nacos/java/: a Java nacos-client driven by JSON lines),
// built with Maven into the tools folder, once per content of its sources and per client version,
// and reused. Shared by the test helper (java.ts) and `node test/nacos/java-probe.mjs --ensure`,
// which `pnpm test` runs before vitest so that no test timeout is spent in Maven. Without `java` or
// `mvn` nothing is built and the interop tests skip, saying why.
// LOSSLESS_NACOS_JAVA_VERSION chooses the nacos-client version (default below; 3.x works too).

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { delimiter, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { toolsDir } from './source.mjs';

export const DEFAULT_NACOS_JAVA_VERSION = '2.4.3';
const PROJECT = fileURLToPath(new URL('./java', import.meta.url));

/** The nacos-client version the probe is built with. */
export function nacosJavaVersion(env = process.env) {
  const v = env.LOSSLESS_NACOS_JAVA_VERSION?.trim();
  return v ? v : DEFAULT_NACOS_JAVA_VERSION;
}

/** Why the interop tests cannot run here (no `java` 17+ or no `mvn`), else undefined. */
export function javaSkipReason() {
  const java = spawnSync('java', ['-version'], { encoding: 'utf8' });
  if (java.error !== undefined || java.status !== 0)
    return 'the Java interop tests need a JDK 17+ (`java` on the PATH) and Maven (`mvn`): `java` was not found';
  const major = /version "(\d+)/.exec(java.stderr)?.[1];
  if (major !== undefined && Number(major) < 17)
    return `the Java interop tests need a JDK 17+; \`java -version\` says ${major}`;
  const mvn = spawnSync('mvn', ['-v'], { encoding: 'utf8' });
  if (mvn.error !== undefined || mvn.status !== 0)
    return 'the Java interop tests need Maven (`mvn` on the PATH) to build their probe: `mvn` was not found';
  return undefined;
}

/** Every file of the Maven project, relative to it, in a stable order. */
function sources(dir = PROJECT) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    if (name === 'target') continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sources(path));
    else out.push(relative(PROJECT, path));
  }
  return out;
}

/** Where the probe built from the current sources and version lives. */
export function probeDir(env = process.env) {
  const hash = createHash('sha256');
  const version = nacosJavaVersion(env);
  hash.update(`nacos-client ${version}\n`);
  for (const file of sources()) hash.update(`${file}\n`).update(readFileSync(join(PROJECT, file)));
  return join(toolsDir(env), 'java-probe', `${version}-${hash.digest('hex').slice(0, 16)}`);
}

/** The class path of a built probe, or undefined when it is not built. */
export function probeClassPath(env = process.env) {
  const dir = probeDir(env);
  if (!existsSync(join(dir, 'target', 'classes'))) return undefined;
  return [join(dir, 'target', 'classes'), join(dir, 'target', 'lib', '*')].join(delimiter);
}

/** Builds the probe when it is not built yet; returns its class path. */
export function ensureProbe(env = process.env) {
  const built = probeClassPath(env);
  if (built !== undefined) return built;
  const dir = probeDir(env);
  const version = nacosJavaVersion(env);
  // built aside and renamed into place, so that a half-built folder is never taken for a build
  const work = `${dir}.building-${process.pid}`;
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  cpSync(PROJECT, work, { recursive: true, filter: (src) => !src.startsWith(join(PROJECT, 'target')) });
  console.log(`Building the Java probe (nacos-client ${version}) into ${dir} for the interop tests (once)...`);
  const started = Date.now();
  const mvn = spawnSync('mvn', ['-B', '-q', `-Dnacos.version=${version}`, 'package'], {
    cwd: work,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (mvn.status !== 0) {
    rmSync(work, { recursive: true, force: true });
    throw new Error(`building the Java probe failed (mvn package, exit ${mvn.status}):\n${mvn.stdout}\n${mvn.stderr}`);
  }
  try {
    renameSync(work, dir);
  } catch (error) {
    // another process finished the same build first: keep theirs
    rmSync(work, { recursive: true, force: true });
    if (!existsSync(dir)) throw error;
  }
  console.log(`Java probe built in ${((Date.now() - started) / 1000).toFixed(1)} s.`);
  return probeClassPath(env);
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv.includes('--ensure')) {
  const reason = javaSkipReason();
  if (reason !== undefined) console.log(`Java interop tests will be skipped: ${reason}.`);
  else {
    ensureProbe();
    console.log(`Java interop tests will use nacos-client ${nacosJavaVersion()}.`);
  }
}
