// The packages as a user installs them, following docs/getting-started.md ("Your own app, from the
// packed packages"): `pnpm -r pack`, an empty app (`npm init -y`), `npm install` of the tarballs with
// the command the guide gives (the lossless packages from the tarballs, their dependencies from the
// npm registry), the guide's server.mjs and client.mjs written out as it shows them and run: the
// provider becomes ready, the client gets its answer by service name. Then what the guide promises
// beyond that: `require()` of every package from CommonJS (require(esm)), and a TypeScript consumer
// compiled with the project's compiler and `skipLibCheck: false` against the installed declarations,
// naming the types users write down.

import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchScript, type Running } from '../process/example.js';
import { call, until } from '../support.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const GUIDE = readFileSync(join(ROOT, 'docs/getting-started.md'), 'utf8');
const exec = promisify(execFile);
const work = mkdtempSync(join(tmpdir(), 'lossless-install-'));
const packed = join(work, 'lossless-packages');
const app = join(work, 'my-service');
const registry = join(work, 'registry');

/** The guide's section on installing from the packed packages. */
const section = (() => {
  const start = GUIDE.indexOf('## 6. Your own app, from the packed packages');
  if (start === -1)
    throw new Error('docs/getting-started.md has no section "6. Your own app, from the packed packages"');
  const end = GUIDE.indexOf('\n## ', start + 1);
  return GUIDE.slice(start, end === -1 ? undefined : end);
})();

/** A fenced block of the section whose info string is `<lang> <file>`, e.g. ```js server.mjs. */
function file(name: string): string {
  const m = new RegExp(`\`\`\`\\w+ ${name.replace('.', '\\.')}\\n([\\s\\S]*?)\`\`\``).exec(section);
  if (m === null) throw new Error(`no \`\`\`js ${name} block in the guide's section`);
  return m[1] as string;
}

/** Versions of the workspace catalog (pnpm-workspace.yaml): the compiler and types the project uses. */
function catalog(name: string): string {
  const m = new RegExp(`^\\s+"?${name.replace('/', '\\/')}"?: (.+)$`, 'm').exec(
    readFileSync(join(ROOT, 'pnpm-workspace.yaml'), 'utf8'),
  );
  if (m === null) throw new Error(`${name} is not in the catalog`);
  return (m[1] as string).trim();
}

