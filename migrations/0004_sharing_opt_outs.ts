import { sql, type Kysely } from 'kysely';

/**
 * Our own consent registry: members who opted out of payer-to-payer sharing, or revoked a consent they gave.
 * Checked on every match and every Patient read, whatever consent a partner presents. Opting back in removes
 * the row; the audit trail keeps the history.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE sharing_opt_outs (
      member_uuid uuid PRIMARY KEY REFERENCES members(id) ON DELETE CASCADE,
      status text NOT NULL CHECK (status IN ('opted-out', 'revoked')),
      source text NOT NULL,
      recorded_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE IF EXISTS sharing_opt_outs`.execute(db);
}
