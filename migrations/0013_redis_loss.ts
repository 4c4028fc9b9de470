import { sql, type Kysely } from 'kysely';

/**
 * Postgres is the source of truth; Redis only schedules. What a Redis loss must not lose lives here:
 *  - `tenant_lockouts`: a match guard's lockout of a tenant (src/policy/limits.ts), one row per tenant, read by
 *    primary key on every match request; Redis keeps a copy that the queue reconciler restores;
 *  - `review_cases.sla_escalated_at`: when a case's SLA timer fired and escalated it, so the reconciler
 *    re-arms only the timers that have not fired yet, and a re-armed timer never escalates a case twice.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE tenant_lockouts (
      tenant text PRIMARY KEY,
      reason text NOT NULL,
      locked_at timestamptz NOT NULL DEFAULT now(),
      until timestamptz NOT NULL
    )`.execute(db);
  await sql`ALTER TABLE review_cases ADD COLUMN sla_escalated_at timestamptz`.execute(db);
  // The reconciler's scan: open cases whose SLA timer has not fired, in id order.
  await sql`CREATE INDEX review_cases_sla_armed ON review_cases (id) WHERE status <> 'decided' AND sla_escalated_at IS NULL`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP INDEX IF EXISTS review_cases_sla_armed`.execute(db);
  await sql`ALTER TABLE review_cases DROP COLUMN IF EXISTS sla_escalated_at`.execute(db);
  await sql`DROP TABLE IF EXISTS tenant_lockouts`.execute(db);
}
