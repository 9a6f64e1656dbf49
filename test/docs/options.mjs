// The option tables of docs/options.md, docs/client.md, docs/nacos.md and docs/grpc.md, generated from
// the options schemas: each row is an option's path, type, default, environment variable (for a
// registry: how its URL gives the option), and what it does (its schema's description, then what it
// accepts, in the words of its errors). The tables sit between marker
// comments; the prose around them is written by hand. test/docs/docs.test.ts fails when a committed
// table differs from what this generates.
//
// Usage: pnpm docs:options (builds, then rewrites the tables from packages/*/dist).
// Plain JS, so that the script runs on the built packages and the test on their sources.

import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * The documents, and for each marker name the schema and the layout of its tables: `sections` for a
 * table per group, `column` for the fourth column (`env`, the variable; `url`, where a URL has it).
 */
export const TABLES = [
  { doc: 'docs/options.md', name: 'provider', schema: 'providerOptionsSchema', sections: true, column: 'env' },
  { doc: 'docs/client.md', name: 'client', schema: 'clientOptionsSchema', sections: false, column: 'env' },
  { doc: 'docs/nacos.md', name: 'nacos', schema: 'nacosOptionsSchema', sections: false, column: 'url' },
  { doc: 'docs/grpc.md', name: 'grpc-client', schema: 'grpcClientOptionsSchema', sections: false, column: 'env' },
];

const begin = (name) =>
  `<!-- options:${name} begin: generated from the schema by \`pnpm docs:options\`; edit the schema, not this -->`;
const end = (name) => `<!-- options:${name} end -->`;

const COLUMNS = { env: 'Environment', url: 'In the URL' };
const header = (column) => `| Option | Type | Default | ${COLUMNS[column]} | What it does |\n|---|---|---|---|---|`;

/** A table cell: pipes escaped, one line. */
function cell(text) {
  return String(text)
    .replace(/\s*\n\s*/g, ' ')
    .replace(/\|/g, '\\|');
}

function code(text) {
  return `\`${text}\``;
}

/** The type of an option as the docs write it: the schema's `type` fact, else its kind. */
function typeOf(info, inspect) {
  if (info.meta.type !== undefined) return code(info.meta.type);
  const kind = (node) => {
    const inner = inspect(node).schema;
    switch (inner.type) {
      case 'picklist':
        return inner.options.map((o) => `'${o}'`).join(' | ');
      case 'union':
        return inner.options.map(kind).join(' | ');
      case 'literal':
        return JSON.stringify(inner.literal);
      default:
        return inner.type;
    }
  };
  return code(kind(info.schema));
}

function defaultOf(info) {
  if (info.meta.default !== undefined) return info.meta.default;
  if (!info.hasDefault) return info.optional ? 'none' : 'required';
  const value = info.default;
  if (typeof value === 'number' || typeof value === 'boolean') return code(String(value));
  if (typeof value === 'string') return code(value);
  return code(JSON.stringify(value));
}

/** What an option accepts, in the words of its errors ("expected a port in 1..65535"). */
function accepts(node) {
  const found = new Set();
  const visit = (n) => {
    if (n === undefined || n === null) return;
    if (n.type === 'nullish' || n.type === 'optional' || n.type === 'exact_optional') return visit(n.wrapped);
    if (typeof n.message === 'string') found.add(n.message.replace(/^expected /, ''));
    for (const item of n.pipe ?? []) if (item !== n && item.kind !== 'metadata') visit(item);
  };
  visit(node);
  return [...found];
}

function row(path, info, inspect, leaf, column) {
  const env = column === 'url' ? (info.meta.url ?? '—') : info.meta.env === undefined ? '' : code(info.meta.env);
  const rules = leaf ? accepts(info.schema) : [];
  const what = [info.description ?? '', rules.length === 0 ? '' : `Accepts ${rules.join('; ')}.`]
    .filter((part) => part !== '')
    .join(' ');
  return `| ${code(path)} | ${cell(typeOf(info, inspect))} | ${cell(defaultOf(info))} | ${cell(env)} | ${cell(what)} |`;
}

/**
 * The generated Markdown for one schema: with `sections`, a table of the top level and a `###`
 * section per group (`warmups[].name` for the elements of an array of groups); else one table of
 * every option, groups written as the prefix of their options' paths.
 */
export function tablesFor(schema, inspect, sections, column = 'env') {
  const HEADER = header(column);
  const root = inspect(schema).entries;
  if (sections) {
    const top = [];
    const groups = [];
    for (const [key, entry] of Object.entries(root)) {
      const info = inspect(entry);
      top.push(row(key, info, inspect, info.entries === undefined && info.item === undefined, column));
      const item = info.item === undefined ? undefined : inspect(info.item);
      const entries = info.entries ?? item?.entries;
      if (entries === undefined) continue;
      const prefix = info.entries !== undefined ? `${key}.` : `${key}[].`;
      const rows = Object.entries(entries).map(([name, inner]) =>
        row(`${prefix}${name}`, inspect(inner), inspect, true, column),
      );
      groups.push(`### ${key}\n\n${HEADER}\n${rows.join('\n')}`);
    }
    return [`### Top level\n\n${HEADER}\n${top.join('\n')}`, ...groups].join('\n\n');
  }
  const rows = [];
  for (const [key, entry] of Object.entries(root)) {
    const info = inspect(entry);
    if (info.entries === undefined) rows.push(row(key, info, inspect, true, column));
    else
      for (const [name, inner] of Object.entries(info.entries))
        rows.push(row(`${key}.${name}`, inspect(inner), inspect, true, column));
  }
  return `${HEADER}\n${rows.join('\n')}`;
}

/** `markdown` with the block of `name` replaced by `generated`; throws when its markers are missing. */
export function withTable(markdown, name, generated) {
  const from = markdown.indexOf(begin(name));
  const to = markdown.indexOf(end(name));
  if (from === -1 || to === -1 || to < from) throw new Error(`the markers of the ${name} options table are missing`);
  return `${markdown.slice(0, from)}${begin(name)}\n${generated}\n${markdown.slice(to)}`;
}

/** Every document as it should be, from the schemas given (`{ providerOptionsSchema, ... }`). */
export function generate(schemas, inspect, read = (path) => readFileSync(`${ROOT}${path}`, 'utf8')) {
  const docs = new Map();
  for (const { doc, name, schema, sections, column } of TABLES) {
    const markdown = docs.get(doc) ?? read(doc);
    docs.set(doc, withTable(markdown, name, tablesFor(schemas[schema], inspect, sections, column)));
  }
  return docs;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { inspect } = await import('../../packages/core/dist/schema/parse.js');
  const { providerOptionsSchema } = await import('../../packages/core/dist/options.js');
  const { clientOptionsSchema } = await import('../../packages/client/dist/options.js');
  const { nacosOptionsSchema } = await import('../../packages/nacos/dist/options.js');
  const { grpcClientOptionsSchema } = await import('../../packages/grpc/dist/client/options.js');
  for (const [doc, markdown] of generate(
    { providerOptionsSchema, clientOptionsSchema, nacosOptionsSchema, grpcClientOptionsSchema },
    inspect,
  )) {
    const path = `${ROOT}${doc}`;
    if (readFileSync(path, 'utf8') === markdown) console.log(`${doc}: up to date`);
    else {
      writeFileSync(path, markdown);
      console.log(`${doc}: tables rewritten`);
    }
  }
}
