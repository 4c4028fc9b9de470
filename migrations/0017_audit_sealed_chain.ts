import { sql, type Kysely } from 'kysely';

/**
 * The audit chain without a lock in the request's transaction (issue 13, docs/audit.md "Sealing").
 *
 * Until now every transaction that appended an event took the chain's advisory lock and held it to its commit,
 * so all decisions of all processes were serialised on one lock, held across round trips to a busy Node
 * process. From here on an event is inserted with its effect, unlocked, carrying its own keyed MAC in `hash`
 * (`prev_hash` NULL marks such a row), and a trigger queues its seq in `audit_pending`. A sealer (one at a time,
 * under the same advisory lock, in its own short transaction) takes the committed pending events in seq order
 * and appends one keyed link per event to `audit_chain_links`: position, the event's seq, the previous link, and
 * HMAC(previous link, seq, event MAC). The links are the chain now; rows written before this migration keep
 * their inline chain, and the first link continues from its last hash.
 *
 * `audit_chain_links` is append-only like `audit_events`. `audit_pending` is a work list, not evidence: an event
 * whose pending row is removed is neither linked nor pending, which `audit verify` reports. Only the trigger
 * (SECURITY DEFINER, as the owner) adds to it: the runtime role may read and delete, so it cannot queue a row the
 * sealer would choke on. An inline row (`prev_hash` set) is refused after the last one this migration finds, so
 * nobody can append a row the inline walk of `audit verify` would stop at.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  // No event may be appended while the inline chain ends and the linked chain begins.
  await sql`LOCK TABLE audit_events IN EXCLUSIVE MODE`.execute(db);
  await sql`ALTER TABLE audit_events ALTER COLUMN prev_hash DROP NOT NULL`.execute(db);
  const { rows } = await sql<{ last: string }>`SELECT COALESCE(max(seq), 0)::text AS last FROM audit_events`.execute(db);
  const lastInline = BigInt(rows[0]!.last);
  await sql`
    ALTER TABLE audit_events ADD CONSTRAINT audit_events_inline_rows_end
    CHECK (prev_hash IS NULL OR seq <= ${sql.lit(lastInline.toString())}::bigint)`.execute(db);
  await sql`
    CREATE TABLE audit_chain_links (
      position bigint PRIMARY KEY,
      event_seq bigint NOT NULL UNIQUE,
      prev_link text NOT NULL,
      link text NOT NULL,
      linked_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
  await sql`
    CREATE TRIGGER audit_chain_links_no_update_delete BEFORE UPDATE OR DELETE ON audit_chain_links
    FOR EACH ROW EXECUTE FUNCTION audit_tables_append_only()`.execute(db);
  await sql`
    CREATE TRIGGER audit_chain_links_no_truncate BEFORE TRUNCATE ON audit_chain_links
    FOR EACH STATEMENT EXECUTE FUNCTION audit_tables_append_only()`.execute(db);

  await sql`CREATE TABLE audit_pending (event_seq bigint PRIMARY KEY)`.execute(db);
  // Every event passes through it within a fraction of a second: vacuum it by row count, not by table size.
  await sql`
    ALTER TABLE audit_pending SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000,
      autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 5000)`.execute(db);
  await sql`
    CREATE FUNCTION audit_events_queue_for_sealing() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = public AS $$
    BEGIN
      INSERT INTO audit_pending (event_seq) VALUES (NEW.seq) ON CONFLICT DO NOTHING;
      RETURN NULL;
    END $$`.execute(db);
  await sql`
    CREATE TRIGGER audit_events_pending AFTER INSERT ON audit_events
    FOR EACH ROW WHEN (NEW.prev_hash IS NULL) EXECUTE FUNCTION audit_events_queue_for_sealing()`.execute(db);
  // The lock-and-head function of migration 0016 served the inline chain only.
  await sql`DROP FUNCTION IF EXISTS audit_chain_lock_head()`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  // The links are the audit evidence of every event since this migration: dropping them is not an undo.
  const { rows } = await sql<{ linked: boolean }>`SELECT EXISTS (SELECT 1 FROM audit_chain_links) AS linked`.execute(db);
  if (rows[0]?.linked) throw new Error('0017_audit_sealed_chain cannot be undone once events are chained: audit_chain_links holds the trail');
  // Migration 0016's lock-and-head function, for the inline appender of the code before this migration. (Rows
  // appended since keep `prev_hash` NULL; that code cannot chain after them.)
  await sql`
    CREATE OR REPLACE FUNCTION audit_chain_lock_head() RETURNS text LANGUAGE plpgsql VOLATILE AS $$
    DECLARE
      head text;
    BEGIN
      PERFORM pg_advisory_xact_lock(1835901137);
      SELECT hash INTO head FROM audit_events ORDER BY seq DESC LIMIT 1;
      RETURN head;
    END
    $$`.execute(db);
  await sql`DROP TRIGGER IF EXISTS audit_events_pending ON audit_events`.execute(db);
  await sql`DROP FUNCTION IF EXISTS audit_events_queue_for_sealing()`.execute(db);
  await sql`DROP TABLE IF EXISTS audit_pending`.execute(db);
  await sql`DROP TABLE IF EXISTS audit_chain_links`.execute(db);
  await sql`ALTER TABLE audit_events DROP CONSTRAINT IF EXISTS audit_events_inline_rows_end`.execute(db);
}
