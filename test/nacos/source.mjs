// Where the Nacos tests get a Nacos-compatible server, in this order:
//   1. NACOS_ADDR (host:port) when set: a server someone already runs;
//   2. a Docker engine that answers: the official nacos/nacos-server v2 image through testcontainers;
//   3. rnacos, a Rust re-implementation of the Nacos server, built once from crates.io into the tools
//      folder (LOSSLESS_TOOLS_DIR, else .tools/ in the repository, which git ignores).
// The tests that stop, restart or secure their server use a local rnacos whatever the source (see
// `controlled` in server.ts). Shared by the test helper (server.ts) and `node test/nacos/source.mjs
// --ensure`, which `pnpm test` runs first so that rnacos is built before any test needs it.

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const RNACOS_VERSION = '0.8.8';
export const NACOS_IMAGE = 'nacos/nacos-server:v2.5.1';
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The folder rnacos is installed into: LOSSLESS_TOOLS_DIR, else .tools/ in the repository. */
export function toolsDir(env = process.env) {
  return env.LOSSLESS_TOOLS_DIR && env.LOSSLESS_TOOLS_DIR.trim() !== '' ? env.LOSSLESS_TOOLS_DIR : join(ROOT, '.tools');
}

export function rnacosPath(env = process.env) {
  const candidate = join(toolsDir(env), 'rnacos', 'bin', 'rnacos');
  return existsSync(candidate) ? candidate : undefined;
}

/**
 * Chooses the source from the facts; pure, so that the choice is unit-tested.
 * @param {{ nacosAddr?: string, dockerAvailable: boolean, rnacos?: string, cargoAvailable: boolean }} facts
 * @returns {{ kind: 'env', addr: string } | { kind: 'docker' } | { kind: 'rnacos', path: string } | { kind: 'build-rnacos' } | { kind: 'none', message: string }}
 */
export function chooseNacosSource(facts) {
  const addr = facts.nacosAddr?.trim();
  if (addr) return { kind: 'env', addr };
  if (facts.dockerAvailable) return { kind: 'docker' };
  if (facts.rnacos) return { kind: 'rnacos', path: facts.rnacos };
  if (facts.cargoAvailable) return { kind: 'build-rnacos' };
  return {
    kind: 'none',
    message:
      'The Nacos tests need a Nacos-compatible server and found none: set NACOS_ADDR=host:port to use a running Nacos, ' +
      'start a Docker engine (the nacos/nacos-server image is then used), or install Rust (cargo) so that rnacos can be ' +
      `built (cargo install rnacos@${RNACOS_VERSION} --locked --root ${join(toolsDir(), 'rnacos')}).`,
  };
}

/** True when a Docker engine answers on its socket within a second. */
export function dockerAvailable(env = process.env) {
  const host = env.DOCKER_HOST;
  const socket = host?.startsWith('unix://') ? host.slice(7) : host ? undefined : '/var/run/docker.sock';
  if (socket === undefined) return Promise.resolve(Boolean(host)); // tcp:// engines: trust the setting
  if (!existsSync(socket)) return Promise.resolve(false);
  return new Promise((resolve) => {
    const s = connect(socket);
    const done = (ok) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(1000, () => done(false));
    s.on('error', () => done(false));
    s.on('connect', () => s.write('GET /_ping HTTP/1.0\r\n\r\n'));
    s.on('data', (d) => done(d.toString().startsWith('HTTP/1.') && d.toString().includes(' 200 ')));
  });
}

export function cargoAvailable() {
  return spawnSync('cargo', ['--version'], { stdio: 'ignore' }).status === 0;
}

export async function currentFacts(env = process.env) {
  return {
    nacosAddr: env.NACOS_ADDR,
    dockerAvailable: await dockerAvailable(env),
    rnacos: rnacosPath(env),
    cargoAvailable: cargoAvailable(),
  };
}

/** Builds rnacos into the tools folder (several minutes the first time; reused afterwards). */
export function buildRnacos(env = process.env) {
  const root = join(toolsDir(env), 'rnacos');
  console.log(`Building rnacos ${RNACOS_VERSION} into ${root} for the Nacos tests (once; several minutes)...`);
  execFileSync('cargo', ['install', 'rnacos', '--version', RNACOS_VERSION, '--locked', '--root', root], {
    stdio: 'inherit',
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv.includes('--ensure')) {
  const facts = await currentFacts();
  const source = chooseNacosSource(facts);
  if (source.kind === 'none') {
    console.error(source.message);
    process.exit(1);
  }
  // the tests that stop, restart or secure their server use a local rnacos whatever the source: build
  // it whenever cargo can, also when Docker or NACOS_ADDR serves the others
  if (facts.rnacos === undefined && facts.cargoAvailable) buildRnacos();
  else if (facts.rnacos === undefined)
    console.warn(
      'cargo not found: the Nacos tests that stop, restart or secure their server (they need a local rnacos) will fail',
    );
  if (source.kind !== 'build-rnacos')
    console.log(`Nacos tests will use: ${source.kind === 'env' ? `NACOS_ADDR=${source.addr}` : source.kind}`);
}
