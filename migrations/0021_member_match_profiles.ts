import { sql, type Kysely } from 'kysely';

/**
 * Each member's match profile moves out of `members.match_profile` (`jsonb`, about 400 bytes on a 700-byte
 * row) into a narrow table of its own, as text (src/matching/profile.ts `encodeMatchProfile`, about 125
 * bytes), with the member number beside it. A candidate lookup reads only this table for each candidate: at
 * 1,000,000 members it holds 180 MB instead of the 640 MB of `members`, so far more of it stays in Postgres'
 * cache, and text costs less than `jsonb` to send and to parse (docs/benchmarks.md).
 *
 * Every member gets a row. A profile of the current version (2) is converted here, in the encoder's field
 * order; any other gets an empty profile, which the lookup treats as stale (it normalises the member's
 * demographics afresh) until the next import rewrites it, as it did before.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE member_match_profiles (
      member_uuid uuid PRIMARY KEY REFERENCES members (id) ON DELETE CASCADE,
      member_id text NOT NULL,
      profile text NOT NULL
    )`.execute(db);
  await sql`
    INSERT INTO member_match_profiles (member_uuid, member_id, profile)
    SELECT id, member_id, ${convertedProfile} FROM members`.execute(db);
  await sql`ALTER TABLE members DROP COLUMN match_profile`.execute(db);
  await sql`ANALYZE member_match_profiles`.execute(db);
}

/** A version-2 `jsonb` profile `match_profile` as `encodeMatchProfile` writes it (exported for its test). */
export const convertedProfile = (() => {
  const text = (field: string) => sql`coalesce(replace(replace(match_profile->>${field}, E'\\x1e', E'\\uFFFD'), E'\\x1f', E'\\uFFFD'), '')`;
  const list = (field: string) => sql`coalesce((
      SELECT string_agg(replace(replace(item, E'\\x1e', E'\\uFFFD'), E'\\x1f', E'\\uFFFD'), E'\\x1e' ORDER BY n)
      FROM jsonb_array_elements_text(match_profile->${field}) WITH ORDINALITY AS items(item, n)), '')`;
  const fields = [
    ...['given', 'family', 'suffix', 'birthDate', 'street', 'zip5', 'city', 'phone', 'email', 'sex'].map(text),
    ...['givenCanonical', 'givenPhonetic', 'middle', 'familyParts', 'familyPhonetic'].map(list),
  ];
  return sql`CASE WHEN match_profile->>'v' = '2' THEN concat_ws(E'\\x1f', '2', ${sql.join(fields, sql`, `)}) ELSE '' END`;
})();

export async function down(db: Kysely<unknown>): Promise<void> {
  // The jsonb profiles are not rebuilt: the older code recomputes a missing profile from the demographics, and
  // its next import (whose content hash does not match) writes them again.
  await sql`ALTER TABLE members ADD COLUMN IF NOT EXISTS match_profile jsonb`.execute(db);
  await sql`DROP TABLE IF EXISTS member_match_profiles`.execute(db);
}
