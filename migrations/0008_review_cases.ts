import { sql, type Kysely } from 'kysely';

/**
 * Human review: an uncertain match becomes a case, written in the same transaction as its audit event,
 * with an outbox row a relay publishes to the BullMQ `review` queue (so no case is lost while Redis is down).
 * `offered` holds the demographics the partner sent — reviewers need them to decide — and, like the member
 * index, never reaches a log or the audit trail.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE review_cases (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'claimed', 'decided')),
      reason text NOT NULL,
      partner_client_id text NOT NULL REFERENCES partner_clients(client_id),
      partner_org_system text NOT NULL,
      partner_org_value text NOT NULL,
      request_key text NOT NULL,
      offered jsonb NOT NULL,
      link_request jsonb NOT NULL,
      candidates jsonb NOT NULL,
      model_version text NOT NULL,
      best_probability double precision,
      priority integer NOT NULL DEFAULT 0,
      sla_due_at timestamptz NOT NULL,
      lease_owner text,
      lease_expires_at timestamptz,
      decision text CHECK (decision IN ('match', 'no-match')),
      decided_member_uuid uuid REFERENCES members(id),
      decided_by text,
      decision_reason text,
      decided_at timestamptz,
      version integer NOT NULL DEFAULT 1,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      CHECK ((decision = 'match') = (decided_member_uuid IS NOT NULL))
    )`.execute(db);
  // One case per partner and request: a resubmission finds its case instead of opening another.
  await sql`CREATE UNIQUE INDEX review_cases_request ON review_cases (partner_org_system, partner_org_value, request_key)`.execute(db);
  await sql`CREATE INDEX review_cases_queue ON review_cases (status, priority DESC, created_at)`.execute(db);

  await sql`
    CREATE TABLE review_outbox (
      id bigserial PRIMARY KEY,
      case_id uuid NOT NULL REFERENCES review_cases(id) ON DELETE CASCADE,
      created_at timestamptz NOT NULL DEFAULT now(),
      published_at timestamptz
    )`.execute(db);
  await sql`CREATE INDEX review_outbox_unpublished ON review_outbox (id) WHERE published_at IS NULL`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE IF EXISTS review_outbox`.execute(db);
  await sql`DROP TABLE IF EXISTS review_cases`.execute(db);
}
