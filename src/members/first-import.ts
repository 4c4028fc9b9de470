import { sql } from 'kysely';
import type { Db, DbOrTx } from '../db/database.js';

/**
 * The first import into an empty member index (issue 13: 1,000,000 members in minutes, not ten): maintaining
 * the secondary indexes and foreign keys of the index tables row by row is most of the import's time in
 * Postgres — every blocking key (about ten per member) was a primary-key insert, a member-index insert and a
 * foreign-key check. A B-tree built once over sorted data, and a foreign key validated by one join, cost a
 * fraction of that. So when `members` is empty at the start of an import:
 *
 *  - {@link deferIndexes} drops, in one transaction, the foreign keys and the indexes the import's upserts do not
 *    need — everything on `member_blocking_keys` (its primary key too: the import writes a new member's keys with
 *    a plain INSERT), the non-unique indexes of `member_identifiers` and `coverages`, and the foreign keys of those and
 *    of `member_match_profiles` — noting each definition
 *    in `index_import_deferred` (migration 0015). The unique keys the upserts conflict on stay.
 *  - {@link buildDeferredIndexes} builds them again once the rows are in (the indexes of each table in parallel,
 *    then the foreign keys), and is run at the start of every import too, so an import that stopped half-way
 *    leaves nothing missing for long.
 *
 * The import runs as the owner (the CLI, the benches); as another role, which may not alter the tables, it
 * silently keeps the row-by-row path. While the first import runs, the index tables have no secondary indexes:
 * a match request against a half-loaded, empty-until-now index is slow, not wrong.
 */

interface Deferrable {
  table: string;
  /** Drop the primary key too (only when the import never conflicts on it). */
  primaryKey: boolean;
}

const DEFERRABLE: readonly Deferrable[] = [
  { table: 'member_blocking_keys', primaryKey: true },
  { table: 'member_identifiers', primaryKey: false },
  { table: 'coverages', primaryKey: false },
  // Its primary key stays: a member written twice in one import updates its profile on it.
  { table: 'member_match_profiles', primaryKey: false },
];

/** Session settings for building the indexes: more sort memory than the default 64 MB, and parallel workers. */
const BUILD_SETTINGS = [sql`SET LOCAL maintenance_work_mem = '512MB'`, sql`SET LOCAL max_parallel_maintenance_workers = 2`];

/**
 * When the member index is empty (and nothing is deferred already), drops the deferrable indexes and foreign keys
 * and returns true: the import may then write blocking keys with plain inserts. Returns false otherwise, and when
 * this role may not alter the tables.
 */
export async function deferIndexes(db: Db): Promise<boolean> {
  try {
    return await db.transaction().execute(async (trx) => {
      // No other import may add members between the check and the drop.
      await sql`LOCK TABLE members, member_blocking_keys, member_identifiers, coverages, member_match_profiles IN SHARE ROW EXCLUSIVE MODE`.execute(trx);
      const busy = await sql<{ busy: boolean }>`
        SELECT EXISTS (SELECT 1 FROM members) OR EXISTS (SELECT 1 FROM member_blocking_keys) OR EXISTS (SELECT 1 FROM index_import_deferred) AS busy`.execute(trx);
      if (busy.rows[0]?.busy !== false) return false;
      for (const { table, primaryKey } of DEFERRABLE) {
        const constraints = await sql<{ name: string; kind: 'p' | 'f'; definition: string }>`
          SELECT conname AS name, contype AS kind, pg_get_constraintdef(oid) AS definition
          FROM pg_constraint WHERE conrelid = ${table}::regclass AND (contype = 'f' OR (contype = 'p' AND ${primaryKey}))`.execute(trx);
        // Indexes that back no constraint (those that do go with their constraint).
        const indexes = await sql<{ name: string; definition: string }>`
          SELECT c.relname AS name, pg_get_indexdef(i.indexrelid) AS definition
          FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
          WHERE i.indrelid = ${table}::regclass AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)`.execute(trx);
        for (const c of constraints.rows) {
          await sql`INSERT INTO index_import_deferred (name, table_name, kind, definition)
            VALUES (${c.name}, ${table}, ${c.kind === 'p' ? 'primary-key' : 'foreign-key'}, ${c.definition})`.execute(trx);
          await sql`ALTER TABLE ${sql.table(table)} DROP CONSTRAINT ${sql.ref(c.name)}`.execute(trx);
        }
        for (const index of indexes.rows) {
          await sql`INSERT INTO index_import_deferred (name, table_name, kind, definition) VALUES (${index.name}, ${table}, 'index', ${index.definition})`.execute(trx);
          await sql`DROP INDEX ${sql.ref(index.name)}`.execute(trx);
        }
      }
      return true;
    });
  } catch (error) {
    // 42501 insufficient_privilege, 42P01 a table missing (a database older than migration 0015).
    const code = (error as { code?: string }).code;
    if (code === '42501' || code === '42P01') return false;
    throw error;
  }
}

