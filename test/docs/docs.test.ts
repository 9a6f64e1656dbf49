// Keeps docs/ in step with the code: every option, every error code, the main defaults and the
// lifecycle diagram are read from the sources and looked up in the Markdown, so that a change to one
// without the other fails here.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
// the compiler's JS API: TypeScript 7 (the native compiler) has none yet, 6 has
import ts from 'typescript-api';
import * as v from 'valibot';
import { describe, expect, it } from 'vitest';
import { clientOptionsSchema } from '../../packages/client/src/options.js';
import { canTransition, LIFECYCLE_STATES } from '../../packages/core/src/lifecycle/states.js';
import { providerOptionsSchema, resolveProviderOptions } from '../../packages/core/src/options.js';
import { METADATA_KEYS } from '../../packages/core/src/registry/types.js';
import { inspect, schemaAt } from '../../packages/core/src/schema/parse.js';
import { grpcClientOptionsSchema } from '../../packages/grpc/src/client/options.js';
import { nacosOptionsSchema, parseNacosUrl, resolveNacosOptions } from '../../packages/nacos/src/options.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');
const parse = (path: string): ts.SourceFile =>
  ts.createSourceFile(path, read(path), ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);

// ------------------------------------------------------------------------------------------------
// Markdown helpers

interface Row {
  readonly section: string;
  readonly cells: readonly string[];
}

/** Table rows (separator rows excluded), each with the `## ` section it is under. */
function tableRows(markdown: string): Row[] {
  const rows: Row[] = [];
  let section = '';
  let inFence = false;
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) inFence = !inFence;
    if (inFence) continue;
    if (line.startsWith('## ')) section = line.slice(3).trim();
    if (!line.startsWith('|')) continue;
    // split on pipes that are not escaped as \|
    const cells = line
      .trim()
      .replace(/^\||\|$/g, '')
      .split(/(?<!\\)\|/)
      .map((cell) => cell.trim().replace(/\\\|/g, '|'));
    if (cells.every((cell) => /^:?-+:?$/.test(cell))) continue;
    rows.push({ section, cells });
  }
  return rows;
}

