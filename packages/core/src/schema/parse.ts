// Turns an options schema into the one call every package makes: parseOptions(schema, input) gives
// the options with every default filled in, or throws InvalidOptionError for the first problem with
// its dotted path (`drain.quietWindowMs`, `warmups[0].name`); an unknown key is refused with the
// closest valid one named; an option missing from the input is read from its environment variable,
// and an error about such a value names the variable. Also the walk over a schema that docs use.

import * as v from 'valibot';
import { InvalidOptionError } from '../errors.js';
import { closest } from './closest.js';
import { isPlainObject, type OptionMeta } from './kinds.js';

/** What a schema gives once it has parsed a value: its output, read-only. */
export type Parsed<S extends v.GenericSchema> = Readonly<v.InferOutput<S>>;

/** Environment variables, as `process.env` holds them. */
export type Env = Readonly<Record<string, string | undefined>>;
/** One step of an option's path: a key, or an array index. */
export type Key = string | number;

/** A schema node as valibot builds it, read structurally (the walk does not depend on its types). */
export interface Node {
  readonly kind?: string;
  readonly type?: string;
  readonly message?: unknown;
  readonly wrapped?: Node;
  readonly default?: unknown;
  readonly pipe?: readonly Node[];
  readonly entries?: Readonly<Record<string, Node>>;
  readonly item?: Node;
  readonly value?: Node;
  readonly options?: readonly unknown[];
  readonly description?: string;
  readonly metadata?: OptionMeta;
}

/** What one option's schema says: its inner schema, default, text and facts. */
export interface OptionInfo {
  /** The schema once the optional wrapper and the pipe are looked through (a group's is its object). */
  readonly schema: Node;
  readonly optional: boolean;
  /** The default, if the schema has one (a function for a computed one). */
  readonly default: unknown;
  readonly hasDefault: boolean;
  readonly description: string | undefined;
  readonly meta: OptionMeta;
  /** The options of a group, when the option is one (or may be one: `AdminOptions | false`). */
  readonly entries: Readonly<Record<string, Node>> | undefined;
  /** The schema of each element, when the option is an array. */
  readonly item: Node | undefined;
}

/** Looks an option's schema through its wrappers. */
export function inspect(schema: unknown): OptionInfo {
  let node = schema as Node;
  let optional = false;
  let hasDefault = false;
  let dflt: unknown;
  let description: string | undefined;
  let meta: OptionMeta = {};
  for (;;) {
    if (node.type === 'nullish' || node.type === 'optional' || node.type === 'exact_optional') {
      optional = true;
      if (node.default !== undefined && !hasDefault) {
        hasDefault = true;
        dflt = node.default;
      }
      node = node.wrapped as Node;
      continue;
    }
    if (node.pipe !== undefined) {
      for (const item of node.pipe.slice(1)) {
        if (item.type === 'description') description ??= item.description;
        else if (item.type === 'metadata') meta = { ...item.metadata, ...meta };
      }
      // a group is a plain-object check piped into the object schema: the object is what counts;
      // else the pipe's own schema, which may be a pipe too (`doc(duration())`)
      const inner = node.pipe.slice(1).findLast((item) => item.kind === 'schema') ?? node.pipe[0];
      if (inner !== undefined && inner !== node) {
        node = inner;
        continue;
      }
    }
    break;
  }
  return {
    schema: node,
    optional,
    default: dflt,
    hasDefault,
    description,
    meta,
    entries: entriesOf(node),
    item: node.type === 'array' ? node.item : undefined,
  };
}

/** The keys of a group, looking through `X | false` unions. */
function entriesOf(node: Node): Readonly<Record<string, Node>> | undefined {
  if (node.entries !== undefined) return node.entries;
  if (node.type === 'union') {
    for (const option of node.options as Node[]) {
      const entries = inspect(option).entries;
      if (entries !== undefined) return entries;
    }
  }
  return undefined;
}

/** The schema of the option at `path` (keys and array indices), or undefined when there is none. */
export function schemaAt(schema: unknown, path: readonly Key[]): unknown {
  let node = schema as Node;
  for (const key of path) {
    const info = inspect(node);
    if (typeof key === 'number' && info.item !== undefined) node = info.item;
    else if (info.entries !== undefined && Object.hasOwn(info.entries, key)) node = info.entries[key] as Node;
    else if (info.schema.type === 'record' && info.schema.value !== undefined) node = info.schema.value;
    else return undefined;
  }
  return node;
}

