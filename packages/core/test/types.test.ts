// Type tests of the public API (checked by `pnpm typecheck`; at run time they only run the cases):
// error codes are literal types, so that `switch (error.code)` narrows to the class.

import { describe, expectTypeOf, it } from 'vitest';
import {
  type DrainSummary,
  type DrainTimeoutError,
  InvalidOptionError,
  type LosslessError,
  type Provider,
  type ProviderStatus,
  type RegistryError,
} from '../src/index.js';

describe('public types', () => {
  it('error codes are literal types', () => {
    expectTypeOf<InvalidOptionError['code']>().toEqualTypeOf<'LOSSLESS_ERR_INVALID_OPTION'>();
    expectTypeOf<DrainTimeoutError['code']>().toEqualTypeOf<'LOSSLESS_ERR_DRAIN_TIMEOUT'>();
    expectTypeOf<RegistryError['code']>().toEqualTypeOf<'LOSSLESS_ERR_REGISTRY'>();
    expectTypeOf<LosslessError['code']>().toEqualTypeOf<string>();
    const narrow = (error: InvalidOptionError | DrainTimeoutError): string => {
      switch (error.code) {
        case 'LOSSLESS_ERR_INVALID_OPTION':
          expectTypeOf(error).toEqualTypeOf<InvalidOptionError>();
          return error.option;
        case 'LOSSLESS_ERR_DRAIN_TIMEOUT':
          expectTypeOf(error).toEqualTypeOf<DrainTimeoutError>();
          return 'cut';
      }
    };
    narrow(new InvalidOptionError('x', 1, 'expected nothing'));
  });

  it('status() and drain() are typed', () => {
    expectTypeOf<ReturnType<Provider['status']>>().toEqualTypeOf<ProviderStatus>();
    expectTypeOf<ReturnType<Provider['drain']>>().toEqualTypeOf<Promise<DrainSummary>>();
    expectTypeOf<ProviderStatus['registry']['reachable']>().toEqualTypeOf<boolean>();
  });
});
