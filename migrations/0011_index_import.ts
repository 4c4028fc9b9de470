import { sql, type Kysely } from 'kysely';

/**
 * Index maintenance: an import of our own eligibility roster is a tracked job (batch_jobs, kind
 * `index-import`). The member ids each import carried are noted while it runs, so that a full-snapshot import
 * can tell which members the file no longer has (they have ended) and any import which ended members are
 * back. Unlogged: the notes are scratch, dropped with the job's end.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE UNLOGGED TABLE index_import_seen (
      job_id uuid NOT NULL REFERENCES batch_jobs(id) ON DELETE CASCADE,
      member_id text NOT NULL,
      PRIMARY KEY (job_id, member_id)
    )`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE IF EXISTS index_import_seen`.execute(db);
}
