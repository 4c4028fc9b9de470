import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // fast-check: FC_SEED, or a fixed seed when CI=true (see the file).
    setupFiles: ['test/support/fast-check-seed.ts'],
    testTimeout: 20_000,
    hookTimeout: 60_000,
    // Integration files each create their own database; running files in parallel on 2 cores is fine.
    fileParallelism: true,
    maxWorkers: 2,
  },
});
