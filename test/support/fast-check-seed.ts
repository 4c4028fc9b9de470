/**
 * Vitest setup file (vitest.config.ts `setupFiles`): makes fast-check properties reproducible.
 *
 * - `FC_SEED=<integer>`: every `fc.assert` in the run uses this seed (locally or in CI). This is how a failure is
 *   replayed: fast-check's failure message starts with `{ seed: N, path: "…", endOnFailure: true }`; rerun that file
 *   with `FC_SEED=N npx vitest run test/<file> -t '<test name>'`.
 * - `CI=true` (as .ci/run is run) without FC_SEED: a fixed seed, so a CI run is deterministic and a red CI is
 *   reproducible by anyone with the same command.
 * - Otherwise fast-check picks a random seed per assert, as it does by default, and still reports it on failure.
 *
 * Failures are not swallowed: fast-check throws an error whose message carries the seed, the shrink path and the
 * counterexample, with the property's own error attached as its cause; vitest prints both.
 */
import fc from 'fast-check';

/** The seed CI uses unless FC_SEED says otherwise. Any 32-bit integer; changing it is a deliberate act. */
export const CI_SEED = 20_240_611;

function seedFromEnv(): number | undefined {
  const raw = process.env.FC_SEED?.trim();
  if (raw !== undefined && raw !== '') {
    const seed = Number(raw);
    if (!Number.isSafeInteger(seed)) throw new Error(`FC_SEED must be an integer, got ${JSON.stringify(raw)}`);
    return seed;
  }
  return process.env.CI === 'true' ? CI_SEED : undefined;
}

const seed = seedFromEnv();
if (seed !== undefined) fc.configureGlobal({ ...fc.readConfigureGlobal(), seed });
