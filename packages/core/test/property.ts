// Generators shared by the property-based option tests of core, client and nacos (those import this
// file by its path): values of every type with each parser's odd cases, and valid options with a few
// values anywhere replaced by them.

import fc from 'fast-check';

export type Input = Record<string, unknown>;

/**
 * Values of every type (nested, boxed, sparse, null-prototype...), plus `constants`: the odd values a
 * parser must tell apart (NaN, -0, limits, empty strings, near-valid strings), plus `extra` generators.
 */
export function oddValues(constants: readonly unknown[], ...extra: fc.Arbitrary<unknown>[]): fc.Arbitrary<unknown> {
  return fc.oneof(
    fc.anything({
      maxDepth: 2,
      withBigInt: true,
      withBoxedValues: true,
      withDate: true,
      withMap: true,
      withSet: true,
      withNullPrototype: true,
      withObjectString: true,
      withSparseArray: true,
      withTypedArray: true,
    }),
    fc.constantFrom<unknown>(...constants),
    fc.string({ unit: 'binary', maxLength: 20 }),
    fc.double(),
    fc.integer(),
    ...extra,
  );
}

/** A copy of `options` with `value` at `path` (copying each object or array on the way; array holes stay holes). */
export function withValueAt(options: Input, path: string, value: unknown): Input {
  const [head, ...rest] = path.split('.') as [string, ...string[]];
  const copy: Input = Array.isArray(options) ? Object.assign([], options) : { ...options };
  if (rest.length === 0) copy[head] = value;
  else {
    const inner = copy[head];
    copy[head] = withValueAt(
      typeof inner === 'object' && inner !== null ? (inner as Input) : {},
      rest.join('.'),
      value,
    );
  }
  return copy;
}

/** Valid options with one to three values at any of `slots` (dotted paths) replaced by `odd` ones. */
export function editedOptions(
  valid: fc.Arbitrary<unknown>,
  slots: readonly string[],
  odd: fc.Arbitrary<unknown>,
): fc.Arbitrary<Input> {
  return fc
    .tuple(valid, fc.array(fc.tuple(fc.constantFrom(...slots), odd), { minLength: 1, maxLength: 3 }))
    .map(([options, edits]) => edits.reduce((o, [path, value]) => withValueAt(o, path, value), options as Input));
}

/** A group of a schema: where it sits (`['warmups', 0]`) and its keys. */
export interface SchemaGroup {
  readonly at: readonly (string | number)[];
  readonly keys: readonly string[];
}

/** Every group of options in a schema (the top level included), an array of groups as its element 0. */
export function schemaGroups(
  schema: unknown,
  inspect: (schema: unknown) => { entries?: Readonly<Record<string, unknown>>; item?: unknown },
): SchemaGroup[] {
  const out: SchemaGroup[] = [];
  const walk = (node: unknown, at: (string | number)[]): void => {
    const entries = inspect(node).entries;
    if (entries === undefined) return;
    out.push({ at, keys: Object.keys(entries) });
    for (const [key, entry] of Object.entries(entries)) {
      const info = inspect(entry);
      if (info.entries !== undefined) walk(entry, [...at, key]);
      else if (info.item !== undefined) walk(info.item, [...at, key, 0]);
    }
  };
  walk(schema, []);
  return out;
}

/** `key` with one typing mistake: a letter added, dropped, replaced, or two neighbours swapped. */
export function misspelled(key: string): fc.Arbitrary<string> {
  const letter = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzMS_');
  const at = fc.nat({ max: key.length - 1 });
  return fc
    .oneof(
      fc.tuple(fc.nat({ max: key.length }), letter).map(([i, c]) => key.slice(0, i) + c + key.slice(i)),
      at.map((i) => key.slice(0, i) + key.slice(i + 1)),
      fc.tuple(at, letter).map(([i, c]) => key.slice(0, i) + c + key.slice(i + 1)),
      at.filter((i) => i + 1 < key.length).map((i) => key.slice(0, i) + key[i + 1] + key[i] + key.slice(i + 2)),
    )
    .filter((typo) => typo !== key && typo.length > 0);
}

/** A misspelling of a key of one of `groups`, that is no key of that group. */
export function misspelledKey(
  groups: readonly SchemaGroup[],
): fc.Arbitrary<{ group: SchemaGroup; key: string; typo: string }> {
  return fc
    .constantFrom(...groups)
    .chain((group) =>
      fc.constantFrom(...group.keys).chain((key) => misspelled(key).map((typo) => ({ group, key, typo }))),
    )
    .filter(({ group, typo }) => !group.keys.includes(typo));
}

/** `options` with `value` under `typo` in the group at `at` (groups and array elements made as needed). */
export function withKeyAt(
  options: Input,
  at: readonly (string | number)[],
  typo: string,
  value: unknown,
  element: () => Input,
): Input {
  if (at.length === 0) return { ...options, [typo]: value };
  const [head, ...rest] = at as [string | number, ...(string | number)[]];
  if (typeof head === 'number') {
    const list = Array.isArray(options) ? [...options] : [];
    list[head] = withKeyAt((list[head] as Input | undefined) ?? element(), rest, typo, value, element);
    return list as unknown as Input;
  }
  const inner = options[head];
  const next = rest.length > 0 && typeof rest[0] === 'number' ? (Array.isArray(inner) ? inner : []) : (inner ?? {});
  return { ...options, [head]: withKeyAt(next as Input, rest, typo, value, element) };
}
