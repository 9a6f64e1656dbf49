// The building blocks of the options schemas (valibot): one per kind of value the options take, each
// with the message an error shows ("expected ..."), and `doc()`, which gives an option the text and
// facts docs/options.md is generated from. Shared by core, the client and the registry packages.

import * as v from 'valibot';
import type { Logger } from '../logger.js';

/** What docs/options.md and the errors say of an option beyond its schema. */
export type OptionMeta = {
  /** Environment variable read when the option is missing (an empty value counts as missing). */
  readonly env?: string;
  /** How the variable's text becomes the value. Default `string`. */
  readonly envValue?: 'string' | 'number';
  /** The type as the docs write it, where the schema cannot say (functions, class instances, groups). */
  readonly type?: string;
  /** The default as the docs write it, where it is not a plain value (computed, or from another option). */
  readonly default?: string;
  /** Never shown in errors (tokens, passwords). */
  readonly secret?: boolean;
  /**
   * How a registry URL gives the option, as the docs write it: `` `?name=` `` for a URL parameter
   * (a registry package reads its parameters from these), or the part of the URL that carries it.
   */
  readonly url?: string;
};

/** An option's schema with what it does (and why its default is what it is) and its facts for the docs. */
export function doc<const S extends v.GenericSchema>(schema: S, description: string, meta: OptionMeta = {}) {
  return v.pipe(schema, v.description(description), v.metadata(meta));
}

/** An object literal (or one made with a null prototype): not an array, a Map, a class instance or null. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/**
 * A group of options: a plain object with exactly these keys (an unknown key is refused, with the
 * closest valid one named). valibot's object schemas take arrays too; the first check does not.
 */
export function group<const E extends v.ObjectEntries>(entries: E, message: string) {
  const object = v.strictObject(entries, message);
  return v.pipe(v.custom<v.InferInput<typeof object>>(isPlainObject, message), object);
}

/** An array whose input may be readonly (`as const`), and whose output is. */
export function list<const S extends v.GenericSchema>(item: S, message: string) {
  return v.array(item, message) as unknown as v.GenericSchema<
    readonly v.InferInput<S>[],
    readonly v.InferOutput<S>[],
    v.ArrayIssue | v.InferIssue<S>
  >;
}

/**
 * An object (not an array) whose values all match `value`: metadata, scheme factories. Copied, so
 * that later changes to the caller's object do not leak in. (valibot's record drops the keys
 * `constructor` and `prototype` without a word; a metadata key may be any string.)
 */
export function dictionary<const S extends v.GenericSchema>(value: S, message: string) {
  return v.pipe(
    v.custom<Readonly<Record<string, v.InferInput<S>>>>(isPlainObject, message),
    v.rawCheck(({ dataset, addIssue }) => {
      if (!dataset.typed) return;
      const object = dataset.value as Record<string, unknown>;
      for (const [key, item] of Object.entries(object)) {
        const result = v.safeParse(value, item);
        if (!result.success)
          addIssue({
            message: (result.issues[0] as v.BaseIssue<unknown>).message,
            input: item,
            path: [{ type: 'object', origin: 'value', input: object, key, value: item }],
          });
      }
    }),
    v.transform((object) => ({ ...object }) as Record<string, v.InferOutput<S>>),
  );
}

/** A function; `T` is its signature as the types show it. */
export function fn<T extends (...args: never[]) => unknown>(message = 'expected a function') {
  return v.custom<T>((value) => typeof value === 'function', message);
}

/** An object with these functions (a duck-typed interface such as a registry or a server). */
export function withMethods<T>(methods: readonly string[], message: string) {
  return v.custom<T>(
    (value) =>
      typeof value === 'object' &&
      value !== null &&
      methods.every((name) => typeof (value as Record<string, unknown>)[name] === 'function'),
    message,
  );
}

/** A finite number in [min, max]; `integer` for counts and ports. */
export function numberIn(min: number, max: number, options: { integer?: boolean; message?: string } = {}) {
  const message = options.message ?? `expected ${options.integer ? 'an integer' : 'a number'} in ${min}..${max}`;
  return v.pipe(
    v.number(message),
    v.finite(message),
    v.check((n) => !options.integer || Number.isInteger(n), message),
    v.minValue(min, message),
    v.maxValue(max, message),
  );
}

/** Node runs a timer longer than 2^31 - 1 ms at once; 24 h is the bound every duration shares. */
export const MAX_DURATION_MS = 86_400_000;

/** A duration in ms: finite, >= 0 (> 0 when `positive`), at most 24 h. */
export function duration(positive = false) {
  const message = `expected a number of milliseconds ${positive ? '> 0' : '>= 0'} and at most ${MAX_DURATION_MS}`;
  return v.pipe(
    v.number(message),
    v.finite(message),
    positive ? v.gtValue(0, message) : v.minValue(0, message),
    v.maxValue(MAX_DURATION_MS, message),
  );
}

/** A token of RFC 9110 (the characters a header name may have). */
export const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

export function headerName(message = 'expected an HTTP header name') {
  return v.pipe(v.string(message), v.regex(HEADER_NAME, message));
}

/** A non-empty string. */
export function nonEmpty(message = 'expected a non-empty string') {
  return v.pipe(v.string(message), v.minLength(1, message));
}

/** A pino-compatible logger: debug, info, warn and error functions (child optional). */
export function logger() {
  return withMethods<Logger>(
    ['debug', 'info', 'warn', 'error'],
    'expected a pino-compatible logger (debug, info, warn, error)',
  );
}

/** The `env` option: where the `LOSSLESS_*` variables are read from (`process.env` when missing). */
export function environment(description: string) {
  return v.nullish(
    doc(
      v.custom<Readonly<Record<string, string | undefined>>>(
        (e) => typeof e === 'object' && e !== null,
        'expected an object of strings',
      ),
      description,
      { type: 'Readonly<Record<string, string | undefined>>', default: '`process.env`' },
    ),
  );
}
