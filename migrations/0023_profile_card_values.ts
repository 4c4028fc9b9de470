import { sql, type Kysely } from 'kysely';

/**
 * Each member's card values (its coverages' subscriber and coverage ids) kept beside its match profile, so a
 * candidate lookup for a query with a card reads one row a candidate instead of two (src/members/member-index.ts).
 * At 1,000,000 members, in a reconciliation chunk's first-pass lookup, reading the card values from
 * `coverages_member_cards` was 27 of the 94 ms, the profiles 38 (docs/benchmarks.md, sixth session).
 *
 * Statement-level triggers on `coverages` keep the copy: after any statement that inserts, updates or deletes
 * coverages, the members it touched get their card values recomputed from `coverages`, once per member per
 * statement, in the same transaction. So every path that writes coverages (a roster import, a first import, a
 * member's deletion by cascade) keeps it, and a reader never sees a profile whose card values disagree with the
 * coverages committed with it. The values are distinct and in byte order (`array_agg(DISTINCT v COLLATE "C" ORDER BY
 * v COLLATE "C")`, here, in the triggers and in src/members/member-repository.ts `upsertMembers`), so an import that
 * already wrote a new member's values with its profile is found right and not written twice; the lookup treats
 * them as a set.
 *
 * The existing rows are copied here with their card values: at 1,000,000 members this rewrites
 * `member_match_profiles` once at start-up.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  // The existing rows are copied into a new table with their card values rather than updated in place: an
  // UPDATE of every row would leave the table twice its size (each row's old version dead until a vacuum, and
  // the space never given back), and the lookup reads one random page a candidate, so a sparse table costs
  // cache. The primary key and foreign key are made after the copy, each by one pass.
  await sql`
    CREATE TABLE member_match_profiles_next (
      member_uuid uuid NOT NULL,
      member_id text NOT NULL,
      profile text NOT NULL,
      card_values text[] NOT NULL DEFAULT '{}'
    )`.execute(db);
  await sql`
    INSERT INTO member_match_profiles_next (member_uuid, member_id, profile, card_values)
    SELECT p.member_uuid, p.member_id, p.profile, coalesce(cards.card_values, '{}')
    FROM member_match_profiles p LEFT JOIN (
      SELECT c.member_uuid, array_agg(DISTINCT v COLLATE "C" ORDER BY v COLLATE "C") AS card_values
      FROM coverages c CROSS JOIN LATERAL (VALUES (c.subscriber_id), (c.coverage_id)) ids(v)
      WHERE v IS NOT NULL GROUP BY c.member_uuid
    ) cards ON cards.member_uuid = p.member_uuid`.execute(db);
  // A first import that stopped half-way noted the foreign key for its next run to build (src/members/first-import.ts).
  const { rows } = await sql<{ deferred: boolean }>`
    SELECT EXISTS (SELECT 1 FROM index_import_deferred WHERE name = 'member_match_profiles_member_uuid_fkey') AS deferred`.execute(db);
  await sql`DROP TABLE member_match_profiles`.execute(db);
  await sql`ALTER TABLE member_match_profiles_next RENAME TO member_match_profiles`.execute(db);
  await sql`ALTER TABLE member_match_profiles ADD CONSTRAINT member_match_profiles_pkey PRIMARY KEY (member_uuid)`.execute(db);
  if (!rows[0]?.deferred) {
    await sql`ALTER TABLE member_match_profiles ADD CONSTRAINT member_match_profiles_member_uuid_fkey
      FOREIGN KEY (member_uuid) REFERENCES members (id) ON DELETE CASCADE`.execute(db);
  }

  // One function for the three events: each names only the transition tables its own event has. The touched
  // members' values are recomputed in one set-based statement (a function called per member cost a first import
  // 13 % more time), in the copy's form above, and a profile already right is not written again.
  // An insert only adds values: a member whose stored values hold the new coverage's already is left alone. That
  // is exact because the stored values are only ever the triggers' own, or those an import wrote with a new
  // member's profile, which are the coverages the same transaction inserts for it (src/members/roster-import.ts);
  // it spares a first import a read of every new member's coverages.
  // The statement is EXECUTEd, so it is planned afresh each time: PL/pgSQL would otherwise keep the plan it made
  // when `coverages` was small (early in a first import: a scan of the whole table), and a 1,000,000-member first
  // import took 524 s instead of 277 (docs/benchmarks.md, sixth session).
  const refresh = (members: string) => `
        EXECUTE $refresh$
        WITH touched AS (${members}),
        fresh AS (
          SELECT t.member_uuid,
            coalesce(array_agg(DISTINCT ids.v COLLATE "C" ORDER BY ids.v COLLATE "C") FILTER (WHERE ids.v IS NOT NULL), '{}') AS card_values
          FROM touched t
          LEFT JOIN coverages c ON c.member_uuid = t.member_uuid
          LEFT JOIN LATERAL (VALUES (c.subscriber_id), (c.coverage_id)) ids(v) ON true
          GROUP BY t.member_uuid
        )
        UPDATE member_match_profiles p SET card_values = fresh.card_values FROM fresh
        WHERE p.member_uuid = fresh.member_uuid AND p.card_values IS DISTINCT FROM fresh.card_values
        $refresh$;`;
  await sql.raw(`
    CREATE FUNCTION coverages_refresh_card_values() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'INSERT' THEN${refresh(`SELECT DISTINCT n.member_uuid FROM new_coverages n JOIN member_match_profiles p ON p.member_uuid = n.member_uuid
          WHERE NOT p.card_values @> array_remove(ARRAY[n.coverage_id, n.subscriber_id], NULL)`)}
      ELSIF TG_OP = 'DELETE' THEN${refresh('SELECT DISTINCT member_uuid FROM old_coverages')}
      ELSE${refresh('SELECT member_uuid FROM new_coverages UNION SELECT member_uuid FROM old_coverages')}
      END IF;
      RETURN NULL;
    END $$`).execute(db);
  await sql`CREATE TRIGGER coverages_card_values_insert AFTER INSERT ON coverages REFERENCING NEW TABLE AS new_coverages
    FOR EACH STATEMENT EXECUTE FUNCTION coverages_refresh_card_values()`.execute(db);
  await sql`CREATE TRIGGER coverages_card_values_update AFTER UPDATE ON coverages REFERENCING OLD TABLE AS old_coverages NEW TABLE AS new_coverages
    FOR EACH STATEMENT EXECUTE FUNCTION coverages_refresh_card_values()`.execute(db);
  await sql`CREATE TRIGGER coverages_card_values_delete AFTER DELETE ON coverages REFERENCING OLD TABLE AS old_coverages
    FOR EACH STATEMENT EXECUTE FUNCTION coverages_refresh_card_values()`.execute(db);
  await sql`ANALYZE member_match_profiles`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const event of ['insert', 'update', 'delete']) await sql.raw(`DROP TRIGGER IF EXISTS coverages_card_values_${event} ON coverages`).execute(db);
  await sql`DROP FUNCTION IF EXISTS coverages_refresh_card_values()`.execute(db);
  await sql`ALTER TABLE member_match_profiles DROP COLUMN IF EXISTS card_values`.execute(db);
}
