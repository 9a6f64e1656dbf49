// The Kubernetes example (examples/kubernetes/) without a cluster: every YAML document is validated
// against the Kubernetes API schemas shipped in the kubernetes-models package (compiled JSON-schema
// validators, nothing downloaded), and the settings lossless depends on are checked against lossless's
// own option resolution: probes on the admin port's paths, a preStop hook that drains, a grace period
// longer than the longest drain, a rollout that never removes a pod before its replacement is ready,
// and an image whose CMD starts node itself. The preStop command is also run, as the kubelet would,
// against a real provider process.

import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Script } from 'node:vm';
import { FileRegistry } from '@lossless/core';
import { Deployment, type IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IProbe } from 'kubernetes-models/v1/Probe';
import { type ISecret, Secret } from 'kubernetes-models/v1/Secret';
import { type IService, Service } from 'kubernetes-models/v1/Service';
// the compiler's JS API: TypeScript 7 (the native compiler) has none yet, 6 has
import ts from 'typescript-api';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { isLoopback } from '../../packages/core/src/admin/handler.js';
import { resolveProviderOptions } from '../../packages/core/src/options.js';
import { ADMIN_CLOSE_TIMEOUT_MS } from '../../packages/core/src/provider.js';
import { startExample } from '../process/example.js';
import { tempRegistry, until } from '../support.js';
import { dockerfile } from './dockerfile.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DIR = join(ROOT, 'examples/kubernetes');

// ------------------------------------------------------------------------------------------------
// Reading the manifests

/** The kinds the example uses, each with its schema validator. A new kind fails until added here. */
const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'apps/v1/Deployment': Deployment,
  'v1/Service': Service,
  'v1/Secret': Secret,
};

interface Manifest {
  readonly file: string;
  readonly index: number;
  readonly doc: { apiVersion?: string; kind?: string; metadata?: { name?: string } };
}

function manifests(): Manifest[] {
  const out: Manifest[] = [];
  for (const file of readdirSync(DIR).filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))) {
    parseAllDocuments(readFileSync(join(DIR, file), 'utf8')).forEach((document, index) => {
      if ('errors' in document && document.errors.length > 0)
        throw new Error(`${file}, document ${index + 1}: ${document.errors.map((e) => e.message).join('; ')}`);
      const doc = document.toJS() as Manifest['doc'] | null;
      if (doc !== null) out.push({ file, index, doc });
    });
  }
  return out;
}

const all = manifests();
const byKind = <T>(kind: string, file?: string): T[] =>
  all.filter((m) => m.doc.kind === kind && (file === undefined || m.file === file)).map((m) => m.doc as T);
const only = <T>(items: T[], what: string): T => {
  expect(items, what).toHaveLength(1);
  return items[0] as T;
};

const provider = only(byKind<IDeployment>('Deployment', 'provider.yaml'), 'the Deployment of provider.yaml');
const consumer = only(byKind<IDeployment>('Deployment', 'consumer.yaml'), 'the Deployment of consumer.yaml');
const service = only(byKind<IService>('Service', 'provider.yaml'), 'the Service of provider.yaml');
const secrets = byKind<ISecret>('Secret');

const podSpec = (d: IDeployment) => d.spec?.template.spec;
const container = (d: IDeployment): IContainer =>
  only(podSpec(d)?.containers ?? [], `containers of ${d.metadata?.name}`);

/** Literal env values of a container, plus the values its secretKeyRefs point at in secret.yaml. */
function environment(c: IContainer): Record<string, string> {
  const env: Record<string, string> = {};
  for (const variable of c.env ?? []) {
    if (variable.value !== undefined) env[variable.name] = variable.value;
    const ref = variable.valueFrom?.secretKeyRef;
    if (ref !== undefined) {
      const secret = secrets.find((s) => s.metadata?.name === ref.name);
      expect(secret, `the Secret ${ref.name} that ${variable.name} reads`).toBeDefined();
      const encoded = secret?.data?.[ref.key];
      const value =
        secret?.stringData?.[ref.key] ??
        (encoded === undefined ? undefined : Buffer.from(encoded, 'base64').toString());
      expect(value, `key ${ref.key} of the Secret ${ref.name}`).toBeDefined();
      env[variable.name] = value as string;
    }
  }
  return env;
}

/** The value of `--name value` in an argument list. */
const flag = (args: readonly string[], name: string): string | undefined => {
  const i = args.lastIndexOf(name);
  return i === -1 ? undefined : args[i + 1];
};

/** A probe's or hook's port, as a number: named ports are looked up among the container's ports. */
function portNumber(c: IContainer, port: number | string | undefined): number | undefined {
  if (typeof port === 'number') return port;
  return c.ports?.find((p) => p.name === port)?.containerPort;
}

/** Parsed declaration files, kept across calls: they do not change while the tests run. */
const declarations = new Map<string, ts.SourceFile | undefined>();

