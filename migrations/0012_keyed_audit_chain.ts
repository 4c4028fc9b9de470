import { sql, type Kysely } from 'kysely';

/**
 * The keyed audit chain (docs/audit.md). From here on each audit event's hash is an HMAC-SHA256 under the audit
 * key, which is not in the database; `audit_chain` records, once, the sequence number where the keyed chain
 * starts (rows before it keep their plain SHA-256 links and are anchored by the first keyed row, whose HMAC
 * covers their last hash) and the chain's id, which checkpoints name. `audit_checkpoints` keeps a copy of each
 * signed checkpoint (the anchors themselves are written outside the database) and lets several processes agree
 * on when the last one was taken. Both tables are append-only, like `audit_events`.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  // No event may be appended while the start of the keyed chain is fixed.
  await sql`LOCK TABLE audit_events IN EXCLUSIVE MODE`.execute(db);
  await sql`
    CREATE TABLE audit_chain (
      chain_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      keyed_from_seq bigint NOT NULL,
      algorithm text NOT NULL CHECK (algorithm = 'hmac-sha256'),
      created_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
  await sql`CREATE UNIQUE INDEX audit_chain_one_row ON audit_chain ((true))`.execute(db);
  await sql`
    INSERT INTO audit_chain (keyed_from_seq, algorithm)
    SELECT COALESCE(max(seq), 0) + 1, 'hmac-sha256' FROM audit_events`.execute(db);

  await sql`
    CREATE TABLE audit_checkpoints (
      seq bigint NOT NULL,
      hash text NOT NULL,
      signed_at timestamptz NOT NULL,
      key_id text NOT NULL,
      signature text NOT NULL,
      PRIMARY KEY (signed_at, seq)
    )`.execute(db);

  await sql`
    CREATE FUNCTION audit_tables_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION '% is append-only (% refused)', TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
    END $$`.execute(db);
  for (const table of ['audit_chain', 'audit_checkpoints']) {
    await sql`
      CREATE TRIGGER ${sql.id(`${table}_no_update_delete`)} BEFORE UPDATE OR DELETE ON ${sql.table(table)}
      FOR EACH ROW EXECUTE FUNCTION audit_tables_append_only()`.execute(db);
    await sql`
      CREATE TRIGGER ${sql.id(`${table}_no_truncate`)} BEFORE TRUNCATE ON ${sql.table(table)}
      FOR EACH STATEMENT EXECUTE FUNCTION audit_tables_append_only()`.execute(db);
  }
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE IF EXISTS audit_checkpoints`.execute(db);
  await sql`DROP TABLE IF EXISTS audit_chain`.execute(db);
  await sql`DROP FUNCTION IF EXISTS audit_tables_append_only()`.execute(db);
}
