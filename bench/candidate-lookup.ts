/**
 * npx tsx bench/candidate-lookup.ts DATABASE_URL QUERIES.ndjson [N] — times the candidate lookup of the first N
 * (default 200) requests of a query file, one at a time on one connection: the first pass (the specific blocks)
 * and the second (the wide ones), with the candidates each returns. With BENCH_EXPLAIN_MS=<ms> it also loads
 * auto_explain on its connection, so Postgres logs the plan (ANALYZE, BUFFERS) of every lookup slower than that:
 * how the 1 M-member lookups were found to read their candidates from outside shared_buffers (docs/benchmarks.md).
 */
import { readFileSync } from 'node:fs';
import { sql } from 'kysely';
import { createDb } from '../src/db/database.js';
import { parseMemberMatchRequest, offeredPerson } from '../src/fhir/member-match-request.js';
import { normalizePerson } from '../src/matching/normalize.js';
import { queryBlockingKeys, blockKind } from '../src/matching/blocking.js';
import { findCandidateMembersBatch } from '../src/members/member-index.js';
import { FIRST_PASS_BLOCKS } from '../src/matching/engine.js';

const db = createDb(process.argv[2]!, 1);
const lines = readFileSync(process.argv[3]!, 'utf8').trim().split('\n').slice(0, Number(process.argv[4] ?? 200));
if (process.env.BENCH_EXPLAIN_MS) {
  await sql`LOAD 'auto_explain'`.execute(db);
  await sql`SELECT set_config('auto_explain.log_min_duration', ${process.env.BENCH_EXPLAIN_MS}, false)`.execute(db);
  await sql`SET auto_explain.log_analyze = on`.execute(db);
  await sql`SET auto_explain.log_buffers = on`.execute(db);
}
let t1 = 0, t2 = 0, n = 0, c1 = 0, c2 = 0;
for (const line of lines) {
  const j = JSON.parse(line);
  let parsed: ReturnType<typeof parseMemberMatchRequest>;
  try {
    parsed = parseMemberMatchRequest(j.parameters);
  } catch {
    continue;
  }
  const q = normalizePerson(offeredPerson(parsed));
  const keys = queryBlockingKeys(q);
  let s = performance.now();
  const a = await findCandidateMembersBatch(db, [{ blockKeys: keys.filter((k) => FIRST_PASS_BLOCKS.has(blockKind(k))), cardValues: [] }], 1000);
  t1 += performance.now() - s; c1 += a.lookups[0]!.members.length;
  s = performance.now();
  const b = await findCandidateMembersBatch(db, [{ blockKeys: keys.filter((k) => !FIRST_PASS_BLOCKS.has(blockKind(k))), cardValues: [] }], 1000);
  t2 += performance.now() - s; c2 += b.lookups[0]!.members.length; n++;
}
console.log({ n, first_ms: t1 / n, first_cands: c1 / n, second_ms: t2 / n, second_cands: c2 / n });
await db.destroy();
