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
      for (let i = 0; i < 3; i += 1) expect(await findCandidateMembersBatch(conn, [query], 50)).toEqual([{ members: [], oversizedKeys: [] }]);
      await sql`SELECT ${1}::int AS one`.execute(conn);
      await sql`${sql.raw(PREPARED_STATEMENT)} SELECT ${2}::int AS two`.execute(conn);
      await sql`${sql.raw(PREPARED_STATEMENT)} SELECT ${3}::int AS two`.execute(conn);
      const prepared = await sql<{ statement: string }>`SELECT statement FROM pg_prepared_statements WHERE name LIKE 'mm\\_%'`.execute(conn);
      expect(prepared.rows).toHaveLength(2);
      expect(prepared.rows.some((r) => r.statement.includes('WITH wanted AS'))).toBe(true);
      expect(prepared.rows.some((r) => r.statement.includes('AS two'))).toBe(true);
    });
  });
});
