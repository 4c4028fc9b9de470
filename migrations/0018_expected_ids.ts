import { sql, type Kysely } from 'kysely';

/**
 * `member_match_expect(ok)`: true, or an error (SQLSTATE MM409) that aborts the statement calling it (issue 13).
 *
 * A matched `$member-match` writes its link and the audit event that records it in one statement, without
 * BEGIN and COMMIT (src/pipeline/commit.ts). The event names the link and the Consent by id, and its keyed MAC
 * is computed in the service before the statement is sent, so the ids are chosen beforehand: those of the link
 * and Consent read while planning, or new ones. Should a concurrent request have written either in between, the
 * link upsert returns other ids; the audit insert calls this function on that row, and the error rolls back the
 * whole statement, link included, so the service falls back to writing both in a transaction. (A WHERE that merely
 * skipped the event would commit the link without it.)
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE FUNCTION member_match_expect(ok boolean) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
    BEGIN
      IF ok IS NOT TRUE THEN
        RAISE EXCEPTION 'a row written by this statement does not have the id expected of it' USING ERRCODE = 'MM409';
      END IF;
      RETURN true;
    END
    $$`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP FUNCTION IF EXISTS member_match_expect(boolean)`.execute(db);
}
