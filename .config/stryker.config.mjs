// Mutation testing (`pnpm mutation`, not in CI: it runs the unit tests once per mutant, about two and
// a half hours on 2 cores for these 2,940 mutants; `--mutate <glob>` narrows it to some modules).
// Stryker changes the source of the modules below one small way at a time and runs the unit tests
// against each change; a mutant that no test notices is a gap in the tests. The scores measured are
// in test/README.md.

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  // the unit tests only (packages/*/test): the integration tests start processes and servers
  vitest: { configFile: '.config/vitest.unit.config.ts', related: false },
  plugins: ['@stryker-mutator/vitest-runner'],
  // core's lifecycle, tracking, admin and registries; the client's balancing, retry and discovery
  mutate: [
    'packages/core/src/lifecycle/**/*.ts',
    'packages/core/src/tracking/**/*.ts',
    'packages/core/src/admin/**/*.ts',
    'packages/core/src/registry/**/*.ts',
    'packages/client/src/balancing/**/*.ts',
    'packages/client/src/retry/**/*.ts',
    'packages/client/src/discovery/**/*.ts',
    'packages/client/src/interceptor/**/*.ts',
  ],
  coverageAnalysis: 'perTest',
  concurrency: 2,
  timeoutMS: 20_000,
  reporters: ['clear-text', 'progress', 'json'],
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
  thresholds: { high: 80, low: 60, break: null },
};