async function sh(command: string, args: string[], cwd: string, env?: NodeJS.ProcessEnv): Promise<string> {
  try {
    const { stdout } = await exec(command, args, { cwd, env, maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (error) {
    const e = error as { message: string; stdout?: string; stderr?: string };
    throw new Error(`${command} ${args.join(' ')}\n${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
}

const env = () => ({
  PATH: process.env.PATH ?? '',
  HOME: process.env.HOME ?? '',
  LOSSLESS_REGISTRY: pathToFileURL(registry).href,
  LOSSLESS_ADMIN_PORT: '0',
  PORT: '0',
});

let server: Running | undefined;

beforeAll(async () => {
  mkdirSync(registry);
  mkdirSync(app);
  // the guide's pack command, into this test's folder
  const pack = /^pnpm -r --filter "\.\/packages\/\*" pack --pack-destination \S+$/m.exec(section)?.[0];
  expect(pack, 'the pack command of the guide').toBeDefined();
  await sh('pnpm', ['-r', '--filter', './packages/*', 'pack', '--pack-destination', packed], ROOT);
  await sh('npm', ['init', '-y'], app);
  // the guide's install command, word for word but for where the tarballs are
  const install = /^npm install (\.\.\/lossless-packages\/\S+\.tgz ?)+.*$/m.exec(section)?.[0];
  expect(install, 'the npm install command of the guide').toBeDefined();
  const words = (install as string)
    .split(/\s+/)
    .slice(2)
    .map((w) => w.replace('../lossless-packages/', `${packed}/`));
  await sh('npm', ['install', '--no-audit', '--no-fund', ...words], app);
}, 240_000);

afterAll(async () => {
  if (server !== undefined && server.child.exitCode === null && server.child.signalCode === null) {
    server.child.kill('SIGKILL');
    await server.exited;
  }
  rmSync(work, { recursive: true, force: true });
});

describe('the packed packages, installed as docs/getting-started.md says', () => {
  it('packs every package', () => {
    const tarballs = readdirSync(packed).sort();
    expect(tarballs).toEqual(
      ['cli', 'client', 'core', 'express', 'fastify', 'grpc', 'nacos'].map((name) =>
        expect.stringMatching(`^lossless-${name}-`),
      ),
    );
  });

  it("runs the guide's provider and client: ready, and answered by service name", async () => {
    writeFileSync(join(app, 'server.mjs'), file('server.mjs'));
    writeFileSync(join(app, 'client.mjs'), file('client.mjs'));
    server = launchScript('server.mjs', [], { cwd: app, env: env() });
    const running = server;
    let port = 0;
    await until(
      () => {
        if (running.child.exitCode !== null) throw new Error(`server.mjs exited: ${running.lines.join('\n')}`);
        const line = running.lines.find((l) => l.startsWith('listening on http://127.0.0.1:'));
        port = Number(line?.split(':').at(-1));
        return port > 0;
      },
      'server.mjs to listen',
      15_000,
    );
    expect((await call(port, '/hello')).status).toBe(200);

    const out = await sh(process.execPath, ['client.mjs'], app, env()).catch((error: Error) => error.message);
    expect(out).toMatch(/^200 \{ hello: 'world', pid: \d+ \}/);

    running.child.kill('SIGTERM');
    expect((await running.exited).code).toBe(0);
  }, 60_000);

  it('loads with require() from CommonJS (require(esm))', async () => {
    const script = [
      "for (const name of ['core', 'core/metrics', 'client', 'express', 'fastify', 'grpc', 'grpc/client', 'nacos', 'cli']) {",
      "  const m = require('@lossless/' + name);",
      "  if (Object.keys(m).length === 0) throw new Error(name + ' exports nothing');",
      '}',
      "if (typeof require('@lossless/core').createProvider !== 'function') throw new Error('createProvider');",
      "console.log('ok');",
    ].join('\n');
    // every package, and the optional and peer dependencies their entry points import
    await sh(
      'npm',
      [
        'install',
        '--no-audit',
        '--no-fund',
        ...readdirSync(packed).map((t) => join(packed, t)),
        `fastify@${catalog('fastify')}`,
        `prom-client@${catalog('prom-client')}`,
        `@grpc/grpc-js@${catalog('@grpc/grpc-js')}`,
      ],
      app,
    );
    expect((await sh(process.execPath, ['-e', script], app)).trim()).toBe('ok');
  }, 180_000);

  it('compiles a TypeScript consumer with skipLibCheck: false, naming the types users write down', async () => {
    await sh(
      'npm',
      [
        'install',
        '--no-audit',
        '--no-fund',
        '--save-dev',
        `typescript@${catalog('typescript')}`,
        `@types/node@${catalog('@types/node')}`,
        `@types/express@${catalog('@types/express')}`,
      ],
      app,
    );
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          types: ['node'],
        },
        include: ['consumer.mts'],
      }),
    );
    writeFileSync(join(app, 'consumer.mts'), CONSUMER);
    await sh(join(app, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.json'], app);
    // and the compiler is not blind: a wrong use is an error
    writeFileSync(join(app, 'consumer.mts'), `${CONSUMER}\nconst wrong: string = provider.status().inFlight;\n`);
    await expect(sh(join(app, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.json'], app)).rejects.toThrow(/TS2322/);
  }, 180_000);
});

/** A consumer of every package's public API, with the types a user writes down. */
const CONSUMER = `
import { createServer } from 'node:http';
import diagnosticsChannel from 'node:diagnostics_channel';
import {
  CHANNELS,
  createProvider,
  type DrainEvent,
  type DrainSummary,
  type MetricsSource,
  type ProviderOptions,
  type ProviderStatus,
  type Registry,
  type RegistryOperation,
  type StateChangeEvent,
} from '@lossless/core';
import { prometheusMetrics, type LosslessMetrics } from '@lossless/core/metrics';
import { createClient, type ClientOptions, type LosslessClient, type ServiceState } from '@lossless/client';
import { lossless as expressLossless } from '@lossless/express';
import { lossless as fastifyLossless } from '@lossless/fastify';
import { createNacosRegistry } from '@lossless/nacos';
import { main } from '@lossless/cli';
import express from 'express';
import Fastify from 'fastify';

const metrics: LosslessMetrics = prometheusMetrics();
const source: MetricsSource = metrics;
const options: ProviderOptions = { service: 'typed', server: createServer(), metrics: source };
export const provider = createProvider(options);
const status: ProviderStatus = provider.status();
export const inFlight: number = status.inFlight + status.requests;
export const lastDrain: DrainSummary | undefined = status.lastDrain;
export const registered: boolean = status.registry.registered;

diagnosticsChannel.subscribe(CHANNELS.registry, (message) => {
  const op = message as RegistryOperation;
  console.log(op.operation, op.ok, op.durationMs);
});
diagnosticsChannel.subscribe(CHANNELS.drain, (message) => console.log((message as DrainEvent).summary.drainMs));
diagnosticsChannel.subscribe(CHANNELS.state, (message) => console.log((message as StateChangeEvent).to));

const clientOptions: ClientOptions = { registry: 'static://127.0.0.1:1' };
export const client: LosslessClient = createClient(clientOptions);
export const service: ServiceState = client.service('typed');
export const nacos: Registry = createNacosRegistry('nacos://127.0.0.1:8848');
export const expressProvider = expressLossless(express(), { service: 'typed-express' });
export const fastifyProvider = fastifyLossless(Fastify(), { service: 'typed-fastify' });
export const cli: (argv: readonly string[]) => Promise<number> = (argv) => main(argv);
`;
