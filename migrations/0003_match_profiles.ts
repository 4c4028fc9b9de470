import { sql, type Kysely } from 'kysely';

/**
 * Each member's normalised demographics (the matcher's `NormalizedPerson`, without identifiers), computed
 * once at roster import instead of for every candidate of every request. Versioned inside the JSON: a
 * profile written by older normalisation code is recomputed at read time until the next import rewrites it.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE members ADD COLUMN match_profile jsonb`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE members DROP COLUMN IF EXISTS match_profile`.execute(db);
}
