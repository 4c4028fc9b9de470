import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PREPARED_STATEMENT } from '../src/db/database.js';
import { findCandidateMembersBatch } from '../src/members/member-index.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';

/** Hot statements marked PREPARED_STATEMENT are parsed and planned once per connection (src/db/database.ts). */
let tdb: TestDatabase;
beforeAll(async () => {
  tdb = await createTestDatabase();
});
afterAll(() => tdb?.drop());

describe('prepared statements', () => {
  it('prepares the candidate lookup once per connection, and leaves unmarked statements unprepared', async () => {
    await tdb.db.connection().execute(async (conn) => {
      const query = { blockKeys: ['dob:1980-01-01', 'nm:SMT|JN'], cardValues: ['X123'] };
      for (let i = 0; i < 3; i += 1) expect((await findCandidateMembersBatch(conn, [query], 50)).lookups).toEqual([{ members: [], oversizedKeys: [] }]);
      await sql`SELECT ${1}::int AS one`.execute(conn);
      await sql`${sql.raw(PREPARED_STATEMENT)} SELECT ${2}::int AS two`.execute(conn);
      await sql`${sql.raw(PREPARED_STATEMENT)} SELECT ${3}::int AS two`.execute(conn);
      const prepared = await sql<{ statement: string }>`SELECT statement FROM pg_prepared_statements WHERE name LIKE 'mm\\_%'`.execute(conn);
      expect(prepared.rows).toHaveLength(2);
      expect(prepared.rows.some((r) => r.statement.includes('WITH wanted AS'))).toBe(true);
      expect(prepared.rows.some((r) => r.statement.includes('AS two'))).toBe(true);
    });
  });

  it('plans them once: the lookup runs on its generic plan, never re-planned with each call’s values', async () => {
    // Left to its heuristic Postgres kept choosing a custom plan — planning at every call — for the lookup,
    // whose generic plan it misjudged (arrays of unknown length); planning cost more than running it.
    await tdb.db.connection().execute(async (conn) => {
      for (let i = 0; i < 8; i += 1) {
        const query = { blockKeys: [`dob:1980-01-0${i + 1}`, 'nm:SMT|JN'], cardValues: i % 2 ? ['X123456'] : [] };
        await findCandidateMembersBatch(conn, [query, query], 50);
      }
      const plans = await sql<{ generic_plans: string; custom_plans: string }>`
        SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE '%WITH wanted AS%'`.execute(conn);
      // Two texts (with and without the candidates' card values), each executed four times.
      expect(plans.rows).toHaveLength(2);
      for (const row of plans.rows) {
        expect(Number(row.custom_plans)).toBe(0);
        expect(Number(row.generic_plans)).toBeGreaterThanOrEqual(4); // plus the previous test's calls on this connection
      }
    });
  });
});
