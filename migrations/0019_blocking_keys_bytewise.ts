import { sql, type Kysely } from 'kysely';

/**
 * Blocking keys compare byte by byte (`COLLATE "C"`), whatever the database's locale (issue 13).
 *
 * A key is only ever looked up by equality, and equality under any deterministic collation is already byte
 * equality, so no lookup's answer changes. What changes is the cost of ordering them: the primary key (key,
 * member_uuid) is the largest index the service has (about eleven entries a member), and Postgres sorts text in
 * a libc locale other than C through strcoll and without abbreviated keys. Measured on this project's machine
 * (Postgres 15, database locale C.UTF-8), building that index over 4.2 M keys took 5.3–5.7 s with the locale and
 * 3.1–3.2 s bytewise; a first import of 1 M members rebuilds it at its end. In a locale such as en_US.UTF-8 the
 * difference is larger.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  // A collation change alone keeps the rows; Postgres rebuilds the indexes on the column.
  await sql`ALTER TABLE member_blocking_keys ALTER COLUMN key TYPE text COLLATE "C"`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE member_blocking_keys ALTER COLUMN key TYPE text COLLATE "default"`.execute(db);
}