/** The text of a cell that is exactly one code span, else undefined. */
function codeSpan(cell: string | undefined): string | undefined {
  const m = /^`([^`]+)`$/.exec(cell ?? '');
  return m?.[1];
}

/** First cells written as code spans, optionally only in sections whose title matches. */
function keys(rows: readonly Row[], section?: RegExp): string[] {
  return rows
    .filter((row) => section === undefined || section.test(row.section))
    .map((row) => codeSpan(row.cells[0]))
    .filter((key): key is string => key !== undefined);
}

// ------------------------------------------------------------------------------------------------
// Source helpers

/** Interfaces declared at the top level of a file, by name. */
function interfacesOf(file: ts.SourceFile): Map<string, ts.InterfaceDeclaration> {
  const map = new Map<string, ts.InterfaceDeclaration>();
  for (const statement of file.statements) {
    if (ts.isInterfaceDeclaration(statement)) map.set(statement.name.text, statement);
  }
  return map;
}

/**
 * The interface of this file that a property's type leads to, if any, and whether it is an array of
 * it: `InstanceOptions`, `AdminOptions | false`, `readonly WarmupHook[]`, `ReadonlyArray<WarmupHook>`.
 */
function nested(
  type: ts.TypeNode | undefined,
  local: ReadonlyMap<string, ts.InterfaceDeclaration>,
): { name: string; array: boolean } | undefined {
  if (type === undefined) return undefined;
  if (ts.isParenthesizedTypeNode(type)) return nested(type.type, local);
  if (ts.isTypeOperatorNode(type)) return nested(type.type, local);
  if (ts.isArrayTypeNode(type)) {
    const inner = nested(type.elementType, local);
    return inner === undefined ? undefined : { name: inner.name, array: true };
  }
  if (ts.isUnionTypeNode(type)) {
    for (const member of type.types) {
      const inner = nested(member, local);
      if (inner !== undefined) return inner;
    }
    return undefined;
  }
  if (ts.isTypeReferenceNode(type) && ts.isIdentifier(type.typeName)) {
    const name = type.typeName.text;
    if (local.has(name)) return { name, array: false };
    if ((name === 'ReadonlyArray' || name === 'Array') && type.typeArguments?.[0] !== undefined) {
      const inner = nested(type.typeArguments[0], local);
      return inner === undefined ? undefined : { name: inner.name, array: true };
    }
  }
  return undefined;
}

/** Every property of `root`, as dotted paths, descending into the interfaces of the same file. */
function optionPaths(path: string, root: string): string[] {
  const local = interfacesOf(parse(path));
  const out: string[] = [];
  const walk = (name: string, prefix: string, seen: ReadonlySet<string>): void => {
    const declaration = local.get(name);
    if (declaration === undefined) throw new Error(`interface ${name} not found in ${path}`);
    for (const member of declaration.members) {
      if (!ts.isPropertySignature(member) || member.name === undefined) continue;
      const key = `${prefix}${member.name.getText()}`;
      out.push(key);
      const inner = nested(member.type, local);
      if (inner !== undefined && !seen.has(inner.name))
        walk(inner.name, `${key}${inner.array ? '[]' : ''}.`, new Set([...seen, inner.name]));
    }
  };
  walk(root, '', new Set([root]));
  return out;
}

/** Own properties of the exported `*Options` interfaces of a file (the adapters' extra options). */
function ownOptionProperties(path: string): string[] {
  const out: string[] = [];
  for (const [name, declaration] of interfacesOf(parse(path))) {
    if (!name.endsWith('Options')) continue;
    for (const member of declaration.members) {
      if (ts.isPropertySignature(member)) out.push(member.name.getText());
    }
  }
  return out;
}

function sourceFiles(): string[] {
  const files: string[] = [];
  for (const pkg of readdirSync(join(ROOT, 'packages'))) {
    let entries: string[];
    try {
      entries = readdirSync(join(ROOT, 'packages', pkg, 'src'), { recursive: true, encoding: 'utf8' });
    } catch {
      continue;
    }
    for (const entry of entries) {
      if (entry.endsWith('.ts') && !entry.endsWith('.d.ts')) files.push(join('packages', pkg, 'src', entry));
    }
  }
  return files.sort();
}

const CODE = /LOSSLESS_(?:ERR|WARN)_[A-Z0-9_]+/g;

/** Codes written in string or template literals (comments do not count). */
function codesInLiterals(path: string): string[] {
  const codes: string[] = [];
  const visit = (node: ts.Node): void => {
    if (
      ts.isStringLiteralLike(node) ||
      ts.isTemplateHead(node) ||
      ts.isTemplateMiddle(node) ||
      ts.isTemplateTail(node)
    ) {
      codes.push(...(node.text.match(CODE) ?? []));
    }
    ts.forEachChild(node, visit);
  };
  visit(parse(path));
  return codes;
}

/** Error classes of every package's errors.ts and the code each passes to `super()`. */
function codeOfClass(): Map<string, string> {
  const map = new Map<string, string>();
  const visitClass = (declaration: ts.ClassDeclaration): void => {
    const find = (node: ts.Node): void => {
      if (
        ts.isCallExpression(node) &&
        node.expression.kind === ts.SyntaxKind.SuperKeyword &&
        node.arguments[0] !== undefined &&
        ts.isStringLiteralLike(node.arguments[0])
      ) {
        map.set(declaration.name?.text ?? '?', node.arguments[0].text);
      }
      ts.forEachChild(node, find);
    };
    find(declaration);
  };
  for (const path of sourceFiles().filter((file) => file.endsWith('errors.ts'))) {
    for (const statement of parse(path).statements) {
      if (ts.isClassDeclaration(statement)) visitClass(statement);
    }
  }
  return map;
}

/** `{ a: { b: 1 } }`, `a.b` => 1; undefined when the path does not lead anywhere. */
function valueAt(object: unknown, path: string): unknown {
  let value = object;
  for (const key of path.split('.')) {
    if (typeof value !== 'object' || value === null) return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

// ------------------------------------------------------------------------------------------------

const optionsDoc = read('docs/options.md');
const optionRows = tableRows(optionsDoc);
const errorRows = tableRows(read('docs/errors.md'));
const concepts = read('docs/concepts.md');

/** Every option path of a schema, as the tables write them (`drain.quietWindowMs`, `warmups[].name`). */
function schemaPaths(schema: unknown): string[] {
  const out: string[] = [];
  const walk = (node: unknown, prefix: string): void => {
    for (const [key, entry] of Object.entries(inspect(node).entries ?? {})) {
      out.push(`${prefix}${key}`);
      const info = inspect(entry);
      if (info.entries !== undefined) walk(entry, `${prefix}${key}.`);
      else if (info.item !== undefined && inspect(info.item).entries !== undefined)
        walk(info.item, `${prefix}${key}[].`);
    }
  };
  walk(schema, '');
  return out;
}

describe('the generated option tables', () => {
  // the generator is plain JS (pnpm docs:options runs it on the built packages); here it runs on the sources
  const generator = './options.mjs';
  const load = async () =>
    (await import(generator)) as {
      generate: (schemas: Record<string, unknown>, inspect: unknown) => Map<string, string>;
    };

  it('are what `pnpm docs:options` generates from the schemas (run it after changing an option)', async () => {
    const { generate } = await load();
    const docs = generate(
      { providerOptionsSchema, clientOptionsSchema, nacosOptionsSchema, grpcClientOptionsSchema },
      inspect,
    );
    expect([...docs.keys()]).toEqual(['docs/options.md', 'docs/client.md', 'docs/nacos.md', 'docs/grpc.md']);
    for (const [doc, expected] of docs) expect(read(doc), doc).toBe(expected);
  });

  it('are not the same whatever the schema says (the comparison can fail)', async () => {
    const { generate } = await load();
    const other = v.strictObject({ only: v.optional(v.pipe(v.number(), v.description('x')), 1) });
    const changed = {
      providerOptionsSchema: other,
      clientOptionsSchema,
      nacosOptionsSchema: other,
      grpcClientOptionsSchema,
    };
    const docs = generate(changed, inspect);
    expect(docs.get('docs/options.md')).not.toBe(read('docs/options.md'));
    expect(docs.get('docs/nacos.md')).not.toBe(read('docs/nacos.md'));
  });
});

describe('docs/options.md', () => {
  const providerPaths = schemaPaths(providerOptionsSchema);
  const documented = keys(optionRows, /^ProviderOptions$/);

  it('has a row for every option of the provider schema, nested groups and warm-up hooks included', () => {
    // the walk itself must reach the nested groups, or this test could pass on nothing
    expect(providerPaths).toEqual(
      expect.arrayContaining(['service', 'drain.quietWindowMs', 'admin.port', 'warmups[].timeoutMs']),
    );
    expect(providerPaths.filter((path) => !documented.includes(path))).toEqual([]);
  });

  it('documents no ProviderOptions property that the schema does not have', () => {
    expect(documented.filter((path) => !providerPaths.includes(path))).toEqual([]);
  });

  it('has a row for every FileRegistryOptions property in its section', () => {
    const fileOptions = optionPaths('packages/core/src/registry/file.ts', 'FileRegistryOptions');
    expect(fileOptions).toContain('heartbeatMs');
    const section = keys(optionRows, /FileRegistryOptions/);
    expect(fileOptions.filter((path) => !section.includes(path))).toEqual([]);
    expect(section.filter((path) => !fileOptions.includes(path))).toEqual([]);
  });

  it('has a row for every option the adapters add', () => {
    const extra = [
      ...ownOptionProperties('packages/express/src/index.ts'),
      ...ownOptionProperties('packages/fastify/src/index.ts'),
      ...ownOptionProperties('packages/grpc/src/provider.ts'),
    ];
    expect(extra).toContain('mountAdmin');
    expect(extra).toContain('health');
    const all = keys(optionRows);
    expect(extra.filter((path) => !all.includes(path))).toEqual([]);
  });

  it('states the defaults that resolveProviderOptions applies', () => {
    const resolved = resolveProviderOptions({ service: 'x', env: {} });
    const defaults = new Map<string, string | undefined>();
    for (const row of optionRows) {
      const key = codeSpan(row.cells[0]);
      if (key !== undefined && /^ProviderOptions$/.test(row.section)) defaults.set(key, codeSpan(row.cells[2]));
    }
    // these must be written as a plain number in a code span
    for (const path of ['drain.quietWindowMs', 'drain.maxDrainMs', 'drain.minDrainMs', 'admin.port', 'hookTimeoutMs']) {
      const text = defaults.get(path);
      expect(text, `default of ${path}`).toMatch(/^\d+$/);
      expect(Number(text), `default of ${path}`).toBe(valueAt(resolved, path));
    }
    // every other default written as a plain number or a plain word must match too
    for (const [path, text] of defaults) {
      if (text === undefined) continue;
      const value = valueAt(resolved, path);
      if (/^\d+$/.test(text)) expect(value, `default of ${path}`).toBe(Number(text));
      else if (/^[a-z][a-z-]*$/.test(text) && typeof value === 'string') expect(value, `default of ${path}`).toBe(text);
    }
  });

  it('names every LOSSLESS_* environment variable options.ts reads', () => {
    const variables = new Set(read('packages/core/src/options.ts').match(/\bLOSSLESS_(?!ERR_|WARN_)[A-Z_]*[A-Z]\b/g));
    expect(variables.size).toBeGreaterThanOrEqual(5);
    const environment = optionRows.map((row) => row.cells[3] ?? '').join(' ');
    expect([...variables].filter((name) => !environment.includes(`\`${name}\``))).toEqual([]);
  });
});

