import { sql, type Kysely } from 'kysely';

/**
 * Link management (issue 14): a supervisor revokes a partner's member link. The row stays, for the audit trail
 * and the link listing, with who revoked it, when and why; Patient reads and searches by that partner stop at
 * once because they only follow links with `revoked_at IS NULL`.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE member_links ADD COLUMN revoked_at timestamptz, ADD COLUMN revoked_by text, ADD COLUMN revoke_reason text`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE member_links DROP COLUMN IF EXISTS revoke_reason, DROP COLUMN IF EXISTS revoked_by, DROP COLUMN IF EXISTS revoked_at`.execute(db);
}
