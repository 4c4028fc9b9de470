import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';
import pg from 'pg';
import { Kysely, Migrator, PostgresDialect, sql, type Migration, type MigrationProvider, type Transaction } from 'kysely';
import type { Database } from './schema.js';

export type Db = Kysely<Database>;
export type Tx = Transaction<Database>;
/** Repositories take either the pool-backed instance or a transaction. */
export type DbOrTx = Db | Tx;

// DATE columns stay `YYYY-MM-DD` strings: a JS Date at local midnight would shift birth dates across zones.
pg.types.setTypeParser(1082, (value: string) => value);
// bigint (bigserial) stays a string rather than losing precision.
pg.types.setTypeParser(20, (value: string) => value);

/**
 * Marks a hot statement to be sent as a named prepared statement (see {@link createDb}): put it first or last in
 * the statement's text (Kysely: `.modifyEnd(sql.raw(PREPARED_STATEMENT))`). Only for statements whose text is
 * fixed (values as parameters, lists as one array parameter) and that name their columns (no `SELECT *`), so one
 * connection prepares each marked statement once and a migration cannot change what it returns.
 */
export const PREPARED_STATEMENT = '/* prepared */';

/**
 * Sends statements that begin or end with {@link PREPARED_STATEMENT} as named prepared statements, named by a hash of
 * their text: Postgres parses and plans them once per connection instead of on every call (issue 13: the
 * candidate lookup's planning cost more than its execution). Opt-in per statement, not for all, because a
 * prepared `SELECT *` fails once a migration changes its table, and the number of distinct texts Kysely builds
 * (IN lists, multi-row inserts) is unbounded.
 */
function prepareMarkedStatements(client: pg.PoolClient): void {
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  (client as unknown as { query: (...args: unknown[]) => unknown }).query = (text: unknown, ...rest: unknown[]) =>
    typeof text === 'string' && (text.startsWith(PREPARED_STATEMENT) || text.endsWith(PREPARED_STATEMENT)) && Array.isArray(rest[0])
      ? query({ name: `mm_${createHash('sha256').update(text).digest('hex').slice(0, 24)}`, text, values: rest[0] }, ...rest.slice(1))
      : query(text, ...rest);
}

export function createDb(databaseUrl: string, poolSize = 10): Db {
  // Named prepared statements (PREPARED_STATEMENT) are planned once: left to its heuristic, Postgres kept
  // re-planning the candidate lookup with each call's values (a custom plan at every bind), which cost more than
  // running it. The setting touches named statements only; kysely's other statements are unnamed, planned per call.
  const pool = new pg.Pool({ connectionString: databaseUrl, max: poolSize, options: '-c plan_cache_mode=force_generic_plan' });
  // An idle connection dropped by the server (restart, failover) must not crash the process: the pool
  // discards it and the next query opens a new one.
  pool.on('error', () => undefined);
  pool.on('connect', prepareMarkedStatements);
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}

/**
 * Creates the database named in the URL when it does not exist yet, by connecting to the server's
 * `postgres` maintenance database. Lets `npm start` work on a fresh machine with no set-up.
 */
export async function ensureDatabaseExists(databaseUrl: string): Promise<void> {
  await withMaintenanceClient(databaseUrl, async (client, name) => {
    const existing = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (existing.rowCount === 0) {
      try {
        await client.query(`CREATE DATABASE ${quoteIdentifier(name)}`);
      } catch (error) {
        // Another process created it between our check and our CREATE: that is fine.
        if ((error as { code?: string }).code !== '42P04') throw error;
      }
    }
  });
}

/** Drops the database named in the URL, if it exists, closing its connections (tests' and benches' scratch databases). */
export async function dropDatabase(databaseUrl: string): Promise<void> {
  await withMaintenanceClient(databaseUrl, (client, name) => client.query(`DROP DATABASE IF EXISTS ${quoteIdentifier(name)} WITH (FORCE)`));
}

const quoteIdentifier = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** Runs `work` on a connection to the server's `postgres` maintenance database, with the URL's database name. */
async function withMaintenanceClient(databaseUrl: string, work: (client: pg.Client, name: string) => Promise<unknown>): Promise<void> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!name) throw new Error('DATABASE_URL names no database');
  url.pathname = '/postgres';
  const client = new pg.Client({ connectionString: url.toString() });
  client.on('error', () => undefined);
  await client.connect();
  try {
    await work(client, name);
  } finally {
    await client.end();
  }
}

