import { sql, type Kysely } from 'kysely';

/**
 * The audit chain's lock and head in one round trip (issue 13). Appending an event takes the chain's advisory
 * lock and holds it until the appending transaction commits (src/audit/audit-trail.ts); until now the head was
 * read by a second statement after the lock was granted, so every append held the lock across one more round
 * trip to the service, and on a busy machine a round trip is where the holder waits to be scheduled again. Each
 * statement of a VOLATILE PL/pgSQL function takes a fresh snapshot (READ COMMITTED), so the SELECT after
 * PERFORM sees the row the previous holder committed just before this call was granted the lock.
 * 1835901137 = 0x6d6da0d1, the lock key the service has always used.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE FUNCTION audit_chain_lock_head() RETURNS text LANGUAGE plpgsql VOLATILE AS $$
    DECLARE
      head text;
    BEGIN
      PERFORM pg_advisory_xact_lock(1835901137);
      SELECT hash INTO head FROM audit_events ORDER BY seq DESC LIMIT 1;
      RETURN head;
    END
    $$`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP FUNCTION IF EXISTS audit_chain_lock_head()`.execute(db);
}