/**
 * Builds whatever {@link deferIndexes} dropped and is not back yet: the indexes and primary keys of each table (the
 * tables in parallel), then the foreign keys, each validated by one query. Returns how many it built.
 */
export async function buildDeferredIndexes(db: Db): Promise<number> {
  let deferred: { name: string; table_name: string; kind: 'index' | 'primary-key' | 'foreign-key'; definition: string }[];
  try {
    deferred = (await sql<(typeof deferred)[number]>`SELECT name, table_name, kind, definition FROM index_import_deferred ORDER BY name`.execute(db)).rows;
  } catch (error) {
    if ((error as { code?: string }).code === '42P01') return 0; // before migration 0015
    throw error;
  }
  if (deferred.length === 0) return 0;
  const build = async (item: (typeof deferred)[number]) => {
    await db.transaction().execute(async (trx) => {
      // Whoever else is building it (a concurrent import's start) goes first; then it exists and is skipped.
      await sql`SELECT pg_advisory_xact_lock(hashtext(${`index_import_deferred:${item.name}`}))`.execute(trx);
      const still = await sql`SELECT 1 FROM index_import_deferred WHERE name = ${item.name}`.execute(trx);
      if (still.rows.length === 0) return;
      for (const setting of BUILD_SETTINGS) await setting.execute(trx);
      if (item.kind === 'index') await sql.raw(item.definition).execute(trx);
      else await sql`ALTER TABLE ${sql.table(item.table_name)} ADD CONSTRAINT ${sql.ref(item.name)} ${sql.raw(item.definition)}`.execute(trx);
      await sql`DELETE FROM index_import_deferred WHERE name = ${item.name}`.execute(trx);
    });
  };
  const tables = [...new Set(deferred.map((d) => d.table_name))];
  await Promise.all(
    tables.map(async (table) => {
      for (const item of deferred.filter((d) => d.table_name === table && d.kind !== 'foreign-key')) await build(item);
    }),
  );
  for (const item of deferred.filter((d) => d.kind === 'foreign-key')) await build(item);
  return deferred.length;
}

/** The separator of the joined key list: a control character that normalised blocking keys never hold. */
const SEPARATOR = '\x1f';

/**
 * A new member's blocking keys during a first import, with a plain INSERT (the table has no primary key to
 * conflict on then): each member's keys once. The keys and ids travel as two joined strings split by Postgres
 * (`string_to_array`) rather than as array parameters, which pg would escape element by element (a tenth of
 * the import's Node time for ~10 keys a member); an empty key or one holding the separator falls back to arrays.
 */
export async function insertNewBlockingKeys(db: DbOrTx, entries: readonly { memberUuid: string; keys: readonly string[] }[]): Promise<void> {
  const uuids: string[] = [];
  const keys: string[] = [];
  let plain = true;
  for (const entry of entries) {
    for (const key of new Set(entry.keys)) {
      uuids.push(entry.memberUuid);
      keys.push(key);
      if (key === '' || key.includes(SEPARATOR)) plain = false; // string_to_array('') is empty
    }
  }
  if (keys.length === 0) return;
  if (plain) {
    await sql`INSERT INTO member_blocking_keys (key, member_uuid)
      SELECT * FROM unnest(string_to_array(${keys.join(SEPARATOR)}, ${SEPARATOR}), string_to_array(${uuids.join(SEPARATOR)}, ${SEPARATOR})::uuid[])`.execute(db);
  } else {
    await sql`INSERT INTO member_blocking_keys (key, member_uuid) SELECT * FROM unnest(${keys}::text[], ${uuids}::uuid[])`.execute(db);
  }
}