/** `['warmups', 0, 'name']` as `warmups[0].name`. */
export function dottedPath(path: readonly Key[]): string {
  let out = '';
  for (const key of path) out += typeof key === 'number' ? `[${key}]` : out === '' ? key : `.${key}`;
  return out;
}

/** Every option of a schema that an environment variable can set, with its path. */
export function envOptions(schema: unknown): { path: string[]; meta: OptionMeta & { env: string } }[] {
  const found: { path: string[]; meta: OptionMeta & { env: string } }[] = [];
  const walk = (node: Node, path: string[]): void => {
    const info = inspect(node);
    if (info.meta.env !== undefined && path.length > 0)
      found.push({ path, meta: info.meta as OptionMeta & { env: string } });
    if (info.entries !== undefined)
      for (const [key, entry] of Object.entries(info.entries)) walk(entry, [...path, key]);
  };
  walk(schema as Node, []);
  return found;
}

/** The `env` option of an options object, or process.env; refused at once when it is no object. */
export function environmentOf(options: unknown): Env {
  const env = isPlainObject(options) ? options.env : undefined;
  if (env === undefined || env === null) return process.env;
  if (typeof env !== 'object') throw new InvalidOptionError('env', env, 'expected an object of strings');
  return env as Env;
}

/**
 * The variable an option's value was read from, when the input left the option out and the variable
 * set it (for errors found later, such as a registry URL that cannot be parsed).
 */
export function sourceOf(schema: unknown, input: unknown, path: readonly string[], env: Env): string | undefined {
  const meta = inspect(schemaAt(schema, path)).meta;
  if (meta.env === undefined) return undefined;
  let value: unknown = input;
  for (const key of path) value = isPlainObject(value) ? value[key] : undefined;
  const raw = env[meta.env];
  return (value === undefined || value === null) && typeof raw === 'string' && raw.trim() !== '' ? meta.env : undefined;
}

export interface ParseSettings {
  /**
   * Where the variables named by the options' `env` are read from; undefined reads none. Values are
   * trimmed and an empty one counts as unset; an option given in the input wins over its variable.
   */
  readonly env?: Env;
  /** Where the input sits, put before each option's path in errors (`warmup "cache"`). */
  readonly at?: string;
}

/**
 * Validates `input` against `schema` and fills in its defaults. Throws InvalidOptionError for the
 * first problem: an unknown key before anything else (a typo explains what follows from it).
 */
export function parseOptions<const S extends v.GenericSchema>(
  schema: S,
  input: unknown,
  settings: ParseSettings = {},
): v.InferOutput<S> {
  const withEnv = settings.env === undefined ? input : fromEnvironment(schema, input, settings.env);
  const result = v.safeParse(schema, withEnv, { abortEarly: false });
  if (result.success) return result.output;
  const issues = result.issues as readonly v.BaseIssue<unknown>[];
  const issue = issues.find(isUnknownKey) ?? (issues[0] as v.BaseIssue<unknown>);
  const error = toError(schema, deepest(issue));
  if (settings.at === undefined) throw error;
  const option =
    error.option === 'options'
      ? settings.at
      : `${settings.at}${error.option.startsWith('[') ? '' : '.'}${error.option}`;
  throw new InvalidOptionError(option, error.value, error.expectation);
}

function isUnknownKey(issue: v.BaseIssue<unknown>): boolean {
  return issue.type === 'strict_object' && issue.expected === 'never';
}

/**
 * A union's sub-issue that points inside the value (`admin.port` of `AdminOptions | false`), with
 * its full path (valibot keeps sub-issues' paths relative to the union).
 */
function deepest(issue: v.BaseIssue<unknown>): v.BaseIssue<unknown> {
  if (issue.type !== 'union' || issue.issues === undefined) return issue;
  const inside = issue.issues.filter((sub) => (sub.path?.length ?? 0) > 0);
  const pick = inside.find(isUnknownKey) ?? inside[0];
  if (pick === undefined) return issue;
  const path = [...(issue.path ?? []), ...(pick.path ?? [])] as unknown as v.BaseIssue<unknown>['path'];
  return deepest({ ...pick, path });
}

