/**
 * npx tsx bench/candidate-lookup.ts DATABASE_URL QUERIES.ndjson [N] — times the candidate lookup of the first N
 * (default 200) requests of a query file, one at a time on one connection: the first pass (the specific blocks)
 * and the second (the wide ones), with the candidates each returns. With BENCH_EXPLAIN_MS=<ms> it also loads
 * auto_explain on its connection, so Postgres logs the plan (ANALYZE, BUFFERS) of every lookup slower than that:
 * how the 1 M-member lookups were found to read their candidates from outside shared_buffers (docs/benchmarks.md).
 */
import { sql } from 'kysely';
import { createDb } from '../src/db/database.js';
import { blockKind } from '../src/matching/blocking.js';
import { FIRST_PASS_BLOCKS } from '../src/matching/engine.js';
import { findCandidateMembersBatch } from '../src/members/member-index.js';
import { DEFAULT_BLOCK_CAP, queryKeys } from './query-keys.js';

const db = createDb(process.argv[2]!, 1);
if (process.env.BENCH_EXPLAIN_MS) {
  await sql`LOAD 'auto_explain'`.execute(db);
  await sql`SELECT set_config('auto_explain.log_min_duration', ${process.env.BENCH_EXPLAIN_MS}, false)`.execute(db);
  await sql`SET auto_explain.log_analyze = on`.execute(db);
  await sql`SET auto_explain.log_buffers = on`.execute(db);
}

/** One lookup of the given blocks, timed: milliseconds and candidates returned. */
async function timedLookup(blockKeys: string[]): Promise<{ ms: number; candidates: number }> {
  const started = performance.now();
  const { lookups } = await findCandidateMembersBatch(db, [{ blockKeys, cardValues: [] }], DEFAULT_BLOCK_CAP);
  return { ms: performance.now() - started, candidates: lookups[0]!.members.length };
}

const totals = { n: 0, firstMs: 0, firstCandidates: 0, secondMs: 0, secondCandidates: 0 };
for await (const { keys } of queryKeys(process.argv[3]!, Number(process.argv[4] ?? 200))) {
  const first = await timedLookup(keys.filter((k) => FIRST_PASS_BLOCKS.has(blockKind(k))));
  const second = await timedLookup(keys.filter((k) => !FIRST_PASS_BLOCKS.has(blockKind(k))));
  totals.n++;
  totals.firstMs += first.ms;
  totals.firstCandidates += first.candidates;
  totals.secondMs += second.ms;
  totals.secondCandidates += second.candidates;
}
const { n } = totals;
console.log({ n, first_ms: totals.firstMs / n, first_cands: totals.firstCandidates / n, second_ms: totals.secondMs / n, second_cands: totals.secondCandidates / n });
await db.destroy();