describe('docs/errors.md', () => {
  const codes = new Set(sourceFiles().flatMap(codesInLiterals));
  const documented = keys(errorRows);

  it('has a row for every code used in packages/*/src', () => {
    expect(codes.size).toBeGreaterThan(15);
    expect([...codes].filter((code) => !documented.includes(code))).toEqual([]);
  });

  it('has no row for a code the sources do not use', () => {
    expect(documented.filter((code) => !codes.has(code))).toEqual([]);
  });

  it('names the class of every coded error class', () => {
    const classes = codeOfClass();
    expect(classes.size).toBeGreaterThan(10);
    for (const [name, code] of classes) {
      const row = errorRows.find((r) => codeSpan(r.cells[0]) === code);
      expect(row?.cells[1], `class cell of ${code}`).toContain(`\`${name}\``);
    }
  });
});

describe('docs/concepts.md', () => {
  const blocks = [...concepts.matchAll(/```mermaid\n([\s\S]*?)```/g)].map((m) => m[1] ?? '');

  it('draws exactly the lifecycle transitions that canTransition allows', () => {
    const diagrams = blocks.filter((block) => /^\s*stateDiagram-v2\b/.test(block));
    expect(diagrams).toHaveLength(1);
    const drawn = new Set<string>();
    for (const line of (diagrams[0] ?? '').split('\n')) {
      const m = /^\s*(\S+)\s*-->\s*([^\s:]+)/.exec(line);
      if (m === null || m[1] === '[*]' || m[2] === '[*]') continue;
      drawn.add(`${m[1]} --> ${m[2]}`);
    }
    const allowed = new Set<string>();
    for (const from of LIFECYCLE_STATES) {
      for (const to of LIFECYCLE_STATES) if (canTransition(from, to)) allowed.add(`${from} --> ${to}`);
    }
    expect([...drawn].sort()).toEqual([...allowed].sort());
  });

  it('has the start-up and shutdown sequence diagrams', () => {
    expect(blocks.filter((block) => /^\s*sequenceDiagram\b/.test(block))).toHaveLength(2);
  });

  it('names every metadata key lossless registers', () => {
    expect(Object.values(METADATA_KEYS).filter((key) => !concepts.includes(`\`${key}\``))).toEqual([]);
  });
});

