import { sql, type Kysely } from 'kysely';

/** Partners registered for mutual TLS get certificate-bound access tokens (RFC 8705). */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE partner_clients ADD COLUMN tls_bound boolean NOT NULL DEFAULT false`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE partner_clients DROP COLUMN IF EXISTS tls_bound`.execute(db);
}