/**
 * Type-checks the documents as object literals of kubernetes-models' interfaces (`IDeployment` for
 * apps/v1 Deployment...) in a file that exists only in memory, and returns TypeScript's errors.
 */
function unknownFields(docs: readonly Manifest['doc'][]): string[] {
  const file = join(fileURLToPath(new URL('.', import.meta.url)), '__manifests__.ts');
  const text = docs
    .map(
      (doc, i) =>
        `import type { I${doc.kind} as T${i} } from 'kubernetes-models/${doc.apiVersion}/${doc.kind}';\n` +
        `export const doc${i}: T${i} = ${JSON.stringify(doc, null, 2)};\n`,
    )
    .join('');
  const options: ts.CompilerOptions = {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const { getSourceFile, fileExists, readFile } = host;
  host.getSourceFile = (name, language, ...rest) => {
    if (name === file) return ts.createSourceFile(name, text, language);
    if (!declarations.has(name)) declarations.set(name, getSourceFile(name, language, ...rest));
    return declarations.get(name);
  };
  host.fileExists = (name) => name === file || fileExists(name);
  host.readFile = (name) => (name === file ? text : readFile(name));
  const program = ts.createProgram([file], options, host);
  return ts
    .getPreEmitDiagnostics(program, program.getSourceFile(file))
    .map((d) => ts.flattenDiagnosticMessageText(d.messageText, ' '));
}

// ------------------------------------------------------------------------------------------------
// Reading the Dockerfile

const docker = dockerfile(readFileSync(join(DIR, 'Dockerfile'), 'utf8'));
const lastFrom = docker.map((i) => i.keyword).lastIndexOf('FROM');
const runStage = docker.slice(lastFrom + 1);
/** The run stage's CMD as an exec-form array; throws on the shell form. */
function imageCmd(): string[] {
  const cmd = runStage.filter((i) => i.keyword === 'CMD').at(-1);
  if (cmd === undefined) throw new Error('the run stage has no CMD');
  let parsed: unknown;
  try {
    parsed = JSON.parse(cmd.args);
  } catch {
    throw new Error(`CMD is in shell form (${cmd.args}): PID 1 would be sh, which does not pass SIGTERM on`);
  }
  if (!Array.isArray(parsed) || !parsed.every((a) => typeof a === 'string'))
    throw new Error(`CMD is not an array of strings: ${cmd.args}`);
  return parsed;
}

/** What the container runs: command replaces the image's (absent) ENTRYPOINT, args replace its CMD. */
function argv(c: IContainer): string[] {
  if (c.command !== undefined) return [...c.command, ...(c.args ?? [])];
  return c.args ?? imageCmd();
}

/** The options the provider example resolves from the container's environment and flags. */
function providerOptions() {
  const c = container(provider);
  const args = argv(c);
  const quiet = flag(args, '--quiet-window-ms');
  const adminPort = flag(args, '--admin-port');
  return resolveProviderOptions({
    service: flag(args, '--service') ?? exampleDefault('service'),
    env: environment(c),
    // examples/express-provider/server.mjs passes these two flags on, and no other lossless option
    admin: adminPort === undefined ? {} : { port: Number(adminPort) },
    drain: quiet === undefined ? {} : { quietWindowMs: Number(quiet) },
  });
}

/** A flag's default in examples/express-provider/server.mjs. */
function exampleDefault(name: string): string {
  const source = readFileSync(join(ROOT, 'examples/express-provider/server.mjs'), 'utf8');
  const m = new RegExp(`'?${name}'?: \\{ type: 'string', default: '([^']+)' \\}`).exec(source);
  if (m === null) throw new Error(`no default for --${name} in the express example`);
  return m[1] as string;
}

// ------------------------------------------------------------------------------------------------

describe('examples/kubernetes: every document against the Kubernetes schemas', () => {
  it('finds the documents of every file', () => {
    expect(new Set(all.map((m) => m.file))).toEqual(new Set(['provider.yaml', 'consumer.yaml', 'secret.yaml']));
    expect(all.length).toBeGreaterThanOrEqual(4);
  });

  it.each(all.map((m) => [`${m.file} #${m.index + 1} ${m.doc.kind} ${m.doc.metadata?.name}`, m] as const))(
    '%s is valid',
    (_, m) => {
      const Model = MODELS[`${m.doc.apiVersion}/${m.doc.kind}`];
      expect(Model, `a schema for ${m.doc.apiVersion} ${m.doc.kind}`).toBeDefined();
      expect(m.doc.metadata?.name, 'metadata.name').toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
      expect(() => new (Model as NonNullable<typeof Model>)(m.doc as never).validate()).not.toThrow();
    },
  );

  // The OpenAPI schemas allow unknown fields (the API server, and kubectl's strict field validation,
  // reject them); a misspelt field such as `readinesProbe` would pass them and silently do nothing.
  // kubernetes-models also ships each kind as a TypeScript interface: assigning the documents to
  // those interfaces as object literals makes TypeScript report any property they do not declare.
  it('uses no field the Kubernetes API does not know', () => {
    const errors = unknownFields(all.map((m) => m.doc));
    expect(errors).toEqual([]);
  });

  it('reports unknown fields (the check is not a no-op)', () => {
    const typo = structuredClone(provider) as unknown as { spec: { template: { spec: { containers: object[] } } } };
    typo.spec.template.spec.containers[0] = { ...typo.spec.template.spec.containers[0], readinesProbe: {} };
    expect(unknownFields([typo as Manifest['doc']]).join('\n')).toMatch(/readinesProbe/);
  });

  it('rejects what the schemas forbid (the validation is not a no-op)', () => {
    const broken = structuredClone(provider) as unknown as { spec: { replicas: unknown } };
    broken.spec.replicas = 'three';
    expect(() => new Deployment(broken as never).validate()).toThrow(/replicas/);
    const noContainers = structuredClone(provider) as unknown as { spec: { template: { spec: { containers?: [] } } } };
    delete noContainers.spec.template.spec.containers;
    expect(() => new Deployment(noContainers as never).validate()).toThrow(/containers/);
  });

  it('each Deployment selects its own pods, and the Service selects the provider pods on a named port', () => {
    for (const d of [provider, consumer]) {
      const labels = d.spec?.template.metadata?.labels ?? {};
      expect(labels).toMatchObject(d.spec?.selector.matchLabels ?? { missing: 'matchLabels' });
    }
    expect(provider.spec?.template.metadata?.labels).toMatchObject(service.spec?.selector ?? { missing: 'selector' });
    for (const port of service.spec?.ports ?? []) {
      expect(portNumber(container(provider), port.targetPort), `targetPort ${port.targetPort}`).toBeDefined();
    }
  });
});

describe('examples/kubernetes/provider.yaml: what lossless needs', () => {
  const c = container(provider);
  // computed in each test, so that a broken Dockerfile fails tests rather than the whole file
  const options = () => providerOptions();
  const adminOptions = () => {
    const { admin } = options();
    if (admin === false) throw new Error('the provider runs without an admin server');
    return admin;
  };

  it('runs an admin server reachable from the kubelet, on a named container port', () => {
    const admin = adminOptions();
    const named = c.ports?.find((p) => p.name === 'admin');
    expect(named?.containerPort).toBe(admin.port);
    expect(c.ports?.find((p) => p.name === 'http')?.containerPort).toBe(Number(flag(argv(c), '--port')));
    // the admin server binds admin.host, else the address the app listens on
    const host = admin.host ?? flag(argv(c), '--host') ?? exampleDefault('host');
    expect(isLoopback(host), `admin server bound to ${host}`).toBe(false);
  });

  it.each([
    ['startupProbe', '/startupz'],
    ['readinessProbe', '/readyz'],
    ['livenessProbe', '/livez'],
  ] as const)('%s asks the admin port for %s', (probe, path) => {
    const p = c[probe] as IProbe | undefined;
    expect(p?.httpGet?.path).toBe(path);
    expect(portNumber(c, p?.httpGet?.port)).toBe(adminOptions().port);
  });

  it('has a preStop hook that POSTs /prestop to the admin port over loopback', () => {
    const command = c.lifecycle?.preStop?.exec?.command ?? [];
    expect(command.slice(0, 2)).toEqual(['node', '-e']);
    const script = command[2] ?? '';
    expect(() => new Script(script)).not.toThrow();
    expect(script).toContain(`'http://127.0.0.1:${adminOptions().port}/prestop'`);
    expect(script).toMatch(/method:\s*'POST'/);
  });

  const grace = () => podSpec(provider)?.terminationGracePeriodSeconds ?? 30; // Kubernetes' default

  it('gives the drain time: terminationGracePeriodSeconds >= (maxDrainMs + closeTimeoutMs) / 1000 + 2', () => {
    const { maxDrainMs, closeTimeoutMs } = options().drain;
    expect(grace()).toBeGreaterThanOrEqual((maxDrainMs + closeTimeoutMs) / 1000 + 2);
  });

  // docs/kubernetes.md's worst case: every step after the wait takes its whole bound (the example
  // adds no onClose hook). A kill then loses no request, only the clean exit; the example avoids it.
  it('exits cleanly even in the worst case of every bound: the wait, the close, registry.close(), the admin server, + 2 s', () => {
    const o = options();
    const onCloseHooks = 0; // examples/express-provider/server.mjs adds none
    const worstMs =
      o.drain.maxDrainMs +
      o.drain.closeTimeoutMs +
      onCloseHooks * o.hookTimeoutMs +
      o.registration.timeoutMs +
      ADMIN_CLOSE_TIMEOUT_MS;
    expect(worstMs).toBe(32_000); // the sum docs/kubernetes.md and docs/operations.md show
    expect(grace()).toBeGreaterThanOrEqual(worstMs / 1000 + 2);
    expect(readFileSync(join(ROOT, 'examples/express-provider/server.mjs'), 'utf8')).not.toMatch(/onClose/);
  });

  it('rolls out without removing a pod before its replacement is ready', () => {
    expect(provider.spec?.strategy?.type).toBe('RollingUpdate');
    expect([0, '0%']).toContain(provider.spec?.strategy?.rollingUpdate?.maxUnavailable);
    const surge = provider.spec?.strategy?.rollingUpdate?.maxSurge;
    expect(typeof surge === 'number' ? surge : Number.parseInt(String(surge), 10)).toBeGreaterThan(0);
  });

  it('registers the pod IP in Nacos, and reads the admin token from the Secret', () => {
    expect(options().registry).toMatch(/^nacos:\/\//);
    const ip = c.env?.find((e) => e.name === 'LOSSLESS_INSTANCE_IP');
    expect(ip?.valueFrom?.fieldRef?.fieldPath).toBe('status.podIP');
    // resolveProviderOptions has checked its length (at least 8 characters)
    expect(adminOptions().token).toBeDefined();
  });
});

describe('examples/kubernetes/consumer.yaml', () => {
  it('runs the consumer example with node, against the provider service and registry', () => {
    const c = container(consumer);
    const args = argv(c);
    expect(args.slice(0, 2)).toEqual(['node', 'examples/consumer/client.mjs']);
    expect(existsSync(join(ROOT, args[1] as string))).toBe(true);
    expect(flag(args, '--service')).toBe(providerOptions().service);
    expect(environment(c).LOSSLESS_REGISTRY).toBe(providerOptions().registry);
    // pod IPs are not loopback: without this flag the example skips every instance
    expect(args).toContain('--allow-remote');
    expect(c.image).toBe(container(provider).image);
  });
});

describe('examples/kubernetes/Dockerfile', () => {
  it('starts node directly: CMD in exec form, node first, no ENTRYPOINT in front of it', () => {
    const cmd = imageCmd();
    expect(cmd[0]).toBe('node');
    expect(cmd[1]).toBe('examples/express-provider/server.mjs');
    expect(existsSync(join(ROOT, cmd[1] as string))).toBe(true);
    expect(runStage.filter((i) => i.keyword === 'ENTRYPOINT')).toEqual([]);
    // the app must be reachable from other pods
    expect(flag(cmd, '--host')).toBe('0.0.0.0');
  });

  it('copies every script the manifests run', () => {
    const copied = docker.filter((i) => i.keyword === 'COPY').map((i) => i.args);
    for (const script of [imageCmd()[1], argv(container(consumer))[1]]) {
      expect(
        copied.some((args) => args.split(/\s+/).includes(script as string)),
        `a COPY of ${script}`,
      ).toBe(true);
    }
  });
});

describe('the preStop command, run as the kubelet runs it', () => {
  it('drains a running provider: the hook exits 0, the instance leaves the registry, the process exits 0', async () => {
    const registry = await tempRegistry();
    const reader = new FileRegistry({ dir: registry.dir });
    const running = await startExample(['--registry', registry.url, '--quiet-window-ms', '300']);
    try {
      expect((await reader.list('hello-service')).map((i) => i.port)).toEqual([running.port]);
      const [cmd, ...hookArgs] = container(provider).lifecycle?.preStop?.exec?.command ?? [];
      expect(cmd).toBe('node');
      // the same command, pointed at this provider's admin port
      const admin = providerOptions().admin;
      const port = admin === false ? 0 : admin.port;
      const args = hookArgs.map((a) => a.replace(`127.0.0.1:${port}/`, `127.0.0.1:${running.adminPort}/`));
      const hook = spawn(process.execPath, args, { stdio: 'ignore' });
      const hookCode = await new Promise<number | null>((resolve) => hook.on('exit', resolve));
      expect(hookCode).toBe(0);
      expect(await reader.list('hello-service')).toEqual([]);
      // the hook returned once the wait was over; the provider closes and exits by itself (the
      // kubelet's SIGTERM after the hook would only join the drain or find the process gone)
      const { code } = await running.exited;
      expect(code).toBe(0);
      const summary = running.logs().find((l) => l.msg?.startsWith('drain complete'));
      expect(summary).toMatchObject({ outcome: 'idle', cut: 0, registry: 'removed' });
    } finally {
      running.child.kill('SIGKILL');
      await until(() => running.child.exitCode !== null || running.child.signalCode !== null, 'the provider to exit');
      await reader.close();
      await registry.remove();
    }
  });
});
