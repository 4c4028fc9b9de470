import { sql, type Kysely } from 'kysely';

/**
 * Probabilistic matching: blocking keys computed at roster import (candidate retrieval never scans the
 * member table), and versioned Fellegi–Sunter models of which exactly one is active.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  // The primary key (key, member_uuid) is the lookup index: a block is one index range.
  await sql`
    CREATE TABLE member_blocking_keys (
      key text NOT NULL,
      member_uuid uuid NOT NULL REFERENCES members(id) ON DELETE CASCADE,
      PRIMARY KEY (key, member_uuid)
    )`.execute(db);
  await sql`CREATE INDEX member_blocking_keys_member ON member_blocking_keys (member_uuid)`.execute(db);

  await sql`
    CREATE TABLE match_models (
      version text PRIMARY KEY,
      active boolean NOT NULL DEFAULT false,
      parameters jsonb NOT NULL,
      training jsonb NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      activated_at timestamptz
    )`.execute(db);
  await sql`CREATE UNIQUE INDEX match_models_one_active ON match_models (active) WHERE active`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE IF EXISTS match_models`.execute(db);
  await sql`DROP TABLE IF EXISTS member_blocking_keys`.execute(db);
}
