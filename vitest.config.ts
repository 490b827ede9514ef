import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    // Suites start their own servers on ephemeral loopback ports; files run in parallel.
    pool: 'forks',
  },
});
