import { sql, type Kysely } from 'kysely';

/**
 * The first import into an empty member index loads the rows first and builds the secondary indexes and
 * foreign keys of the index tables afterwards (src/members/first-import.ts). The definitions it dropped are
 * kept here, in the transaction that dropped them, until they are built again: an import that stops half-way
 * (a crash, a kill) leaves them here, and the next import builds them before it starts.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE index_import_deferred (
      name text PRIMARY KEY,
      table_name text NOT NULL,
      kind text NOT NULL CHECK (kind IN ('index', 'primary-key', 'foreign-key')),
      definition text NOT NULL
    )`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE IF EXISTS index_import_deferred`.execute(db);
}
