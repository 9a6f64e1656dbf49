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