function toError(schema: unknown, issue: v.BaseIssue<unknown>): InvalidOptionError {
  const path = (issue.path ?? []).map((item) => item.key as Key);
  const option = path.length === 0 ? 'options' : dottedPath(path);
  if (isUnknownKey(issue)) {
    const last = issue.path?.at(-1);
    const key = String(last?.key);
    const parent = path.slice(0, -1);
    const suggestion = suggest(schema, parent, key);
    const where = parent.length === 0 ? 'an option' : `an option of ${dottedPath(parent)}`;
    const hint =
      suggestion !== undefined
        ? `did you mean "${suggestion.path}"?`
        : `expected one of ${Object.keys(groupEntries(schema, parent)).join(', ')}`;
    const value = suggestion?.secret ? '***' : last?.value;
    return new InvalidOptionError(option, value, `not ${where}; ${hint}`);
  }
  const target = schemaAt(schema, path);
  const meta = target === undefined ? {} : inspect(target).meta;
  const value = meta.secret === true ? '***' : issue.input;
  if (issue.input === undefined && issue.type === 'strict_object' && target !== undefined)
    return new InvalidOptionError(option, value, `${expectation(target)} (required)`);
  return new InvalidOptionError(option, value, messageOf(issue));
}

function messageOf(issue: v.BaseIssue<unknown>): string {
  // every schema of ours says "expected ..."; valibot's own words only when one was left without
  return issue.message.startsWith('expected') ? issue.message : `expected ${issue.expected ?? 'a valid value'}`;
}

/** What a schema expects, in its own words: the message of its first check. */
function expectation(schema: unknown): string {
  let node = schema as Node;
  for (;;) {
    if (typeof node.message === 'string') return node.message;
    if (node.wrapped !== undefined) node = node.wrapped;
    else if (node.pipe !== undefined && node.pipe[0] !== node) node = node.pipe[0] as Node;
    else return 'expected a value';
  }
}

function groupEntries(schema: unknown, path: readonly Key[]): Readonly<Record<string, Node>> {
  const node = path.length === 0 ? schema : schemaAt(schema, path);
  return (node === undefined ? undefined : inspect(node).entries) ?? {};
}

/**
 * The valid option nearest to a misspelled key: a key of the same group (`quietWindow`), or one of
 * a group written as one word (`adminPort` for `admin.port`).
 */
function suggest(schema: unknown, parent: readonly Key[], key: string): { path: string; secret: boolean } | undefined {
  const entries = groupEntries(schema, parent);
  const candidates = new Map<string, Key[]>();
  for (const [name, entry] of Object.entries(entries)) {
    candidates.set(name, [...parent, name]);
    for (const inner of Object.keys(inspect(entry).entries ?? {}))
      candidates.set(`${name}${inner[0]?.toUpperCase()}${inner.slice(1)}`, [...parent, name, inner]);
  }
  const best = closest(key, [...candidates.keys()]);
  if (best === undefined) return undefined;
  const path = candidates.get(best) as Key[];
  const target = schemaAt(schema, path);
  return { path: dottedPath(path), secret: target !== undefined && inspect(target).meta.secret === true };
}

/**
 * A copy of `input` with each option that is missing taken from its environment variable. A variable
 * whose value the option's schema refuses is reported under the variable's name.
 */
function fromEnvironment(schema: unknown, input: unknown, env: Env): unknown {
  if (!isPlainObject(input)) return input;
  let out: Record<string, unknown> = input;
  for (const { path, meta } of envOptions(schema)) {
    const raw = env[meta.env];
    if (raw === undefined) continue;
    if (typeof raw !== 'string') throw new InvalidOptionError(meta.env, meta.secret ? '***' : raw, 'expected a string');
    const text = raw.trim();
    if (text === '') continue;
    // the option's group must be an object or missing: `admin: false` ignores its variables, and a
    // group of the wrong type is the parse's to report
    let group: unknown = out;
    for (const key of path.slice(0, -1)) {
      group = (group as Record<string, unknown>)[key] ?? {};
      if (!isPlainObject(group)) break;
    }
    if (!isPlainObject(group)) continue;
    const key = path.at(-1) as string;
    if (group[key] !== undefined && group[key] !== null) continue;
    const value = meta.envValue === 'number' ? Number(text) : text;
    const field = schemaAt(schema, path);
    const checked = v.safeParse(field as v.GenericSchema, value);
    if (!checked.success) {
      const issue = deepest(checked.issues[0] as v.BaseIssue<unknown>);
      throw new InvalidOptionError(meta.env, meta.secret ? '***' : text, `${messageOf(issue)} (${dottedPath(path)})`);
    }
    out = withValue(out, path, value);
  }
  return out;
}

/** A copy of `object` with `value` at `path`, copying each group on the way (the input is the caller's). */
function withValue(object: Record<string, unknown>, path: readonly string[], value: unknown): Record<string, unknown> {
  const [head, ...rest] = path as [string, ...string[]];
  if (rest.length === 0) return { ...object, [head]: value };
  const inner = object[head];
  return { ...object, [head]: withValue(isPlainObject(inner) ? inner : {}, rest, value) };
}
