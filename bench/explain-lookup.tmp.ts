import { readFileSync } from 'node:fs';
import { sql } from 'kysely';
import { createDb } from '../src/db/database.js';
import { parseMemberMatchRequest, offeredPerson } from '../src/fhir/member-match-request.js';
import { normalizePerson } from '../src/matching/normalize.js';
import { queryBlockingKeys, blockKind } from '../src/matching/blocking.js';
import { findCandidateMembersBatch } from '../src/members/member-index.js';

const db = createDb(process.argv[2]!, 1);
const lines = readFileSync(process.argv[3]!, 'utf8').trim().split('\n').slice(0, Number(process.argv[4] ?? 200));
await sql`LOAD 'auto_explain'`.execute(db);
await sql`SET auto_explain.log_min_duration = ${sql.raw(process.argv[5] ?? '3')}`.execute(db);
await sql`SET auto_explain.log_analyze = on`.execute(db);
await sql`SET auto_explain.log_buffers = on`.execute(db);
await sql`SET auto_explain.log_nested_statements = on`.execute(db);
const FIRST = new Set(['gf', 'gz', 'fz', 'p', 'e']);
let t1 = 0, t2 = 0, n = 0, c1 = 0, c2 = 0;
for (const line of lines) {
  const j = JSON.parse(line);
  let parsed: any;
  try { parsed = parseMemberMatchRequest(j.parameters); } catch { continue; }
  const q = normalizePerson(offeredPerson(parsed));
  const keys = queryBlockingKeys(q);
  let s = performance.now();
  const a = await findCandidateMembersBatch(db, [{ blockKeys: keys.filter((k) => FIRST.has(blockKind(k))), cardValues: [] }], 1000);
  t1 += performance.now() - s; c1 += a.lookups[0]!.members.length;
  s = performance.now();
  const b = await findCandidateMembersBatch(db, [{ blockKeys: keys.filter((k) => !FIRST.has(blockKind(k))), cardValues: [] }], 1000);
  t2 += performance.now() - s; c2 += b.lookups[0]!.members.length; n++;
}
console.log({ n, first_ms: t1 / n, first_cands: c1 / n, second_ms: t2 / n, second_cands: c2 / n });
await db.destroy();
