import { sql, type Kysely } from 'kysely';

/**
 * Trusted workload identities: batch jobs prove who they are with a JWT from a workload identity issuer
 * (a Kubernetes service-account token, a cloud workload identity, SPIFFE JWT-SVID) and exchange it at
 * /oauth/token (RFC 8693) for a short-lived access token. No static secrets.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE workload_identities (
      workload_id text PRIMARY KEY,
      name text NOT NULL,
      issuer text NOT NULL,
      subject text NOT NULL,
      audience text NOT NULL,
      jwks jsonb,
      jwks_url text,
      scopes text[] NOT NULL,
      enabled boolean NOT NULL DEFAULT true,
      created_at timestamptz NOT NULL DEFAULT now(),
      disabled_at timestamptz,
      UNIQUE (issuer, subject),
      CHECK ((jwks IS NULL) <> (jwks_url IS NULL))
    )`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE IF EXISTS workload_identities`.execute(db);
}
