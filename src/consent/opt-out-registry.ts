import { sql } from 'kysely';
import type { DbOrTx } from '../db/database.js';

/** The member's own word on payer-to-payer sharing, which overrides any consent a partner presents. */
export type OptOutStatus = 'opted-out' | 'revoked';

export async function recordOptOut(db: DbOrTx, memberUuid: string, status: OptOutStatus, source: string): Promise<void> {
  await db
    .insertInto('sharing_opt_outs')
    .values({ member_uuid: memberUuid, status, source })
    .onConflict((oc) => oc.column('member_uuid').doUpdateSet({ status, source, recorded_at: sql<Date>`now()` }))
    .execute();
}

/** Removes an opt-out; true when there was one. */
export async function clearOptOut(db: DbOrTx, memberUuid: string): Promise<boolean> {
  const result = await db.deleteFrom('sharing_opt_outs').where('member_uuid', '=', memberUuid).executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

export async function optOutStatus(db: DbOrTx, memberUuid: string): Promise<OptOutStatus | undefined> {
  const row = await db.selectFrom('sharing_opt_outs').select('status').where('member_uuid', '=', memberUuid).executeTakeFirst();
  return row?.status as OptOutStatus | undefined;
}

export async function listOptOuts(db: DbOrTx) {
  return db
    .selectFrom('sharing_opt_outs as o')
    .innerJoin('members as m', 'm.id', 'o.member_uuid')
    .select(['m.member_id', 'o.status', 'o.source', 'o.recorded_at'])
    .orderBy('o.recorded_at', 'desc')
    .execute();
}
