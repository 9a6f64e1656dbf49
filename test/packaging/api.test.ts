// Every type a user meets in a package's public API can be named: each interface, type alias, class or
// enum that an exported declaration refers to (option objects, return types, event payloads, through
// any depth) is itself exported by an entry point of the package that declares it. Otherwise a user
// who wants to write the type down, for a variable, a wrapper or a test, cannot (as with
// `MetricsSource` behind the provider's `metrics` option, or the return type of `status()`). Read
// from the built declaration files (dist/), as users get them.

import { readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
// the compiler's JS API: TypeScript 7 (the native compiler) has none yet, 6 has
import ts from 'typescript-api';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PACKAGES = ['core', 'express', 'fastify', 'nacos', 'client', 'cli'];

/** The declaration file of every entry point of every package (`exports` keys but ./package.json). */
const entries = PACKAGES.flatMap((name) => {
  const dir = join(ROOT, 'packages', name);
  const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
    exports: Record<string, { types?: string } | string>;
  };
  return Object.entries(manifest.exports)
    .filter(([key, value]) => key !== './package.json' && typeof value === 'object' && value.types !== undefined)
    .map(([key, value]) => ({ pkg: name, entry: key, file: join(dir, (value as { types: string }).types) }));
});

const program = ts.createProgram(
  entries.map((e) => e.file),
  {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: ['node'],
  },
);
const checker = program.getTypeChecker();

/** The package a declaration belongs to, when it is one of ours (a `declare module 'x'` augmentation belongs to x). */
function packageOf(node: ts.Node): string | undefined {
  for (let n: ts.Node | undefined = node.parent; n !== undefined; n = n.parent)
    if (ts.isModuleDeclaration(n) && ts.isStringLiteral(n.name)) return undefined;
  // the compiler names files with '/' on every platform
  const path = relative(ROOT, node.getSourceFile().fileName).split(sep).join('/');
  return /^packages\/([^/]+)\/dist\//.exec(path)?.[1];
}

const resolve = (symbol: ts.Symbol): ts.Symbol =>
  symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;

/** Per package, the symbols its entry points export. */
const exported = new Map<string, Set<ts.Symbol>>();
for (const { pkg, file } of entries) {
  const source = program.getSourceFile(file);
  const module = source && checker.getSymbolAtLocation(source);
  if (module === undefined) throw new Error(`no module for ${file}: build the packages first (pnpm build)`);
  const set = exported.get(pkg) ?? new Set();
  for (const symbol of checker.getExportsOfModule(module)) set.add(resolve(symbol));
  exported.set(pkg, set);
}

const NAMED = ts.SymbolFlags.Interface | ts.SymbolFlags.TypeAlias | ts.SymbolFlags.Class | ts.SymbolFlags.Enum;

/** Named types of our packages that the public API refers to but no entry point exports: "pkg: Name (from where)". */
function unexported(): string[] {
  const missing = new Set<string>();
  const seen = new Set<ts.Node>();
  const visit = (node: ts.Node, from: string): void => {
    if (seen.has(node)) return;
    seen.add(node);
    // what users cannot reach is not their API: #private and `private` members
    if (ts.isPrivateIdentifier((node as { name?: ts.Node }).name ?? node)) return;
    if (ts.canHaveModifiers(node) && ts.getModifiers(node)?.some((m) => m.kind === ts.SyntaxKind.PrivateKeyword))
      return;
    let target: ts.Node | undefined;
    if (ts.isTypeReferenceNode(node)) target = node.typeName;
    else if (ts.isExpressionWithTypeArguments(node)) target = node.expression;
    else if (ts.isImportTypeNode(node)) target = node.qualifier;
    else if (ts.isTypeQueryNode(node)) target = node.exprName;
    if (target !== undefined) {
      const symbol = checker.getSymbolAtLocation(target);
      const real = symbol === undefined ? undefined : resolve(symbol);
      if (real !== undefined && real.flags & NAMED) {
        for (const declaration of real.declarations ?? []) {
          const pkg = packageOf(declaration);
          if (pkg === undefined) continue; // node's, undici's...: their packages export them
          if (!exported.get(pkg)?.has(real)) missing.add(`@lossless/${pkg}: ${real.getName()} (used by ${from})`);
          visit(declaration, real.getName());
        }
      }
    }
    ts.forEachChild(node, (child) => visit(child, from));
  };
  for (const [, symbols] of exported)
    for (const symbol of symbols)
      for (const declaration of symbol.declarations ?? [])
        if (packageOf(declaration)) visit(declaration, symbol.getName());
  return [...missing].sort();
}

describe('the public API of every package', () => {
  it('finds the entry points and their exports', () => {
    expect(entries.map((e) => `${e.pkg}${e.entry.slice(1)}`)).toEqual(
      expect.arrayContaining([
        'core',
        'core/metrics',
        'core/internal',
        'client',
        'client/internal',
        'express',
        'fastify',
        'nacos',
        'cli',
      ]),
    );
    expect(exported.get('core')?.size).toBeGreaterThan(20);
  });

  it('exports every named type it refers to', () => {
    expect(unexported()).toEqual([]);
  });
});
