/**
 * npx tsx bench/block-sizes.ts DATABASE_URL QUERIES.ndjson [N] — how many members each kind of block holds for
 * the first N (default 300) `$member-match` requests of a query file, against an index already loaded (a bench's
 * or an evaluation's scratch database): mean, median, 90th percentile and maximum per kind. The candidates a
 * query costs at a given index size come from here (docs/accuracy.md, blocking keys versions 5–7).
 */
import { sql } from 'kysely';
import { createDb } from '../src/db/database.js';
import { blockKind } from '../src/matching/blocking.js';
import { DEFAULT_BLOCK_CAP, queryKeys } from './query-keys.js';

const db = createDb(process.argv[2]!, 1);
const sizes = new Map<string, number[]>();
for await (const { keys } of queryKeys(process.argv[3]!, Number(process.argv[4] ?? 300))) {
  // Counted as the lookup reads a block: up to one past the cap.
  const rows = await sql<{ key: string; n: number }>`
    SELECT k.key, (SELECT count(*) FROM (SELECT 1 FROM member_blocking_keys b WHERE b.key = k.key LIMIT ${DEFAULT_BLOCK_CAP + 1}) x)::int AS n
    FROM unnest(${keys}::text[]) k(key)`.execute(db);
  const perKind = new Map<string, number>();
  for (const r of rows.rows) perKind.set(blockKind(r.key), (perKind.get(blockKind(r.key)) ?? 0) + r.n);
  for (const [kind, n] of perKind) sizes.set(kind, [...(sizes.get(kind) ?? []), n]);
}
for (const [kind, v] of sizes) {
  v.sort((a, b) => a - b);
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  console.log(kind.padEnd(3), 'queries', v.length, 'mean', mean.toFixed(1), 'p50', v[v.length >> 1], 'p90', v[Math.floor(v.length * 0.9)], 'max', v[v.length - 1]);
}
await db.destroy();
