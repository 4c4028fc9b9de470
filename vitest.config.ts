import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 60_000,
    // Integration files each create their own database; running files in parallel on 2 cores is fine.
    fileParallelism: true,
    maxWorkers: 2,
  },
});
