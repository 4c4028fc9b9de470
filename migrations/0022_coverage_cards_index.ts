import { sql, type Kysely } from 'kysely';

/**
 * A candidate lookup for a query that carries a card reads every candidate's card values (its coverages'
 * subscriber and coverage ids: src/members/member-index.ts `cardValuesColumn`), so that a card one slip away
 * can be recognised. Through the (member, coverage id) key that was an index probe plus a visit to the wide
 * coverage row for the subscriber id, one random page a candidate. This index holds both ids, so the read is
 * index-only: at 1,000,000 members a first-pass lookup with a card went from about 0.88 to 0.70 ms a query
 * (docs/benchmarks.md). It is not unique, so a first import builds it once at its end (src/members/first-import.ts).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`CREATE INDEX IF NOT EXISTS coverages_member_cards ON coverages (member_uuid) INCLUDE (subscriber_id, coverage_id)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP INDEX IF EXISTS coverages_member_cards`.execute(db);
}
