import { sql, type Kysely } from 'kysely';

/**
 * Batch work: PDex `$bulk-member-match` requests, roster reconciliations and index imports are jobs. A job's
 * input rows are stored with it (parsed at upload, bad rows kept with their line and reason), split into
 * chunks that workers process through the same engine as single matches. A chunk's results, side effects
 * (links, review cases) and audit events commit in one transaction that also marks the chunk done, so a
 * chunk retried after a crash finds it done and writes nothing twice.
 *
 * Input rows hold demographics, like review cases: they never reach a log or the audit trail, and a job's
 * rows are deleted with the job when its retention ends.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE batch_jobs (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      kind text NOT NULL CHECK (kind IN ('bulk-member-match', 'roster-reconcile', 'index-import')),
      state text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
      owner_class text NOT NULL,
      owner_client_id text NOT NULL,
      owner_org_system text NOT NULL,
      owner_org_value text NOT NULL,
      content_hash text NOT NULL,
      options jsonb NOT NULL DEFAULT '{}',
      total_rows integer NOT NULL DEFAULT 0,
      chunk_size integer NOT NULL,
      chunk_count integer NOT NULL DEFAULT 0,
      chunks_done integer NOT NULL DEFAULT 0,
      rows_done integer NOT NULL DEFAULT 0,
      matched integer NOT NULL DEFAULT 0,
      review integer NOT NULL DEFAULT 0,
      no_match integer NOT NULL DEFAULT 0,
      consent_constrained integer NOT NULL DEFAULT 0,
      rejected integer NOT NULL DEFAULT 0,
      summary jsonb,
      error text,
      dispatched_at timestamptz,
      created_at timestamptz NOT NULL DEFAULT now(),
      started_at timestamptz,
      finished_at timestamptz
    )`.execute(db);
  // The same upload from the same client is the same job, unless that job was cancelled or failed.
  await sql`CREATE UNIQUE INDEX batch_jobs_same_upload ON batch_jobs (kind, owner_client_id, content_hash)
    WHERE state NOT IN ('cancelled', 'failed')`.execute(db);
  await sql`CREATE INDEX batch_jobs_undispatched ON batch_jobs (created_at) WHERE dispatched_at IS NULL AND state = 'queued'`.execute(db);

  await sql`
    CREATE TABLE batch_rows (
      job_id uuid NOT NULL REFERENCES batch_jobs(id) ON DELETE CASCADE,
      seq integer NOT NULL,
      line integer NOT NULL,
      input jsonb,
      error text,
      PRIMARY KEY (job_id, seq),
      CHECK ((input IS NULL) <> (error IS NULL))
    )`.execute(db);

  await sql`
    CREATE TABLE batch_chunks (
      job_id uuid NOT NULL REFERENCES batch_jobs(id) ON DELETE CASCADE,
      chunk integer NOT NULL,
      first_seq integer NOT NULL,
      last_seq integer NOT NULL,
      done_at timestamptz,
      attempts integer NOT NULL DEFAULT 0,
      PRIMARY KEY (job_id, chunk)
    )`.execute(db);

  await sql`
    CREATE TABLE batch_results (
      job_id uuid NOT NULL REFERENCES batch_jobs(id) ON DELETE CASCADE,
      seq integer NOT NULL,
      line integer NOT NULL,
      outcome text NOT NULL CHECK (outcome IN ('matched', 'review', 'no-match', 'consent-constrained', 'rejected')),
      member_uuid uuid,
      member_id text,
      band text,
      probability double precision,
      review_case_id uuid,
      reason text,
      PRIMARY KEY (job_id, seq)
    )`.execute(db);

  // Review cases can come from our own batch jobs (a workload, not a partner client).
  await sql`ALTER TABLE review_cases ALTER COLUMN partner_client_id DROP NOT NULL`.execute(db);
  await sql`ALTER TABLE review_cases ADD COLUMN batch_job_id uuid REFERENCES batch_jobs(id) ON DELETE SET NULL`.execute(db);

  // Index maintenance: a member absent from a full eligibility file has ended (still matchable: a former
  // member's data is exactly what a new payer asks for).
  await sql`ALTER TABLE members ADD COLUMN ended_at timestamptz`.execute(db);
  await sql`ALTER TABLE members ADD COLUMN last_seen_job uuid`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE members DROP COLUMN IF EXISTS last_seen_job`.execute(db);
  await sql`ALTER TABLE members DROP COLUMN IF EXISTS ended_at`.execute(db);
  await sql`ALTER TABLE review_cases DROP COLUMN IF EXISTS batch_job_id`.execute(db);
  await sql`DROP TABLE IF EXISTS batch_results`.execute(db);
  await sql`DROP TABLE IF EXISTS batch_chunks`.execute(db);
  await sql`DROP TABLE IF EXISTS batch_rows`.execute(db);
  await sql`DROP TABLE IF EXISTS batch_jobs`.execute(db);
}
