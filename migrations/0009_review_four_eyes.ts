import { sql, type Kysely } from 'kysely';

/**
 * Four eyes: a high-risk case (a #sensitive consent, a conflict between candidates, a card pointing at
 * someone other than the best candidate) is decided by one reviewer and confirmed by a different one.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE review_cases ADD COLUMN high_risk boolean NOT NULL DEFAULT false`.execute(db);
  await sql`ALTER TABLE review_cases ADD COLUMN confirmed_by text`.execute(db);
  await sql`ALTER TABLE review_cases DROP CONSTRAINT review_cases_status_check`.execute(db);
  await sql`ALTER TABLE review_cases ADD CONSTRAINT review_cases_status_check
    CHECK (status IN ('pending', 'claimed', 'awaiting-confirmation', 'decided'))`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE review_cases DROP CONSTRAINT review_cases_status_check`.execute(db);
  await sql`ALTER TABLE review_cases ADD CONSTRAINT review_cases_status_check CHECK (status IN ('pending', 'claimed', 'decided'))`.execute(db);
  await sql`ALTER TABLE review_cases DROP COLUMN IF EXISTS confirmed_by`.execute(db);
  await sql`ALTER TABLE review_cases DROP COLUMN IF EXISTS high_risk`.execute(db);
}
