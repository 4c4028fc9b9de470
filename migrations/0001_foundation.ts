import { sql, type Kysely } from 'kysely';

/**
 * The foundation schema: member index, partner clients, links, consents, the audit trail and the service's
 * own keys. Demographics live only in `members`; every other table holds references.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`CREATE EXTENSION IF NOT EXISTS pgcrypto`.execute(db);

  await sql`
    CREATE TABLE members (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      member_id text NOT NULL UNIQUE,
      source_resource_id text UNIQUE,
      given text NOT NULL,
      middle text,
      family text NOT NULL,
      suffix text,
      birth_date date NOT NULL,
      gender text,
      address_line text,
      city text,
      state text,
      postal_code text,
      phone text,
      email text,
      family_key text NOT NULL,
      given_key text NOT NULL,
      content_hash text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db);

  await sql`
    CREATE TABLE member_identifiers (
      member_uuid uuid NOT NULL REFERENCES members(id) ON DELETE CASCADE,
      system text NOT NULL,
      value text NOT NULL,
      type_code text,
      PRIMARY KEY (system, value)
    )`.execute(db);
  await sql`CREATE INDEX member_identifiers_value ON member_identifiers (value)`.execute(db);
  await sql`CREATE INDEX member_identifiers_member ON member_identifiers (member_uuid)`.execute(db);

  await sql`
    CREATE TABLE coverages (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      member_uuid uuid NOT NULL REFERENCES members(id) ON DELETE CASCADE,
      coverage_id text NOT NULL,
      subscriber_id text,
      relationship text,
      group_id text,
      plan_id text,
      period_start date,
      period_end date,
      content_hash text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (member_uuid, coverage_id)
    )`.execute(db);
  await sql`CREATE INDEX coverages_coverage_id ON coverages (coverage_id)`.execute(db);
  await sql`CREATE INDEX coverages_subscriber_id ON coverages (subscriber_id)`.execute(db);

  await sql`
    CREATE TABLE partner_clients (
      client_id text PRIMARY KEY,
      name text NOT NULL,
      organization_system text NOT NULL,
      organization_value text NOT NULL,
      jwks jsonb,
      jwks_url text,
      scopes text[] NOT NULL,
      enabled boolean NOT NULL DEFAULT true,
      created_at timestamptz NOT NULL DEFAULT now(),
      disabled_at timestamptz,
      CHECK ((jwks IS NULL) <> (jwks_url IS NULL))
    )`.execute(db);

  await sql`
    CREATE TABLE consents (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      member_uuid uuid NOT NULL REFERENCES members(id),
      partner_client_id text NOT NULL REFERENCES partner_clients(client_id),
      recipient_system text NOT NULL,
      recipient_value text NOT NULL,
      policy_uri text NOT NULL,
      period_start timestamptz NOT NULL,
      period_end timestamptz NOT NULL,
      source_reference text,
      resource jsonb NOT NULL,
      resource_hash text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (member_uuid, recipient_system, recipient_value, resource_hash)
    )`.execute(db);

  await sql`
    CREATE TABLE member_links (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      member_uuid uuid NOT NULL REFERENCES members(id),
      partner_client_id text NOT NULL REFERENCES partner_clients(client_id),
      partner_org_system text NOT NULL,
      partner_org_value text NOT NULL,
      link_coverage_key text NOT NULL,
      coverage_to_link jsonb,
      consent_id uuid NOT NULL REFERENCES consents(id),
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (partner_org_system, partner_org_value, member_uuid, link_coverage_key)
    )`.execute(db);
  await sql`CREATE INDEX member_links_partner ON member_links (partner_org_system, partner_org_value, member_uuid)`.execute(db);

  await sql`
    CREATE TABLE audit_events (
      seq bigserial PRIMARY KEY,
      event_id uuid NOT NULL UNIQUE,
      recorded_at timestamptz NOT NULL,
      request_id text,
      source_ip text,
      actor_class text,
      client_id text,
      organization text,
      token_jti text,
      purpose_of_use text,
      operation text NOT NULL,
      outcome text NOT NULL CHECK (outcome IN ('success', 'failure')),
      http_status integer,
      reason_code text,
      consent_decision text,
      member_ref uuid,
      details jsonb NOT NULL DEFAULT '{}'::jsonb,
      prev_hash text NOT NULL,
      hash text NOT NULL UNIQUE
    )`.execute(db);
  await sql`CREATE INDEX audit_events_member ON audit_events (member_ref) WHERE member_ref IS NOT NULL`.execute(db);

  // Append-only: the database itself refuses to change or remove history.
  await sql`
    CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION 'audit_events is append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
    END $$`.execute(db);
  await sql`
    CREATE TRIGGER audit_events_no_update_delete BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()`.execute(db);
  await sql`
    CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()`.execute(db);

  await sql`
    CREATE TABLE signing_keys (
      kid text PRIMARY KEY,
      alg text NOT NULL,
      public_jwk jsonb NOT NULL,
      private_jwk jsonb NOT NULL,
      active boolean NOT NULL DEFAULT true,
      created_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db);

  await sql`
    CREATE TABLE service_secrets (
      name text PRIMARY KEY,
      value text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of [
    'service_secrets',
    'signing_keys',
    'audit_events',
    'member_links',
    'consents',
    'partner_clients',
    'coverages',
    'member_identifiers',
    'members',
  ]) {
    await sql`DROP TABLE IF EXISTS ${sql.table(table)} CASCADE`.execute(db);
  }
  await sql`DROP FUNCTION IF EXISTS audit_events_append_only()`.execute(db);
}
