import { sql } from 'kysely';
import { PREPARED_STATEMENT, type DbOrTx } from '../db/database.js';

/** The member's own word on payer-to-payer sharing, which overrides any consent a partner presents. */
export type OptOutStatus = 'opted-out' | 'revoked';

export async function recordOptOut(db: DbOrTx, memberUuid: string, status: OptOutStatus, source: string): Promise<void> {
  await db
    .insertInto('sharing_opt_outs')
    .values({ member_uuid: memberUuid, status, source })
    .onConflict((oc) => oc.column('member_uuid').doUpdateSet({ status, source, recorded_at: sql<Date>`now()` }))
    .execute();
}

/**
 * Opt-outs from a roster's `sharing` column, in bulk. Idempotent: a member already recorded with the same
 * status is left untouched (re-importing a roster changes nothing).
 */
export async function recordRosterOptOuts(db: DbOrTx, entries: readonly { memberUuid: string; status: OptOutStatus }[]): Promise<void> {
  const latest = new Map(entries.map((e) => [e.memberUuid, e.status]));
  if (latest.size === 0) return;
  await sql`
    INSERT INTO sharing_opt_outs (member_uuid, status, source)
    SELECT u, s, 'roster' FROM unnest(${[...latest.keys()]}::uuid[], ${[...latest.values()]}::text[]) AS t(u, s)
    ON CONFLICT (member_uuid) DO UPDATE SET status = excluded.status, source = excluded.source, recorded_at = now()
    WHERE sharing_opt_outs.status IS DISTINCT FROM excluded.status`.execute(db);
}

/** Removes an opt-out; true when there was one. */
export async function clearOptOut(db: DbOrTx, memberUuid: string): Promise<boolean> {
  const result = await db.deleteFrom('sharing_opt_outs').where('member_uuid', '=', memberUuid).executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

export async function optOutStatus(db: DbOrTx, memberUuid: string): Promise<OptOutStatus | undefined> {
  return (await optedOutMembers(db, [memberUuid])).get(memberUuid);
}

export async function listOptOuts(db: DbOrTx) {
  return db
    .selectFrom('sharing_opt_outs as o')
    .innerJoin('members as m', 'm.id', 'o.member_uuid')
    .select(['m.member_id', 'o.status', 'o.source', 'o.recorded_at'])
    .orderBy('o.recorded_at', 'desc')
    .execute();
}

/** The opt-outs among these members, by member: one query for a whole batch. */
export async function optedOutMembers(db: DbOrTx, memberUuids: readonly string[]): Promise<Map<string, OptOutStatus>> {
  if (memberUuids.length === 0) return new Map();
  const rows = await db
    .selectFrom('sharing_opt_outs')
    .select(['member_uuid', 'status'])
    .where('member_uuid', '=', sql<string>`any(${[...new Set(memberUuids)]}::uuid[])`)
    .modifyEnd(sql.raw(PREPARED_STATEMENT)) // on every matched request
    .execute();
  return new Map(rows.map((r) => [r.member_uuid, r.status as OptOutStatus]));
}
