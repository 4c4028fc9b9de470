import { sql, type Kysely } from 'kysely';

/**
 * AI or automation agents: registered with their own public keys and the tool scopes they may use. An agent
 * never holds standing access: it exchanges a token it was delegated (plus proof of its own identity) for a
 * narrower, shorter-lived token whose `act` claim records the chain (RFC 8693).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE agent_registrations (
      agent_id text PRIMARY KEY,
      name text NOT NULL,
      jwks jsonb NOT NULL,
      tool_scopes text[] NOT NULL,
      enabled boolean NOT NULL DEFAULT true,
      created_at timestamptz NOT NULL DEFAULT now(),
      disabled_at timestamptz
    )`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE IF EXISTS agent_registrations`.execute(db);
}
