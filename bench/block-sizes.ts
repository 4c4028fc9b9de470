/**
 * npx tsx bench/block-sizes.ts DATABASE_URL QUERIES.ndjson [N] — how many members each kind of block holds for
 * the first N (default 300) `$member-match` requests of a query file, against an index already loaded (a bench's
 * or an evaluation's scratch database): mean, median, 90th percentile and maximum per kind. The candidates a
 * query costs at a given index size come from here (docs/accuracy.md, blocking keys versions 5–7).
 */
import { readFileSync } from 'node:fs';
import { sql } from 'kysely';
import { createDb } from '../src/db/database.js';
import { parseMemberMatchRequest, offeredPerson } from '../src/fhir/member-match-request.js';
import { normalizePerson } from '../src/matching/normalize.js';
import { queryBlockingKeys, blockKind } from '../src/matching/blocking.js';
const db = createDb(process.argv[2]!, 1);
const lines = readFileSync(process.argv[3]!, 'utf8').trim().split('\n').slice(0, Number(process.argv[4] ?? 300));
const sizes = new Map<string, number[]>();
for (const line of lines) {
  const j = JSON.parse(line);
  let parsed: ReturnType<typeof parseMemberMatchRequest>;
  try {
    parsed = parseMemberMatchRequest(j.parameters);
  } catch {
    continue;
  }
  const keys = queryBlockingKeys(normalizePerson(offeredPerson(parsed)));
  const rows = await sql<{ key: string; n: number }>`SELECT k.key, (SELECT count(*) FROM (SELECT 1 FROM member_blocking_keys b WHERE b.key = k.key LIMIT 1001) x)::int AS n FROM unnest(${keys}::text[]) k(key)`.execute(db);
  const per = new Map<string, number>();
  for (const r of rows.rows) per.set(blockKind(r.key), (per.get(blockKind(r.key)) ?? 0) + r.n);
  for (const [k, n] of per) { if (!sizes.has(k)) sizes.set(k, []); sizes.get(k)!.push(n); }
}
for (const [k, v] of sizes) { v.sort((a, b) => a - b); console.log(k.padEnd(3), 'queries', v.length, 'mean', (v.reduce((a, b) => a + b, 0) / v.length).toFixed(1), 'p50', v[v.length >> 1], 'p90', v[Math.floor(v.length * 0.9)], 'max', v[v.length - 1]); }
await db.destroy();
