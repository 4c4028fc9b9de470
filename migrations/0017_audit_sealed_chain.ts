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
 * whose pending row is removed is neither linked nor pending, which `audit verify` reports.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  // No event may be appended while the inline chain ends and the linked chain begins.
  await sql`LOCK TABLE audit_events IN EXCLUSIVE MODE`.execute(db);
  await sql`ALTER TABLE audit_events ALTER COLUMN prev_hash DROP NOT NULL`.execute(db);
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
  await sql`
    CREATE FUNCTION audit_events_queue_for_sealing() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO audit_pending (event_seq) VALUES (NEW.seq);
      RETURN NULL;
    END $$`.execute(db);
  await sql`
    CREATE TRIGGER audit_events_pending AFTER INSERT ON audit_events
    FOR EACH ROW WHEN (NEW.prev_hash IS NULL) EXECUTE FUNCTION audit_events_queue_for_sealing()`.execute(db);
  // The lock-and-head function of migration 0016 served the inline chain only.
  await sql`DROP FUNCTION IF EXISTS audit_chain_lock_head()`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
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
}
