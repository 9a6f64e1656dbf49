// The image of examples/kubernetes/Dockerfile, built without a container engine: the Dockerfile's
// own steps replayed in temporary folders (one per stage): its COPY lines copy exactly what they name
// from the build context (the repository, less what .dockerignore leaves out), its RUN lines run as
// written, in the stage's WORKDIR, with the stage's ENV and nothing of this test's environment but PATH
// and HOME (the install uses the machine's pnpm store, and is offline where the Dockerfile is). Then
// both examples are started from the run stage's tree, as the image's CMD and consumer.yaml start them,
// with NODE_ENV=production: the provider must become ready and the consumer must get its answers.
// (The image once left prom-client out, which @lossless/core/metrics imports: ERR_MODULE_NOT_FOUND
// at start.) Only what a container would do differently is changed: every address is 127.0.0.1,
// every port is picked by the system, the registry is a file registry in a temporary folder.

import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, isAbsolute, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchScript, listening, type RunningExample } from '../process/example.js';
import { call, until } from '../support.js';
import { dockerfile, dockerignore, type Instruction, stages } from './dockerfile.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DOCKERFILE = join(ROOT, 'examples/kubernetes/Dockerfile');
const exec = promisify(execFile);

const instructions = dockerfile(readFileSync(DOCKERFILE, 'utf8'));
const ignored = dockerignore(readFileSync(join(ROOT, '.dockerignore'), 'utf8'));
const work = mkdtempSync(join(tmpdir(), 'lossless-image-'));

/** What replaying a stage gives: its file system root, working directory, ENV and CMD. */
interface Stage {
  readonly name: string | undefined;
  readonly root: string;
  cwd: string;
  readonly env: Record<string, string>;
  cmd: string[] | undefined;
}

/** A path of the container, inside the stage's root folder. */
const inside = (stage: Stage, path: string) => (isAbsolute(path) ? join(stage.root, path) : join(stage.cwd, path));

/** Copies `source` (a file or a folder, whose contents are copied) to `dest`, skipping what `skip` says. */
function copy(source: string, dest: string, destIsFolder: boolean, skip: (path: string) => boolean): void {
  if (statSync(source).isDirectory()) {
    mkdirSync(dest, { recursive: true });
    // symlinks as they are (pnpm's are relative), as Docker copies them
    cpSync(source, dest, { recursive: true, verbatimSymlinks: true, filter: (from) => !skip(from) });
    return;
  }
  const target =
    destIsFolder || (existsSync(dest) && statSync(dest).isDirectory()) ? join(dest, basename(source)) : dest;
  mkdirSync(dirname(target), { recursive: true });
  cpSync(source, target);
}

async function replay(): Promise<Map<string, Stage>> {
  const built = new Map<string, Stage>();
  for (const [index, { name, body }] of stages(instructions).entries()) {
    const root = join(work, `stage-${index}`);
    mkdirSync(root);
    const stage: Stage = { name, root, cwd: root, env: {}, cmd: undefined };
    for (const { keyword, args } of body) await step(stage, keyword, args, built);
    built.set(name ?? String(index), stage);
  }
  return built;
}

async function step(
  stage: Stage,
  keyword: Instruction['keyword'],
  args: string,
  built: Map<string, Stage>,
): Promise<void> {
  switch (keyword) {
    case 'WORKDIR':
      stage.cwd = inside(stage, args);
      mkdirSync(stage.cwd, { recursive: true });
      return;
    case 'ENV': {
      const m = /^(\w+)[= ](.*)$/.exec(args);
      if (m === null) throw new Error(`ENV ${args}: expected NAME=value`);
      stage.env[m[1] as string] = m[2] as string;
      return;
    }
    case 'COPY': {
      if (args.startsWith('[')) throw new Error(`COPY ${args}: the JSON form is not replayed here`);
      const words = args.split(/\s+/);
      const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length);
      const paths = words.filter((w) => !w.startsWith('--'));
      const dest = paths.pop() as string;
      const destPath = inside(stage, dest);
      const many = paths.length > 1 || dest.endsWith('/');
      for (const path of paths) {
        if (from !== undefined) {
          const source = built.get(from);
          if (source === undefined) throw new Error(`COPY --from=${from}: no such stage before this one`);
          copy(inside(source, path), destPath, many, () => false);
        } else {
          // from the build context: the repository as the .dockerignore lets it through
          if (ignored(path)) throw new Error(`COPY ${path}: left out of the build context by .dockerignore`);
          const source = join(ROOT, path);
          if (!existsSync(source)) throw new Error(`COPY ${path}: not in the repository`);
          copy(source, destPath, many, (file) => ignored(relative(ROOT, file)));
        }
      }
      return;
    }
    case 'RUN': {
      // the image installs pnpm with npm; here the machine's pnpm must be that version
      const pnpm = /^npm install --global pnpm@(\S+)$/.exec(args);
      if (pnpm !== null) {
        const { stdout } = await exec('pnpm', ['--version']);
        expect(stdout.trim(), 'the pnpm version the Dockerfile installs').toBe(pnpm[1]);
        return;
      }
      // replayed outside a container: a path of the container's own file system would escape the stage
      expect(args, 'RUN with paths relative to WORKDIR').not.toMatch(/(^|\s)\/\w/);
      const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...stage.env };
      await exec('sh', ['-c', args], { cwd: stage.cwd, env, maxBuffer: 64 * 1024 * 1024 }).catch(
        (error: { stdout?: string; stderr?: string; message: string }) => {
          throw new Error(`RUN ${args}\n${error.message}\n${error.stdout ?? ''}\n${error.stderr ?? ''}`);
        },
      );
      return;
    }
    case 'CMD':
      stage.cmd = JSON.parse(args) as string[];
      return;
    case 'USER':
    case 'EXPOSE':
      return; // what a container engine does with these does not change the files
    default:
      throw new Error(`${keyword} is not replayed here: teach test/kubernetes/image.test.ts what it does`);
  }
}