describe('docs/client.md and docs/nacos.md', () => {
  it('has a row for every option of the client schema', () => {
    const documented = new Set(keys(tableRows(read('docs/client.md'))));
    const leaves = schemaPaths(clientOptionsSchema).filter(
      (path) => inspect(schemaAt(clientOptionsSchema, path.split('.'))).entries === undefined,
    );
    expect(leaves).toEqual(expect.arrayContaining(['registry', 'retry.attempts', 'clock.now']));
    expect(leaves.filter((path) => !documented.has(path))).toEqual([]);
  });

  it('has a row for every option of the Nacos schema, and states the defaults resolveNacosOptions applies', () => {
    const rows = tableRows(read('docs/nacos.md'));
    const documented = new Set(keys(rows));
    const paths = schemaPaths(nacosOptionsSchema);
    expect(paths).toEqual(expect.arrayContaining(['servers', 'transport', 'pollMs', 'password']));
    expect(paths.filter((path) => !documented.has(path))).toEqual([]);
    // the resolved defaults of a remote server over gRPC; each written as a plain number or word must match
    const resolved = resolveNacosOptions({ servers: 'nacos.example:8848' }) as unknown as Record<string, unknown>;
    let checked = 0;
    for (const row of rows) {
      const key = codeSpan(row.cells[0]);
      const text = codeSpan(row.cells[2]);
      if (key === undefined || text === undefined || !paths.includes(key)) continue;
      if (/^\d+$/.test(text)) expect(resolved[key], `default of ${key}`).toBe(Number(text));
      else if (/^[A-Za-z_]+$/.test(text)) expect(String(resolved[key]), `default of ${key}`).toBe(text);
      else continue;
      checked++;
    }
    expect(checked).toBeGreaterThanOrEqual(6);
    // every URL parameter the table names is one parseNacosUrl takes
    for (const row of rows) {
      const parameter = /^`\?(\w+)=`$/.exec(row.cells[3] ?? '')?.[1];
      if (parameter !== undefined)
        expect(() => parseNacosUrl(`nacos://h:8848/?${parameter}=1`)).not.toThrow(/unknown|not a URL/);
    }
  });
});

