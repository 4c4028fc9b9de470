import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { dropDatabase, openDatabase, type Db } from '../../src/db/database.js';

const serverUrl = process.env.TEST_DATABASE_SERVER_URL ?? 'postgres://postgres@127.0.0.1:5432';

// The audit key and checkpoint file default to the local state directory (docs/audit.md): tests get one of
// their own per test process, never the developer's.
process.env.XDG_STATE_HOME = mkdtempSync(path.join(tmpdir(), 'mm-test-state-'));

export interface TestDatabase {
  db: Db;
  url: string;
  drop(): Promise<void>;
}

/**
 * A fresh, migrated database of its own for one test file: tests never share rows. `db` connects as the owner
 * (DATABASE_URL's user); a service started on `url` runs as the runtime role.
 */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `mm_test_${randomBytes(6).toString('hex')}`;
  const url = `${serverUrl}/${name}`;
  const db = await openDatabase(url, 5);
  return {
    db,
    url,
    async drop() {
      await db.destroy();
      await dropDatabase(url);
    },
  };
}

/** As the attacker with the owner's (superuser's) connection: the triggers switched off for one session. */
export async function behindTheTriggers(db: Db, work: (conn: Db) => Promise<void>): Promise<void> {
  await db.connection().execute(async (conn) => {
    await sql`SET session_replication_role = replica`.execute(conn);
    try {
      await work(conn as unknown as Db);
    } finally {
      await sql`SET session_replication_role = DEFAULT`.execute(conn);
    }
  });
}