/** The value after `name` in argv, or undefined. */
const flag = (argv: readonly string[], name: string) => {
  const i = argv.lastIndexOf(name);
  return i === -1 ? undefined : argv[i + 1];
};

describe('examples/kubernetes/Dockerfile, replayed without a container engine', () => {
  let image: Stage;
  const registryDir = join(work, 'registry');
  let provider: RunningExample | undefined;

  beforeAll(async () => {
    mkdirSync(registryDir);
    const built = await replay();
    image = [...built.values()].at(-1) as Stage;
    // the image is the last stage alone: nothing may point back into the others
    for (const stage of built.values()) if (stage !== image) rmSync(stage.root, { recursive: true, force: true });
  }, 300_000);

  afterAll(async () => {
    if (provider !== undefined && provider.child.exitCode === null && provider.child.signalCode === null) {
      provider.child.kill('SIGKILL');
      await provider.exited;
    }
    rmSync(work, { recursive: true, force: true });
  });

  it('holds the runtime dependencies, and leaves the workspace build tools out', () => {
    // every package folder right under a node_modules/ of the image (pnpm's .pnpm store entries too)
    const names = new Set(
      readdirSync(image.root, { recursive: true, encoding: 'utf8' }).flatMap((path) =>
        [...path.matchAll(/(?:^|\/)node_modules\/((?:@[^/.][^/]*\/)?[^/.][^/]*)/g)].map((m) => m[1] as string),
      ),
    );
    for (const needed of ['express', 'prom-client', 'nacos-naming', '@grpc/grpc-js', 'undici', 'opossum'])
      expect(names).toContain(needed);
    // (@types/node may be there: protobufjs, under the Nacos gRPC client, depends on it)
    for (const tool of ['typescript', 'vitest', '@biomejs/biome', 'tsx'])
      expect(names, [...names].join(' ')).not.toContain(tool);
  });

  it('starts the provider of its CMD with NODE_ENV=production: it becomes ready and answers', async () => {
    expect(image.env.NODE_ENV).toBe('production');
    const cmd = image.cmd ?? [];
    expect(cmd[0]).toBe('node');
    const env = {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      ...image.env,
      LOSSLESS_REGISTRY: pathToFileURL(registryDir).href,
    };
    // the image's own arguments, then loopback addresses and free ports instead of 0.0.0.0:3000/9797
    const args = [...cmd.slice(2), '--host', '127.0.0.1', '--port', '0', '--admin-port', '0'];
    expect(flag(cmd, '--host')).toBe('0.0.0.0');
    provider = await listening(launchScript(cmd[1] as string, args, { cwd: image.cwd, env }), 30_000);
    const ready = provider;
    await until(async () => (await call(ready.adminPort, '/readyz')).status === 200, '/readyz 200', 15_000);
    expect((await call(ready.port, '/hello')).status).toBe(200);
  }, 60_000);

  it('starts the consumer of consumer.yaml: it finds the provider and gets its answers', async () => {
    expect(provider, 'the provider of the previous test').toBeDefined();
    const env = {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      ...image.env,
      LOSSLESS_REGISTRY: pathToFileURL(registryDir).href,
    };
    const consumer = launchScript(
      'examples/consumer/client.mjs',
      ['--service', 'hello-service', '--rate', '20', '--duration', '2'],
      { cwd: image.cwd, env },
    );
    const { code } = await consumer.exited;
    const summary = consumer.logs().find((l) => l.msg === 'summary') as { ok?: number; failed?: number } | undefined;
    expect(summary, consumer.lines.join('\n')).toBeDefined();
    expect(summary?.ok).toBeGreaterThan(20);
    expect(summary?.failed).toBe(0);
    expect(code).toBe(0);
  }, 60_000);

  it('drains the provider on SIGTERM and exits with 0', async () => {
    const running = provider;
    expect(running).toBeDefined();
    running?.child.kill('SIGTERM');
    expect((await running?.exited)?.code).toBe(0);
  }, 30_000);
});
