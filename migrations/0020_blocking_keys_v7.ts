import { sql, type Kysely } from 'kysely';

/**
 * Brings the birth-date and birthday blocks of an index keyed by an earlier version (blocking keys version ≤ 4)
 * to version 7's shape, so that an upgraded service finds members through them before the next import.
 *
 * Version 7 renamed two kinds of key (src/matching/blocking.ts): `d:<date>` became `d:<date>:f<family initial>`
 * and `d:<date>:g<given initial>`, and `gm:<given code>:<MM-DD>` became `gm:<code>:<MM-DD>:<decade>` and
 * `gm:<code>:<MM-DD>:f<family initial>`. A query of the new code looks only under the new names, so without this
 * the widest-reaching block (the birth date: 92–94 % blocking recall by itself) would find no one until a roster
 * import re-keyed every member (the content hash names the key version, so that import does). The new keys are
 * computed from each member's stored match profile, which holds the normalised names and birth date the import
 * would use; a member without a current profile keeps its old keys until that import. The `hs` block (version 4)
 * needs the street normaliser and also waits for it.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    WITH p AS (
      SELECT m.id, m.match_profile->>'birthDate' AS bd, left(m.match_profile->>'family', 1) AS fi,
        left(m.match_profile->>'given', 1) AS gi, m.match_profile->'givenPhonetic'->>0 AS g
      FROM members m
      WHERE m.match_profile->>'v' = '2' AND m.match_profile->>'birthDate' IS NOT NULL
        AND EXISTS (SELECT 1 FROM member_blocking_keys k WHERE k.member_uuid = m.id AND k.key LIKE 'd:%' AND k.key NOT LIKE 'd:%:%')
    ),
    new_keys AS (
      SELECT id, 'd:' || bd || ':f' || fi AS key FROM p WHERE fi <> ''
      UNION ALL SELECT id, 'd:' || bd || ':g' || gi FROM p WHERE gi <> ''
      UNION ALL SELECT id, 'gm:' || g || ':' || substr(bd, 6) || ':' || left(bd, 3) FROM p WHERE g <> ''
      UNION ALL SELECT id, 'gm:' || g || ':' || substr(bd, 6) || ':f' || fi FROM p WHERE g <> '' AND fi <> ''
    )
    INSERT INTO member_blocking_keys (key, member_uuid) SELECT DISTINCT key, id FROM new_keys ON CONFLICT DO NOTHING`.execute(db);
  await sql`
    DELETE FROM member_blocking_keys k USING members m
    WHERE k.member_uuid = m.id AND m.match_profile->>'v' = '2' AND m.match_profile->>'birthDate' IS NOT NULL
      AND ((k.key LIKE 'd:%' AND k.key NOT LIKE 'd:%:%') OR (k.key LIKE 'gm:%' AND k.key NOT LIKE 'gm:%:%:%'))`.execute(db);
}

export async function down(): Promise<void> {
  // The old keys are not restored: an import by the older code re-keys every member (its key version differs).
}