const migrationsFolder = fileURLToPath(new URL('../../migrations', import.meta.url));

/** Loads migrations from `migrations/`, as TypeScript under tsx or as compiled JavaScript under dist/. */
export const folderMigrationProvider: MigrationProvider = {
  async getMigrations() {
    const migrations: Record<string, Migration> = {};
    for (const file of (await readdir(migrationsFolder)).sort()) {
      if (!/\.(ts|js)$/.test(file) || file.endsWith('.d.ts')) continue;
      const module = (await import(pathToFileURL(path.join(migrationsFolder, file)).href)) as Migration;
      migrations[file.replace(/\.(ts|js)$/, '')] = module;
    }
    return migrations;
  },
};

export async function migrateToLatest(db: Db): Promise<string[]> {
  const migrator = new Migrator({ db, provider: folderMigrationProvider });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/**
 * Creates the database if needed, opens it as the owner (DATABASE_URL), applies pending migrations and grants
 * the runtime role its privileges. For migrations and the operator's CLI; the service itself runs as the
 * runtime role ({@link openRuntimeDatabase}).
 */
export async function openDatabase(databaseUrl: string, poolSize?: number): Promise<Db> {
  await ensureDatabaseExists(databaseUrl);
  const db = createDb(databaseUrl, poolSize);
  await migrateToLatest(db);
  await grantRuntimeRole(db);
  return db;
}

/**
 * The role the service (API and workers) runs as: it may read and write the working tables, but only INSERT
 * and SELECT the append-only audit tables; it owns nothing, so it cannot disable their triggers, and it is no
 * superuser, so it cannot set `session_replication_role`. Roles are cluster-wide; its privileges are granted
 * per database, after every migration (so tables added later are covered). docs/audit.md.
 */
export const RUNTIME_ROLE = 'member_match_app';
/** Tables the runtime role may only INSERT into and SELECT from. A new append-only table joins this list. */
export const APPEND_ONLY_TABLES = ['audit_events', 'audit_chain', 'audit_chain_links', 'audit_checkpoints'] as const;
const MIGRATION_TABLES = ['kysely_migration', 'kysely_migration_lock'];
/** Serialises grants within one database (processes starting together); advisory locks are per database. */
const GRANT_LOCK_KEY = 0x6d6d_a0d3;

/**
 * Takes a transaction-scoped advisory lock if it is free, and says whether it did: for work one process at a time
 * does while the others skip (audit sealing, checkpoints).
 */
export async function tryTransactionLock(trx: Tx, key: number): Promise<boolean> {
  const { rows } = await sql<{ locked: boolean }>`SELECT pg_try_advisory_xact_lock(${key}) AS locked`.execute(trx);
  return rows[0]?.locked === true;
}

/** Creates the runtime role if it does not exist (idempotent, and safe when several processes race) and grants it its privileges in this database. */
export async function grantRuntimeRole(owner: Db): Promise<void> {
  const role = sql.id(RUNTIME_ROLE);
  const exists = async () => (await sql`SELECT 1 FROM pg_roles WHERE rolname = ${RUNTIME_ROLE}`.execute(owner)).rows.length > 0;
  if (!(await exists())) {
    try {
      await sql`CREATE ROLE ${role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS`.execute(owner);
    } catch (error) {
      const code = (error as { code?: string }).code;
      // 42710 duplicate_object / 23505: another process (another test database, another instance) created it first.
      if (code !== '42710' && code !== '23505') {
        if (code === '42501') {
          throw new Error(`the database role ${RUNTIME_ROLE} does not exist and DATABASE_URL's user may not create it: create it (docs/audit.md)`, {
            cause: error,
          });
        }
        throw error;
      }
    }
  }
  await owner.transaction().execute(async (trx) => {
    await sql`SELECT pg_advisory_xact_lock(${GRANT_LOCK_KEY})`.execute(trx);
    await sql`GRANT USAGE ON SCHEMA public TO ${role}`.execute(trx);
    await sql`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${role}`.execute(trx);
    await sql`GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO ${role}`.execute(trx);
    const appendOnly = sql.join(APPEND_ONLY_TABLES.map((t) => sql.table(t)));
    await sql`REVOKE UPDATE, DELETE, TRUNCATE, TRIGGER, REFERENCES ON ${appendOnly} FROM ${role}`.execute(trx);
    await sql`REVOKE INSERT, UPDATE, DELETE ON ${sql.join(MIGRATION_TABLES.map((t) => sql.table(t)))} FROM ${role}`.execute(trx);
    // The sealer's work list: only the trigger adds to it (as the owner); the runtime role reads and deletes.
    await sql`REVOKE INSERT, UPDATE, TRUNCATE ON audit_pending FROM ${role}`.execute(trx);
    // An event's seq comes from its sequence, never from the writer: INSERT on every column but `seq`.
    const { rows } = await sql<{ name: string }>`
      SELECT column_name AS name FROM information_schema.columns
      WHERE table_schema = 'public' AND table_name = 'audit_events' AND column_name <> 'seq' ORDER BY ordinal_position`.execute(trx);
    await sql`REVOKE INSERT ON audit_events FROM ${role}`.execute(trx);
    await sql`GRANT INSERT (${sql.join(rows.map((r) => sql.id(r.name)))}) ON audit_events TO ${role}`.execute(trx);
  });
}

/** The runtime role's connection: APP_DATABASE_URL, or DATABASE_URL with the runtime role as its user and no password. */
export function runtimeDatabaseUrl(config: { databaseUrl: string; appDatabaseUrl?: string | undefined }): string {
  if (config.appDatabaseUrl) return config.appDatabaseUrl;
  const url = new URL(config.databaseUrl);
  url.username = RUNTIME_ROLE;
  url.password = '';
  return url.toString();
}

/**
 * The service's database: unless MIGRATE_ON_START=false, first creates and migrates it as the owner (a
 * short-lived connection, closed again); then connects as the runtime role, and refuses to run if that role
 * could rewrite the audit trail.
 */
export async function openRuntimeDatabase(
  config: { databaseUrl: string; appDatabaseUrl?: string | undefined; migrateOnStart: boolean },
  poolSize?: number,
): Promise<Db> {
  if (config.migrateOnStart) await (await openDatabase(config.databaseUrl, 2)).destroy();
  const db = createDb(runtimeDatabaseUrl(config), poolSize);
  try {
    await assertRuntimeRole(db);
  } catch (error) {
    await db.destroy();
    throw error;
  }
  return db;
}

/** Throws unless the connection's role is confined as {@link RUNTIME_ROLE} should be. */
export async function assertRuntimeRole(db: Db): Promise<void> {
  const { rows } = await sql<{ user: string; too_much: string[] }>`
    SELECT current_user AS user, array_remove(ARRAY[
      CASE WHEN r.rolsuper THEN 'superuser' END,
      CASE WHEN r.rolbypassrls THEN 'bypassrls' END,
      CASE WHEN r.rolreplication THEN 'replication' END,
      CASE WHEN pg_has_role(current_user, c.relowner, 'USAGE') THEN 'owns audit_events' END,
      CASE WHEN has_any_column_privilege(c.oid, 'UPDATE') THEN 'UPDATE' END,
      CASE WHEN has_table_privilege(c.oid, 'DELETE') THEN 'DELETE' END,
      CASE WHEN has_table_privilege(c.oid, 'TRUNCATE') THEN 'TRUNCATE' END,
      CASE WHEN has_table_privilege(c.oid, 'TRIGGER') THEN 'TRIGGER' END
    ], NULL) AS too_much
    FROM pg_roles r, pg_class c
    WHERE r.rolname = current_user AND c.oid = 'audit_events'::regclass`.execute(db);
  const found = rows[0];
  if (!found) throw new Error('the runtime database connection cannot see audit_events: is the database migrated?');
  if (found.too_much.length > 0) {
    throw new Error(
      `the runtime database role ${found.user} could rewrite the audit trail (${found.too_much.join(', ')}): ` +
        `the service must connect as a role like ${RUNTIME_ROLE} (APP_DATABASE_URL), not the owner (docs/audit.md)`,
    );
  }
}
