import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// The unit tests alone (packages/*/test), for tools that run them as one suite: mutation testing
// (.config/stryker.config.mjs). `pnpm test:unit` selects the same files through the `unit` project.
export default defineConfig({
  root: fileURLToPath(new URL('..', import.meta.url)),
  test: {
    include: ['packages/*/test/**/*.test.ts'],
    environment: 'node',
    // mutation testing instruments every module and runs beside other work: a slower machine
    testTimeout: 30_000,
  },
});