describe('docs/observability.md', () => {
  const documented = new Set(keys(tableRows(read('docs/observability.md'))));

  it('has a row for every metric prometheusMetrics() creates, and none it does not', () => {
    // every metric name is written once in metrics.ts, as the argument of name(), counter(), fromTracker() or instanceGauge()
    const source = read('packages/core/src/metrics.ts');
    const created = [...source.matchAll(/(?:name|counter|fromTracker|instanceGauge)\(\s*'([a-z_]+)'/g)].map(
      (m) => `lossless_${m[1]}`,
    );
    expect(created.length).toBeGreaterThan(10);
    expect(created.filter((metric) => !documented.has(metric))).toEqual([]);
    const rows = [...documented].filter((key) => key.startsWith('lossless_'));
    expect(rows.filter((metric) => !created.includes(metric))).toEqual([]);
  });

  it('has a row for every diagnostics channel of the provider and the client', async () => {
    const { CHANNELS } = await import('../../packages/core/src/provider.js');
    const { CLIENT_CHANNELS } = await import('../../packages/client/src/channels.js');
    const names = [...Object.values(CHANNELS), ...Object.values(CLIENT_CHANNELS)];
    expect(names.filter((name) => !documented.has(name))).toEqual([]);
  });
});

describe('docs/reliability.md', () => {
  it('names only tests that exist, and has a row for every scenario', async () => {
    const scenarios = '../reliability/scenarios.mjs'; // plain JS, read by the report script too
    const { SCENARIOS } = (await import(scenarios)) as {
      SCENARIOS: { id: string; tests: { file: string; name: string }[] }[];
    };
    const absent = SCENARIOS.flatMap((s) =>
      s.tests.filter((t) => {
        let source: string;
        try {
          source = read(t.file);
        } catch {
          return true;
        }
        return t.name !== '' && !source.includes(t.name);
      }),
    );
    expect(absent).toEqual([]);
    const ids = tableRows(read('docs/reliability.md')).map((row) => row.cells[0]);
    expect(SCENARIOS.map((s) => s.id).filter((id) => !ids.includes(id))).toEqual([]);
  });
});
